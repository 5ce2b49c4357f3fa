"""Estimated per-stage profiles of named large decoder models (not trained, not run).

FLOPs, parameter bytes and activation bytes are computed from the architecture; latency is
``flops / device_flops`` where ``device_flops`` (FLOP/s) is given or measured here with an
fp32 matmul. Every profile returned has ``estimated=True`` and a ``device`` string that
starts with "estimated".

Conventions (stated in profile.json too):
- one task = a prompt of ``seq_len`` tokens processed in one forward pass (prefill),
  batch 1; the exit head classifies / predicts from the last position only;
- a multiply-add counts 2 FLOPs; attention scores and the weighted sum are counted dense
  (4 * T^2 * d per layer, no causal halving); norms, activations, softmax, rotary are
  not counted (they are < 1 % here);
- layers are split as evenly as possible into K stages (earlier stages take the extra
  layers); stage 1 also holds the token (and position) embedding;
- every stage ends in an exit head shaped like the model's own output head (final norm +
  d x vocab linear, an untied copy); the last stage's head is the model's own;
- activation sent between stages: the hidden states of all ``seq_len`` positions,
  [T, d], in fp32 / fp16 / int8 (``serialize`` wire formats);
- parameter bytes in ``param_dtype`` (default fp16, as these models are usually served);
- with ``wire_dtype = "int8"`` a stage's latency also holds the (de)quantisation of what it
  sends and receives (:func:`int8_codec_s`: an ESTIMATE, see there); fp32 / fp16 cost nothing extra.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ._seed import scoped_threads
from .profiling import StageProfile, device_tag
from .serialize import activation_size_bytes

_DTYPE_BYTES = {"fp32": 4, "fp16": 2, "bf16": 2, "int8": 1}


@dataclass(frozen=True)
class DecoderArch:
    """Architecture numbers of a decoder-only transformer (public model cards / configs)."""

    name: str
    num_layers: int
    dim: int
    heads: int
    kv_heads: int
    ffn_hidden: int
    vocab_size: int
    max_positions: int
    gated_mlp: bool  # SwiGLU (3 matrices) vs GELU MLP (2 matrices)
    biases: bool  # biases on linear layers (GPT-2) or none (LLaMA)
    layernorm: bool  # LayerNorm (weight + bias) vs RMSNorm (weight)
    learned_positions: bool

    def __post_init__(self) -> None:
        for f in ("num_layers", "dim", "heads", "kv_heads", "ffn_hidden", "vocab_size", "max_positions"):
            v = getattr(self, f)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"DecoderArch.{f}={v!r}: must be a positive int")
        if self.dim % self.heads or self.heads % self.kv_heads:
            raise ValueError(f"DecoderArch.heads={self.heads}, kv_heads={self.kv_heads}: must divide dim={self.dim} / heads")

    @property
    def norm_params(self) -> int:
        return 2 * self.dim if self.layernorm else self.dim

    @property
    def kv_dim(self) -> int:
        return self.dim // self.heads * self.kv_heads

    def layer_matrix_params(self) -> int:
        """Weights of one block's matrices (excluding biases and norms)."""
        d = self.dim
        attn = d * (d + 2 * self.kv_dim) + d * d
        mlp = (3 if self.gated_mlp else 2) * d * self.ffn_hidden
        return attn + mlp

    def layer_params(self) -> int:
        """All parameters of one block."""
        extra = 0
        if self.biases:
            extra = (self.dim + 2 * self.kv_dim) + self.dim + self.ffn_hidden + self.dim
        return self.layer_matrix_params() + extra + 2 * self.norm_params

    def embedding_params(self) -> int:
        return self.vocab_size * self.dim + (self.max_positions * self.dim if self.learned_positions else 0)

    def head_params(self) -> int:
        return self.norm_params + self.dim * self.vocab_size

    def layer_flops(self, seq_len: int) -> int:
        return 2 * seq_len * self.layer_matrix_params() + 4 * seq_len * seq_len * self.dim

    def head_flops(self) -> int:
        return 2 * self.dim * self.vocab_size


