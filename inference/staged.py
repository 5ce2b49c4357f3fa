"""StagedModel: a trained multi-exit network cut into K stages, with its test split,
replay tables and per-stage profile, trained once per (config, seed) and cached on disk.

Two splits, two jobs (calibrate on one, evaluate on another):

* VALIDATION (``CALIBRATION_SPLIT``): the exit curves that the optimizer, DTO-EE and every
  baseline read (``exit_curves()``), so thresholds are tuned on data they are never scored
  on. (Training also uses it to pick the best epoch; it never sees the test split.)
* TEST (``EVALUATION_SPLIT``): the samples the simulation draws (``sample``, the replay
  executor's ``replay`` table) and the accuracies reported for a run.

Threads and fork-safety: everything ``load_staged_model`` runs in torch (training, replay,
profiling, building the net) runs under ``torch.set_num_threads(num_threads)`` (default 1)
and the caller's thread count is restored afterwards. With the default, no torch op ever
runs on >1 thread inside it, so a process may fork afterwards (ns-3 workers do) without
the OpenMP hang. ``run_stage`` runs with whatever thread count the caller has set: a
process that forks children should call ``torch.set_num_threads(1)`` before its own first
torch op (docs/ns3-notes.md, "Reproducibility"). Profiles are measured with ``num_threads``
threads and tagged with it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from dtoee_cache import cache_root

from ._seed import normalize_seed, scoped_deterministic, scoped_threads, scoped_torch_rng
from .configs import (
    DEFAULT_TRAIN, FAMILIES, LlamaConfig, ModelConfig, TrainConfig, config_for_family, config_to_dict, family_of,
)
from .data import DataSplit, digits_split, signed_vote_split
from .exits import CALIBRATION_SPLIT, EVALUATION_SPLIT, SPLITS, ExitCurve, ReplayTable, exit_curves
from .nets import MultiExitNet, build_net, stage_param_bytes
from .profiling import StageProfile, measured_stage_profile
from .serialize import activation_size_bytes
from .training import train_multi_exit

CACHE_FORMAT = 1
#: Result message: task id (8 B) + predicted class (4 B, int32) + confidence (4 B, float32).
RESULT_BYTES = 16

_MODEL_NAMES = {"mlp": "mlp-digits", "resnet": "resnet-digits", "vit": "vit-digits", "llama": "llama-signedvote"}


@dataclass(frozen=True)
class StageResult:
    """Output of one stage on one sample.

    activation: stage output (batch 1), the input of stage k+1.
    confidence: max softmax probability of exit head k, in [0, 1].
    predicted: argmax class of exit head k.
    activation_bytes: len(serialize_activation(activation)) in fp32, bytes.
    """

    activation: torch.Tensor
    confidence: float
    predicted: int
    activation_bytes: int


class StagedModel:
    """A trained multi-exit model split into ``num_stages`` stages (see module doc).

    Attributes: name, family, config, seed, num_stages, test_inputs [N, ...] (test split only;
    float32 images/features, or int64 token ids for "llama"), test_labels [N] int64,
    test_meta (per-sample tags, e.g. difficulty for "llama"), input_bytes (raw bytes of one
    input sample: numel * element size), result_bytes, profile (list of StageProfile),
    replay (ReplayTable of the TEST split: what the simulation replays),
    validation_labels [M] int64 and validation_replay (ReplayTable of the VALIDATION split:
    what the exit curves are calibrated on), train_info (dict), cache_path, loaded_from_cache.
    """

    def __init__(self, *, family: str, config: ModelConfig, seed: int, net: MultiExitNet,
                 test_inputs: torch.Tensor, test_labels: np.ndarray, test_meta: dict[str, np.ndarray],
                 replay: ReplayTable, profile: list[StageProfile], train_info: dict[str, Any],
                 cache_path: Path | None, loaded_from_cache: bool,
                 validation_labels: np.ndarray | None = None, validation_replay: ReplayTable | None = None) -> None:
        self.name: str = _MODEL_NAMES[family]
        self.family = family
        self.config = config
        self.seed = seed
        self.net = net
        self.num_stages: int = net.num_stages
        self.test_inputs = test_inputs
        self.test_labels = test_labels
        self.test_meta = test_meta
        self.input_bytes: int = int(test_inputs[0].numel() * test_inputs.element_size())
        self.result_bytes: int = RESULT_BYTES
        self.replay = replay
        self.validation_labels = np.zeros(0, np.int64) if validation_labels is None else validation_labels
        self.validation_replay = (ReplayTable(np.zeros((0, net.num_stages)), np.zeros((0, net.num_stages), np.int64))
                                  if validation_replay is None else validation_replay)
        self.profile = profile
        self.train_info = train_info
        self.cache_path = cache_path
        self.loaded_from_cache = loaded_from_cache

    def __repr__(self) -> str:
        return f"StagedModel(name={self.name!r}, num_stages={self.num_stages}, seed={self.seed}, test_samples={len(self.test_labels)})"

    def _check_stage(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= self.num_stages:
            raise ValueError(f"k={k!r}: stage must be an int in 1..{self.num_stages}")

    def run_stage(self, k: int, x: torch.Tensor) -> StageResult:
        """Run stage k (1-based) on a batch-1 tensor: the raw input (k=1, e.g. ``test_inputs[n:n+1]``)
        or stage k-1's activation. Runs under ``torch.inference_mode()``."""
        self._check_stage(k)
        if x.shape[0] != 1:
            raise ValueError(f"x.shape={tuple(x.shape)}: run_stage takes a batch of 1")
        with torch.inference_mode():
            a = self.net.stage_forward(int(k), x)
            probs = torch.softmax(self.net.exit_logits(int(k), a).float(), dim=-1)
            conf, pred = probs.max(dim=-1)
        return StageResult(activation=a, confidence=float(conf), predicted=int(pred),
                           activation_bytes=activation_size_bytes(a.numel(), "fp32"))

    def sample(self, n: int) -> tuple[torch.Tensor, int]:
        """Test sample n as (batch-1 input tensor, true label)."""
        return self.test_inputs[n:n + 1], int(self.test_labels[n])

    def _split(self, split: str) -> tuple[ReplayTable, np.ndarray]:
        if split == CALIBRATION_SPLIT:
            if self.validation_replay.num_samples == 0:
                raise ValueError(f"{self.name}: no validation replay table; cannot calibrate exit curves")
            return self.validation_replay, self.validation_labels
        if split == EVALUATION_SPLIT:
            return self.replay, self.test_labels
        raise ValueError(f"split={split!r}: must be one of {SPLITS}")

    def exit_curves(self, grid: np.ndarray | None = None, split: str = CALIBRATION_SPLIT) -> list[ExitCurve]:
        """Per-exit curves (default grid: 0, 0.01, ..., 1) on ``split``: "validation" (the
        default: what the optimizer and every policy calibrate on) or "test" (for reports)."""
        replay, labels = self._split(split)
        return exit_curves(replay, labels, grid, split=split)

    def exit_accuracy(self, split: str) -> list[float]:
        """Accuracy of each exit over every sample of ``split`` (fractions)."""
        replay, labels = self._split(split)
        return [float(a) for a in (replay.predicted == labels[:, None]).mean(axis=0)]

    def data_splits(self) -> dict[str, Any]:
        """Which split fed what (written to summary.json and profile.json)."""
        return {
            "exit_curves": CALIBRATION_SPLIT, "thresholds_and_policies": CALIBRATION_SPLIT,
            "simulated_samples": EVALUATION_SPLIT, "reported_accuracy": EVALUATION_SPLIT,
            "samples": {CALIBRATION_SPLIT: int(len(self.validation_labels)), EVALUATION_SPLIT: int(len(self.test_labels))},
        }

    def measure_profile(self, repeats: int = 30, num_threads: int | None = 1) -> list[StageProfile]:
        """Measure the stages again on this machine (batch 1, ``num_threads`` torch threads,
        restored afterwards); does not change ``self.profile`` or the cache."""
        if repeats < 20:
            raise ValueError(f"repeats={repeats}: must be >= 20")
        with scoped_threads(num_threads):
            return profile_model(self, repeats=repeats)

    def exit_test_accuracy(self) -> list[float]:
        """Test accuracy of each exit (fractions)."""
        return self.exit_accuracy(EVALUATION_SPLIT)


