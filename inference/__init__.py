"""inference: multi-exit models split into stages, trained on real data, profiled, cached.

Pure PyTorch + numpy + scikit-learn (+ matplotlib for plots, imported lazily); never
imports ns-3. Public API::

    model = load_staged_model("mlp", seed=0, cache_dir=None)   # "mlp" | "resnet" | "vit" | "llama"
    r = model.run_stage(1, model.test_inputs[0:1])              # StageResult
    model.profile, model.replay, model.exit_curves()
    serialize_activation(r.activation, "fp16")
    large_model_profile("llama-2-7b", num_stages=4)             # estimated StageProfiles
    propose_placement(stage_param_bytes, {"bs1": 8 << 30, ...}); check_placement(...)
    write_profile("llama", out_dir)                             # exits.csv, profile.json, PNG

Threads: see ``inference.staged`` (load_staged_model runs torch with 1 thread by default and
restores the caller's setting; fork-safe).
"""
from typing import Any

from .configs import FAMILIES, LlamaConfig, MLPConfig, ResNetConfig, TrainConfig, ViTConfig, config_for_family
from .exits import ExitCurve, ReplayTable, correct_exit_tradeoff, exit_curve, exit_curves
from .large_models import LARGE_MODELS, large_model_profile, measure_matmul_flops
from .placement import check_placement, node_memory_need_bytes, propose_placement
from .profiling import StageProfile, device_tag
from .serialize import ACTIVATION_DTYPES, activation_size_bytes, deserialize_activation, serialize_activation
from .staged import RESULT_BYTES, StagedModel, StageResult, default_cache_dir, load_staged_model

__all__ = [
    "ACTIVATION_DTYPES", "FAMILIES", "LARGE_MODELS", "RESULT_BYTES", "ExitCurve", "LlamaConfig", "MLPConfig",
    "ReplayTable", "ResNetConfig", "StagedModel", "StageProfile", "StageResult", "TrainConfig", "ViTConfig",
    "activation_size_bytes", "check_placement", "config_for_family", "correct_exit_tradeoff", "default_cache_dir",
    "deserialize_activation", "device_tag", "exit_curve", "exit_curves", "large_model_profile",
    "load_staged_model", "measure_matmul_flops", "node_memory_need_bytes", "propose_placement",
    "serialize_activation", "write_profile",
]


def __getattr__(name: str) -> Any:
    # write_profile pulls in matplotlib: import it only when asked for.
    if name == "write_profile":
        from .report import write_profile
        return write_profile
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
