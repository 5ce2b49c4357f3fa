"""Files for ``dtoee profile --model NAME --out DIR``: exits.csv, profile.json, a PNG plot.

``write_profile(name, out_dir)`` takes a trained family ("mlp", "resnet", "vit", "llama":
everything MEASURED on this machine; exit curves on the validation split, which the optimizer
calibrates on, and on the test split, which the simulation draws from; each figure in
profile.json says its split) or a named large model
("llama-2-7b", "gpt2-xl", ...: everything ESTIMATED from the architecture and a measured
matmul throughput; no exits.csv since no accuracy exists without the trained model).
Plots use matplotlib's object API (no pyplot global state, no display needed).
"""
from __future__ import annotations

import dataclasses

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from .configs import FAMILIES, config_to_dict
from .exits import CALIBRATION_SPLIT, EVALUATION_SPLIT, SPLITS
from .large_models import LARGE_MODELS, is_vision, large_model_profile, total_params
from .profiling import StageProfile
from .staged import StagedModel, load_staged_model


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_exits_csv(model: StagedModel, path: Path, grid: np.ndarray | None = None) -> None:
    """One row per (split, exit, threshold): model, split ("validation": what the optimizer
    calibrates on; "test": what the simulation draws), stage, threshold, exit_share,
    accuracy_of_exited (empty where nobody exits), overall_accuracy (of the exit over the split)."""
    rows = ["model,split,stage,threshold,exit_share,accuracy_of_exited,overall_accuracy"]
    for split in SPLITS:
        for c in model.exit_curves(grid, split=split):
            for th, share, acc in zip(c.thresholds, c.exit_share, c.accuracy_of_exited):
                rows.append(f"{model.name},{split},{c.stage},{th:.6g},{share:.6g},"
                            f"{'' if np.isnan(acc) else f'{acc:.6g}'},{c.overall_accuracy:.6g}")
    _atomic_write_text(path, "\n".join(rows) + "\n")


def _stages_json(profile: list[StageProfile]) -> list[dict[str, Any]]:
    return [p.to_dict() for p in profile]


def profile_document(model: StagedModel) -> dict[str, Any]:
    """The profile.json content of a trained (measured) model."""
    return {
        "model": model.name, "family": model.family, "seed": model.seed, "estimated": False,
        "what_is_measured": "latency (batch 1, median and p95 wall time of stage block + exit head), "
                            "accuracies and exit curves (split named per figure); bytes and FLOPs counted "
                            "from the real tensors",
        "device": model.profile[0].device if model.profile else "",
        "config": config_to_dict(model.config), "num_stages": model.num_stages,
        "input_bytes": model.input_bytes, "result_bytes": model.result_bytes,
        "test_samples": int(len(model.test_labels)),
        "validation_samples": int(len(model.validation_labels)),
        "exit_test_accuracy": model.exit_test_accuracy(),
        "exit_validation_accuracy": model.exit_accuracy(CALIBRATION_SPLIT),
        # best-epoch validation accuracy recorded by training (the epoch was picked on it)
        "val_accuracy": model.train_info.get("val_accuracy"),
        "train_seconds": model.train_info.get("train_seconds"),
        "stages": _stages_json(model.profile),
        "data_splits": model.data_splits(),
        "split_of": {
            "exit_test_accuracy": EVALUATION_SPLIT, "test_samples": EVALUATION_SPLIT,
            "exit_validation_accuracy": CALIBRATION_SPLIT, "validation_samples": CALIBRATION_SPLIT,
            "val_accuracy": CALIBRATION_SPLIT,
            "exits.csv": "column 'split' (both)", "stages": "test sample 0 (latency and bytes only)",
        },
    }


def large_profile_document(name: str, profile: list[StageProfile], seq_len: int, param_dtype: str,
                           device: str | None = None) -> dict[str, Any]:
    arch = LARGE_MODELS[name]
    latency = ("latency = max(FLOPs / (fp16 peak x efficiency), bytes moved / memory bandwidth) on the named "
               "device's datasheet figures (inference/devices.py roofline)" if device else
               "latency = FLOPs / device FLOP/s")
    return {
        "model": name, "estimated": True,
        "what_is_estimated": "EVERYTHING: FLOPs, parameter and activation bytes from the architecture; "
                             f"{latency} (p95 = median: no distribution is modelled)",
        "device": profile[0].device, "num_stages": len(profile), "seq_len": seq_len, "param_dtype": param_dtype,
        "total_params": total_params(name), "architecture": {k: v for k, v in vars(arch).items()},
        "assumptions": (["one 224 px image = seq_len tokens (patches + class token), batch 1",
                         "exit head = LayerNorm + d x 1000 linear on the class token per stage",
                         "stage 1 holds the patch embedding; JPEG decoding and resizing not counted"]
                        if is_vision(name) else
                        ["prefill of seq_len tokens, batch 1", "exit head = final norm + d x vocab linear per stage"])
                       + ["1 multiply-add = 2 FLOPs; attention counted dense; element-wise ops not counted",
                          "activation sent between stages = hidden states [seq_len, dim]"],
        "stages": _stages_json(profile),
    }