LARGE_MODELS: dict[str, DecoderArch] = {
    "llama-2-7b": DecoderArch("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096, True, False, False, False),
    "llama-2-13b": DecoderArch("llama-2-13b", 40, 5120, 40, 40, 13824, 32000, 4096, True, False, False, False),
    "gpt2-xl": DecoderArch("gpt2-xl", 48, 1600, 25, 25, 6400, 50257, 1024, False, True, True, True),
    "gpt2": DecoderArch("gpt2", 12, 768, 12, 12, 3072, 50257, 1024, False, True, True, True),
}


def split_layers(num_layers: int, num_stages: int) -> list[range]:
    """0-based layer ranges of K contiguous stages, as even as possible (earlier get extras)."""
    if not isinstance(num_stages, int) or not 1 <= num_stages <= num_layers:
        raise ValueError(f"num_stages={num_stages!r}: must be an int in 1..{num_layers} (the number of layers)")
    base, extra = divmod(num_layers, num_stages)
    out, start = [], 0
    for k in range(num_stages):
        n = base + (1 if k < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out


def measure_matmul_flops(size: int = 1024, repeats: int = 5, num_threads: int | None = 1) -> float:
    """This machine's fp32 matmul throughput in FLOP/s (median of ``repeats`` size^3 matmuls),
    with ``num_threads`` torch threads (restored afterwards; None = as set)."""
    if size < 16 or repeats < 1:
        raise ValueError(f"size={size}, repeats={repeats}: need size >= 16 and repeats >= 1")
    g = torch.Generator().manual_seed(0)
    with scoped_threads(num_threads), torch.inference_mode():
        a = torch.rand(size, size, generator=g)
        b = torch.rand(size, size, generator=g)
        a @ b  # warm-up
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            a @ b
            times.append(time.perf_counter() - t0)
    return 2.0 * size**3 / float(np.median(times))


# int8 wire format (``serialize``: absmax scale, then round): per element, quantising is
# |x|, the running max, x / scale, round, clamp (5 operations; x read twice as fp16 and
# written once as int8: 5 bytes); dequantising is a cast and a multiply (2 operations;
# 1 byte read, 2 written: 3 bytes). These are counts of the kernels' work, not measurements.
INT8_QUANTISE_OPS_PER_ELEMENT = 5
INT8_DEQUANTISE_OPS_PER_ELEMENT = 2
INT8_QUANTISE_BYTES_PER_ELEMENT = 5
INT8_DEQUANTISE_BYTES_PER_ELEMENT = 3


def int8_codec_s(numel: int, device_flops: float, memory_bytes_per_s: float | None = None, *,
                 quantise: bool = True) -> float:
    """ESTIMATED time to quantise (``quantise=True``) or dequantise ``numel`` activations.

    Roofline of an elementwise kernel: max(ops x numel / device_flops, bytes x numel /
    memory_bytes_per_s). Without a memory bandwidth (the FLOP/s-only device model) only the
    first term counts, a lower bound: such kernels are memory-bound on real devices, so a
    device profile with its memory bandwidth should pass ``memory_bytes_per_s``.
    """
    ops = INT8_QUANTISE_OPS_PER_ELEMENT if quantise else INT8_DEQUANTISE_OPS_PER_ELEMENT
    moved = INT8_QUANTISE_BYTES_PER_ELEMENT if quantise else INT8_DEQUANTISE_BYTES_PER_ELEMENT
    compute_s = ops * numel / device_flops
    memory_s = moved * numel / memory_bytes_per_s if memory_bytes_per_s else 0.0
    return max(compute_s, memory_s)


def large_model_profile(name: str, num_stages: int, device_flops: float | None = None, *, seq_len: int = 512,
                        param_dtype: str = "fp16", num_threads: int | None = 1,
                        wire_dtype: str = "fp32") -> list[StageProfile]:
    """Estimated StageProfiles of the named model (``LARGE_MODELS``) cut into ``num_stages``.

    device_flops: FLOP/s of the target device; None = measured here by ``measure_matmul_flops``.
    seq_len: tokens per task (prompt length), 1..max_positions.
    wire_dtype: format of the activations sent between stages; "int8" adds the estimated
        quantisation of stage k's output (k < K) and dequantisation of its input (k > 1)
        to stage k's latency.
    """
    if name not in LARGE_MODELS:
        raise ValueError(f"name={name!r}: must be one of {sorted(LARGE_MODELS)}")
    arch = LARGE_MODELS[name]
    if not isinstance(seq_len, int) or not 1 <= seq_len <= arch.max_positions:
        raise ValueError(f"seq_len={seq_len!r}: must be an int in 1..{arch.max_positions}")
    if wire_dtype not in ("fp32", "fp16", "int8"):
        raise ValueError(f"wire_dtype={wire_dtype!r}: must be one of ['fp16', 'fp32', 'int8']")
    if param_dtype not in _DTYPE_BYTES:
        raise ValueError(f"param_dtype={param_dtype!r}: must be one of {sorted(_DTYPE_BYTES)}")
    if device_flops is None:
        device_flops = measure_matmul_flops(num_threads=num_threads)
        device = f"estimated from {device_flops / 1e9:.1f} GFLOP/s (fp32 matmul measured on {device_tag(num_threads)})"
    else:
        if not device_flops > 0:
            raise ValueError(f"device_flops={device_flops!r}: must be > 0 FLOP/s")
        device = f"estimated from {device_flops / 1e9:.1f} GFLOP/s (given)"
    pb = _DTYPE_BYTES[param_dtype]
    act_numel = seq_len * arch.dim
    out = []
    for k, layers in enumerate(split_layers(arch.num_layers, num_stages), start=1):
        params = len(layers) * arch.layer_params() + arch.head_params() + (arch.embedding_params() if k == 1 else 0)
        flops = len(layers) * arch.layer_flops(seq_len) + arch.head_flops()
        latency_s = flops / device_flops
        if wire_dtype == "int8":
            latency_s += (int8_codec_s(act_numel, device_flops, quantise=True) if k < num_stages else 0.0) + \
                         (int8_codec_s(act_numel, device_flops, quantise=False) if k > 1 else 0.0)
        out.append(StageProfile(
            stage=k, latency_s=latency_s, latency_p95_s=latency_s,
            activation_bytes=activation_size_bytes(act_numel, "fp32"), param_bytes=params * pb, flops=int(flops),
            device=device, activation_bytes_fp16=activation_size_bytes(act_numel, "fp16"),
            activation_bytes_int8=activation_size_bytes(act_numel, "int8"), estimated=True))
    return out


def total_params(name: str) -> int:
    """Parameter count of the named model as served (embedding + layers + one output head)."""
    arch = LARGE_MODELS[name]
    return arch.embedding_params() + arch.num_layers * arch.layer_params() + arch.head_params()