# ----------------------------------------------------------------------------- building blocks
def default_cache_dir() -> Path:
    """$DTOEE_CACHE, else ~/.cache/dtoee (one definition: :func:`dtoee_cache.cache_root`)."""
    return cache_root()


def cache_key(family: str, config: ModelConfig, train: TrainConfig, seed: int) -> str:
    """Hex digest identifying a trained model: config, training config, seed, torch version."""
    blob = json.dumps({"format": CACHE_FORMAT, "family": family, "config": config_to_dict(config),
                       "train": config_to_dict(train), "seed": seed, "torch": torch.__version__}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def build_data(family: str, config: ModelConfig, seed: int) -> DataSplit:
    """The dataset split for a family (digits, or the signed-vote task for "llama")."""
    if family == "llama":
        assert isinstance(config, LlamaConfig)
        return signed_vote_split(seed, config.seq_len, config.vocab_size)
    return digits_split(seed, image=family in ("resnet", "vit"))


def compute_replay(model_run_stage: Any, inputs: torch.Tensor, num_stages: int) -> ReplayTable:
    """Replay table by calling ``run_stage`` sample by sample (so it equals run_stage exactly)."""
    n = len(inputs)
    conf = np.empty((n, num_stages), np.float64)
    pred = np.empty((n, num_stages), np.int64)
    for i in range(n):
        x = inputs[i:i + 1]
        for k in range(1, num_stages + 1):
            r = model_run_stage(k, x)
            conf[i, k - 1], pred[i, k - 1], x = r.confidence, r.predicted, r.activation
    return ReplayTable(confidence=conf, predicted=pred)


def profile_model(model: StagedModel, repeats: int = 30) -> list[StageProfile]:
    """Measure every stage of ``model`` on test sample 0 (batch 1), threads as currently set."""
    out = []
    x = model.test_inputs[0:1]
    for k in range(1, model.num_stages + 1):
        def run(k: int = k, x: torch.Tensor = x) -> torch.Tensor:
            return model.run_stage(k, x).activation
        out.append(measured_stage_profile(k, run, stage_param_bytes(model.net, k), repeats=repeats))
        x = model.run_stage(k, x).activation
    return out


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(path.suffix + ".lock"), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _atomic_torch_save(obj: Any, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _meta_to_tensors(meta: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v).astype(np.int64)) for k, v in meta.items()}