def plot_measured(model: StagedModel, path: Path) -> None:
    """PNG: exit share and accuracy of exited vs threshold per exit (validation split solid:
    what the optimizer calibrates on; test split dashed: what the simulation draws), and
    per-stage latency."""
    fig = Figure(figsize=(13, 3.8), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    for split, style in ((CALIBRATION_SPLIT, "-"), (EVALUATION_SPLIT, "--")):
        for c in model.exit_curves(split=split):
            color = f"C{c.stage - 1}"
            ax1.plot(c.thresholds, c.exit_share, style, color=color,
                     label=f"exit {c.stage} {split} (acc {c.overall_accuracy:.3f})")
            ax2.plot(c.thresholds, c.accuracy_of_exited, style, color=color, label=f"exit {c.stage} {split}")
    ax1.set(xlabel="confidence threshold", ylabel="share of tasks exiting",
            title="exit share (validation solid, test dashed)")
    ax2.set(xlabel="confidence threshold", ylabel="accuracy of exited tasks",
            title="accuracy of exited (validation solid, test dashed)")
    ax1.legend(fontsize=6)
    ax2.legend(fontsize=6)
    ks = [p.stage for p in model.profile]
    ax3.bar(ks, [p.latency_s * 1e3 for p in model.profile], color="tab:blue", label="median")
    ax3.errorbar(ks, [p.latency_s * 1e3 for p in model.profile],
                 yerr=[[0] * len(ks), [(p.latency_p95_s - p.latency_s) * 1e3 for p in model.profile]],
                 fmt="none", ecolor="k", capsize=3, label="p95")
    for p in model.profile:
        ax3.annotate(f"{p.activation_bytes} B out", (p.stage, p.latency_s * 1e3), ha="center", va="bottom", fontsize=7)
    ax3.set(xlabel="stage", ylabel="latency per sample (ms)", xticks=ks, title="MEASURED latency, batch 1")
    ax3.legend(fontsize=8)
    fig.suptitle(f"{model.name} (seed {model.seed}); measured on {model.profile[0].device}", fontsize=9)
    fig.savefig(path, dpi=110)


def plot_estimated(name: str, profile: list[StageProfile], path: Path) -> None:
    """PNG: per-stage estimated latency, parameter GB and GFLOPs, labelled ESTIMATED."""
    ks = [p.stage for p in profile]
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax1, ax2, ax3 = fig.subplots(1, 3)
    ax1.bar(ks, [p.latency_s for p in profile], color="tab:orange", hatch="//")
    ax1.set(xlabel="stage", ylabel="latency (s), ESTIMATED", xticks=ks, title="ESTIMATED latency")
    ax2.bar(ks, [p.param_bytes / 1e9 for p in profile], color="tab:gray", hatch="//")
    ax2.set(xlabel="stage", ylabel="parameters (GB)", xticks=ks, title="parameter bytes (from architecture)")
    ax3.bar(ks, [p.flops / 1e9 for p in profile], color="tab:green", hatch="//")
    ax3.set(xlabel="stage", ylabel="GFLOP per task", xticks=ks, title="FLOPs (from architecture)")
    fig.suptitle(f"{name}: ESTIMATED, not measured; {profile[0].device}", fontsize=9)
    fig.savefig(path, dpi=110)


def write_profile(name: str, out_dir: str | os.PathLike[str], *, seed: int = 0, cache_dir: str | os.PathLike[str] | None = None,
                  num_stages: int = 4, device_flops: float | None = None, seq_len: int = 512,
                  param_dtype: str = "fp16", device: str | None = None) -> dict[str, Path]:
    """Write the profile files for a trained family or a named large model into ``out_dir``.

    Returns {"profile_json": ..., "plot_png": ..., "exits_csv": ... (trained families only)}.
    num_stages / device_flops / seq_len / param_dtype / device apply to large models only;
    ``device`` (a name in ``inference.devices.DEVICES``) replaces device_flops by that
    device's roofline (ESTIMATED from its datasheet).
    """
    if device is not None:
        from .devices import device as check_device

        check_device(device)  # bad input: an error before anything is written
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"profile_json": out / "profile.json", "plot_png": out / f"{name}-profile.png"}
    if name in FAMILIES:
        model = load_staged_model(name, seed=seed, cache_dir=cache_dir)
        paths["exits_csv"] = out / "exits.csv"
        write_exits_csv(model, paths["exits_csv"])
        doc = profile_document(model)
        plot_measured(model, paths["plot_png"])
    elif name in LARGE_MODELS:
        if is_vision(name):
            seq_len = LARGE_MODELS[name].tokens  # fixed by the image and patch size
        if device is not None and is_vision(name):
            raise ValueError(f"--device: the roofline stage costs cover decoders only, not {name!r}; "
                             "allowed: --device-flops for a vision model")
        if device is not None:
            from .devices import decoder_stage_costs, device_label, stage_latencies_s

            times = stage_latencies_s(decoder_stage_costs(name, num_stages, seq_len), device)
            prof = large_model_profile(name, num_stages, 1e12, seq_len=seq_len, param_dtype=param_dtype)
            prof = [dataclasses.replace(p, latency_s=t, latency_p95_s=t, device=device_label(device))
                    for p, t in zip(prof, times)]
        else:
            prof = large_model_profile(name, num_stages, device_flops, seq_len=seq_len, param_dtype=param_dtype)
        doc = large_profile_document(name, prof, seq_len, param_dtype, device)
        paths["plot_png"] = out / f"{name}-profile-ESTIMATED.png"
        plot_estimated(name, prof, paths["plot_png"])
    else:
        raise ValueError(f"name={name!r}: must be one of {list(FAMILIES) + sorted(LARGE_MODELS)}")
    _atomic_write_text(paths["profile_json"], json.dumps(doc, indent=2, default=float) + "\n")
    return paths
