"""Typed, validated configurations for the multi-exit model families and their training.

Every config is a frozen dataclass; ``__post_init__`` raises ``ValueError`` naming the field,
the value and what is allowed. A model's layers are numbered 1..num_layers; ``exit_after``
lists the layers after which an exit head sits (strictly increasing, the last one must be
the last layer). Stage k is the run of layers ``(exit_after[k-2], exit_after[k-1]]`` plus
exit head k, so the number of stages K equals ``len(exit_after)``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Union

FAMILIES: tuple[str, ...] = ("mlp", "resnet", "vit", "llama")


def _positive_int(obj: Any, name: str) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{type(obj).__name__}.{name}={v!r}: must be a positive int")


def _positive_float(obj: Any, name: str) -> None:
    v = getattr(obj, name)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not v > 0:
        raise ValueError(f"{type(obj).__name__}.{name}={v!r}: must be a positive number")


def _check_exits(obj: Any, num_layers: int) -> None:
    ex = obj.exit_after
    name = type(obj).__name__
    if not isinstance(ex, tuple) or len(ex) < 1 or not all(isinstance(e, int) and not isinstance(e, bool) for e in ex):
        raise ValueError(f"{name}.exit_after={ex!r}: must be a non-empty tuple of ints")
    if any(b <= a for a, b in zip(ex, ex[1:])) or ex[0] < 1:
        raise ValueError(f"{name}.exit_after={ex!r}: must be strictly increasing layer numbers >= 1")
    if ex[-1] != num_layers:
        raise ValueError(f"{name}.exit_after={ex!r}: last exit must be after the last layer ({num_layers})")


@dataclass(frozen=True)
class MLPConfig:
    """Fully connected multi-exit net on flattened 8x8 digits (64 features)."""

    input_dim: int = 64
    hidden_widths: tuple[int, ...] = (16, 64, 64, 128)
    exit_after: tuple[int, ...] = (1, 3, 4)
    num_classes: int = 10

    def __post_init__(self) -> None:
        for f in ("input_dim", "num_classes"):
            _positive_int(self, f)
        if not isinstance(self.hidden_widths, tuple) or not self.hidden_widths or not all(
            isinstance(w, int) and w >= 1 for w in self.hidden_widths
        ):
            raise ValueError(f"MLPConfig.hidden_widths={self.hidden_widths!r}: must be a non-empty tuple of positive ints")
        _check_exits(self, len(self.hidden_widths))

    @property
    def num_layers(self) -> int:
        return len(self.hidden_widths)


@dataclass(frozen=True)
class ResNetConfig:
    """ResNet-style CNN (3x3 stem, basic residual blocks, BatchNorm) on 1x8x8 digit images.

    A block whose channel count grows over the previous one downsamples with stride 2.
    """

    image_size: int = 8
    in_channels: int = 1
    stem_channels: int = 8
    block_channels: tuple[int, ...] = (8, 8, 16, 16, 32, 32)
    exit_after: tuple[int, ...] = (2, 4, 6)
    num_classes: int = 10

    def __post_init__(self) -> None:
        for f in ("image_size", "in_channels", "stem_channels", "num_classes"):
            _positive_int(self, f)
        if not isinstance(self.block_channels, tuple) or not self.block_channels or not all(
            isinstance(c, int) and c >= 1 for c in self.block_channels
        ):
            raise ValueError(f"ResNetConfig.block_channels={self.block_channels!r}: must be a non-empty tuple of positive ints")
        _check_exits(self, len(self.block_channels))

    @property
    def num_layers(self) -> int:
        return len(self.block_channels)


@dataclass(frozen=True)
class ViTConfig:
    """Vision Transformer (patch embedding, CLS token, learned positions, pre-LN blocks)."""

    image_size: int = 8
    in_channels: int = 1
    patch_size: int = 2
    dim: int = 32
    depth: int = 6
    heads: int = 4
    mlp_ratio: float = 2.0
    exit_after: tuple[int, ...] = (2, 4, 6)
    num_classes: int = 10

    def __post_init__(self) -> None:
        for f in ("image_size", "in_channels", "patch_size", "dim", "depth", "heads", "num_classes"):
            _positive_int(self, f)
        _positive_float(self, "mlp_ratio")
        if self.image_size % self.patch_size:
            raise ValueError(f"ViTConfig.patch_size={self.patch_size}: must divide image_size={self.image_size}")
        if self.dim % self.heads:
            raise ValueError(f"ViTConfig.heads={self.heads}: must divide dim={self.dim}")
        _check_exits(self, self.depth)

    @property
    def num_layers(self) -> int:
        return self.depth

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True)
class LlamaConfig:
    """LLaMA-style decoder: token embedding, pre-norm blocks with RMSNorm, rotary position
    embeddings, causal multi-head self-attention and a SwiGLU MLP; each exit head is
    RMSNorm + linear classifier on the last position's hidden state."""

    vocab_size: int = 16
    seq_len: int = 16
    dim: int = 32
    depth: int = 4
    heads: int = 4
    ffn_hidden: int = 86
    rope_theta: float = 10000.0
    norm_eps: float = 1e-5
    exit_after: tuple[int, ...] = (1, 2, 4)
    num_classes: int = 4

    def __post_init__(self) -> None:
        for f in ("vocab_size", "seq_len", "dim", "depth", "heads", "ffn_hidden", "num_classes"):
            _positive_int(self, f)
        for f in ("rope_theta", "norm_eps"):
            _positive_float(self, f)
        if self.dim % self.heads or (self.dim // self.heads) % 2:
            raise ValueError(f"LlamaConfig.heads={self.heads}: dim={self.dim} / heads must be an even int (rotary pairs)")
        _check_exits(self, self.depth)

    @property
    def num_layers(self) -> int:
        return self.depth


ModelConfig = Union[MLPConfig, ResNetConfig, ViTConfig, LlamaConfig]


@dataclass(frozen=True)
class TrainConfig:
    """Joint training of all exits: loss = sum_k w_k * CE(exit k) / sum_k w_k, AdamW.

    ``epochs`` is an upper bound: the weights kept are those of the epoch with the best mean
    validation accuracy over exits (the test split is never looked at during training).
    ``exit_loss_weights`` default: all 1.
    """

    epochs: int = 60
    batch_size: int = 64
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    exit_loss_weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for f in ("epochs", "batch_size"):
            _positive_int(self, f)
        _positive_float(self, "learning_rate")
        if isinstance(self.weight_decay, bool) or not isinstance(self.weight_decay, (int, float)) or self.weight_decay < 0:
            raise ValueError(f"TrainConfig.weight_decay={self.weight_decay!r}: must be a number >= 0")
        w = self.exit_loss_weights
        if w is not None and (not isinstance(w, tuple) or not w or any(not isinstance(x, (int, float)) or x < 0 for x in w)):
            raise ValueError(f"TrainConfig.exit_loss_weights={w!r}: must be None or a tuple of numbers >= 0")


DEFAULT_CONFIGS: dict[str, ModelConfig] = {
    "mlp": MLPConfig(),
    "resnet": ResNetConfig(),
    "vit": ViTConfig(),
    "llama": LlamaConfig(),
}

DEFAULT_TRAIN: dict[str, TrainConfig] = {
    "mlp": TrainConfig(epochs=80, batch_size=64, learning_rate=3e-3, exit_loss_weights=(0.25, 0.5, 1.0)),
    "resnet": TrainConfig(epochs=40, batch_size=64, learning_rate=3e-3),
    "vit": TrainConfig(epochs=40, batch_size=64, learning_rate=1e-3, exit_loss_weights=(0.25, 0.5, 1.0)),
    "llama": TrainConfig(epochs=15, batch_size=64, learning_rate=3e-3, exit_loss_weights=(0.25, 0.5, 1.0)),
}


def config_for_family(family: str) -> ModelConfig:
    """Default model config for ``family``; ValueError for an unknown family."""
    if family not in FAMILIES:
        raise ValueError(f"family={family!r}: must be one of {FAMILIES}")
    return DEFAULT_CONFIGS[family]


def family_of(config: ModelConfig) -> str:
    """The family name of a config instance."""
    for fam, cls in (("mlp", MLPConfig), ("resnet", ResNetConfig), ("vit", ViTConfig), ("llama", LlamaConfig)):
        if isinstance(config, cls):
            return fam
    raise ValueError(f"config={config!r}: not a known model config type")


def config_to_dict(config: Any) -> dict[str, Any]:
    """JSON-friendly dict of a config dataclass (tuples become lists)."""
    return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(config).items()}