def _new_net(config: ModelConfig, seed: int) -> MultiExitNet:
    with scoped_torch_rng(seed, "init"):
        return build_net(config)


def _train_and_package(family: str, config: ModelConfig, train: TrainConfig, seed: int,
                       profile_repeats: int) -> tuple[StagedModel, dict[str, Any]]:
    data = build_data(family, config, seed)
    net = _new_net(config, seed)
    with scoped_torch_rng(seed, "train"), scoped_deterministic():
        info = train_multi_exit(net, data, train, seed)
    model = StagedModel(family=family, config=config, seed=seed, net=net, test_inputs=data.test_x,
                        test_labels=data.test_y.numpy().astype(np.int64), test_meta=dict(data.test_meta),
                        replay=ReplayTable(np.zeros((0, 1)), np.zeros((0, 1), np.int64)), profile=[],
                        train_info=info, cache_path=None, loaded_from_cache=False)
    model.replay = compute_replay(model.run_stage, model.test_inputs, model.num_stages)
    model.validation_labels = data.val_y.numpy().astype(np.int64)
    model.validation_replay = compute_replay(model.run_stage, data.val_x, model.num_stages)
    model.profile = profile_model(model, repeats=profile_repeats)
    info["test_accuracy"] = model.exit_test_accuracy()
    blob = {
        "format": CACHE_FORMAT, "family": family, "config": config_to_dict(config), "train": config_to_dict(train),
        "seed": seed, "state_dict": net.state_dict(), "test_inputs": model.test_inputs,
        "test_labels": torch.from_numpy(model.test_labels), "test_meta": _meta_to_tensors(model.test_meta),
        "replay_confidence": torch.from_numpy(model.replay.confidence),
        "replay_predicted": torch.from_numpy(model.replay.predicted),
        **_validation_entries(model),
        "profile": [p.to_dict() for p in model.profile], "train_info": info,
    }
    return model, blob


