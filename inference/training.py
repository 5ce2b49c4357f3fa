"""Joint training of all exit heads (deterministic for a seed).

Loss: weighted mean over exits of cross-entropy; AdamW with a cosine learning-rate
schedule; the weights kept are those of the epoch with the best mean validation accuracy
over exits. Callers run this inside ``scoped_threads`` / ``scoped_torch_rng`` /
``scoped_deterministic`` (see ``staged.load_staged_model``).
"""
from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ._seed import torch_generator
from .configs import TrainConfig
from .data import DataSplit
from .nets import MultiExitNet


@torch.no_grad()
def exit_accuracies(net: MultiExitNet, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> list[float]:
    """Accuracy of each exit on (x, y), in eval mode (fractions in [0, 1])."""
    net.eval()
    correct = np.zeros(net.num_stages)
    for i in range(0, len(x), batch_size):
        logits = net(x[i:i + batch_size])
        correct += [float((lg.argmax(1) == y[i:i + batch_size]).sum()) for lg in logits]
    return list(correct / max(len(x), 1))


def train_multi_exit(net: MultiExitNet, data: DataSplit, cfg: TrainConfig, seed: int) -> dict[str, Any]:
    """Train ``net`` in place; return info (val accuracies per exit, epochs, train_seconds)."""
    k = net.num_stages
    w = torch.tensor(cfg.exit_loss_weights if cfg.exit_loss_weights is not None else (1.0,) * k, dtype=torch.float32)
    if len(w) != k:
        raise ValueError(f"TrainConfig.exit_loss_weights has {len(w)} entries; the model has {k} exits")
    w = w / w.sum()
    gen = torch_generator(seed, "shuffle")
    n = len(data.train_x)
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay, foreach=True)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs * steps_per_epoch)
    best_acc, best_state, best_epoch, best_val = -1.0, None, 0, [0.0] * k
    t0 = time.perf_counter()
    c0 = time.process_time()
    for epoch in range(1, cfg.epochs + 1):
        net.train()
        perm = torch.randperm(n, generator=gen)
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            logits = net(data.train_x[idx])
            loss = sum(wk * F.cross_entropy(lg, data.train_y[idx]) for wk, lg in zip(w, logits))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        val = exit_accuracies(net, data.val_x, data.val_y)
        if float(np.mean(val)) > best_acc:
            best_acc, best_state, best_epoch, best_val = float(np.mean(val)), copy.deepcopy(net.state_dict()), epoch, val
    assert best_state is not None
    net.load_state_dict(best_state)
    net.eval()
    return {
        "train_seconds": float(time.perf_counter() - t0),
        "train_cpu_seconds": float(time.process_time() - c0),
        "epochs_run": cfg.epochs,
        "best_epoch": best_epoch,
        "val_accuracy": [float(v) for v in best_val],
        "train_samples": int(n),
        "val_samples": int(len(data.val_x)),
        "test_samples": int(len(data.test_x)),
    }