def _validation_entries(model: StagedModel) -> dict[str, torch.Tensor]:
    return {"validation_labels": torch.from_numpy(model.validation_labels),
            "validation_replay_confidence": torch.from_numpy(model.validation_replay.confidence),
            "validation_replay_predicted": torch.from_numpy(model.validation_replay.predicted)}


def _from_blob(blob: dict[str, Any], family: str, config: ModelConfig, seed: int, path: Path) -> tuple[StagedModel, bool]:
    """The cached model, and whether the blob lacked the validation replay (cache files written
    before calibration moved to the validation split): it is then computed here, from the same
    seed-fixed split, with ``run_stage`` itself; the caller writes it back."""
    net = _new_net(config, seed)
    net.load_state_dict(blob["state_dict"])
    net.eval()
    model = StagedModel(
        family=family, config=config, seed=seed, net=net, test_inputs=blob["test_inputs"],
        test_labels=blob["test_labels"].numpy(), test_meta={k: v.numpy() for k, v in blob["test_meta"].items()},
        replay=ReplayTable(blob["replay_confidence"].numpy(), blob["replay_predicted"].numpy()),
        profile=[StageProfile.from_dict(p) for p in blob["profile"]], train_info=dict(blob["train_info"]),
        cache_path=path, loaded_from_cache=True)
    if "validation_labels" in blob:
        model.validation_labels = blob["validation_labels"].numpy()
        model.validation_replay = ReplayTable(blob["validation_replay_confidence"].numpy(),
                                              blob["validation_replay_predicted"].numpy())
        return model, False
    data = build_data(family, config, seed)
    model.validation_labels = data.val_y.numpy().astype(np.int64)
    model.validation_replay = compute_replay(model.run_stage, data.val_x, model.num_stages)
    blob.update(_validation_entries(model))
    return model, True


def load_staged_model(family: str = "mlp", seed: int = 0, cache_dir: str | os.PathLike[str] | None = None, *,
                      config: ModelConfig | None = None, train_config: TrainConfig | None = None,
                      num_threads: int | None = 1, retrain: bool = False, profile_repeats: int = 30) -> StagedModel:
    """Load the trained multi-exit model of ``family`` for ``seed``, training it on first use.

    family: "mlp", "resnet", "vit" (scikit-learn digits) or "llama" (signed-vote sequence task).
    cache_dir: default $DTOEE_CACHE or ~/.cache/dtoee; the file is keyed by config hash and
      seed, written atomically (tmp file + os.replace) under an advisory file lock.
    config / train_config: override the family's defaults (part of the cache key).
    num_threads: torch threads for everything done here (restored after); None = as found.
    retrain: ignore an existing cache file.
    profile_repeats: batch-1 runs per stage for the latency median / p95 (>= 20).
    """
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}: must be one of {FAMILIES}")
    seed = normalize_seed(seed)
    config = config_for_family(family) if config is None else config
    if family_of(config) != family:
        raise ValueError(f"config={type(config).__name__}: does not belong to family={family!r}")
    train = DEFAULT_TRAIN[family] if train_config is None else train_config
    if profile_repeats < 20:
        raise ValueError(f"profile_repeats={profile_repeats}: must be >= 20")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    path = root / f"{_MODEL_NAMES[family]}-{cache_key(family, config, train, seed)}-seed{seed}.pt"
    with scoped_threads(num_threads), _file_lock(path):
        if path.exists() and not retrain:
            try:
                blob = torch.load(path, weights_only=True)
                model, upgraded = _from_blob(blob, family, config, seed, path)
                if upgraded:
                    _atomic_torch_save(blob, path)
                return model
            except Exception as exc:  # unreadable / stale file: train again and overwrite
                warnings.warn(f"cache file {path} unreadable ({exc!r}); retraining", RuntimeWarning, stacklevel=2)
        model, blob = _train_and_package(family, config, train, seed, profile_repeats)
        _atomic_torch_save(blob, path)
        model.cache_path = path
        return model
