"""Serialisation of activations into the real bytes that travel over the simulated network.

Formats (all little-endian, no shape header: both ends know the stage's activation shape):

- ``"fp32"``: raw float32, ``4 * numel`` bytes.
- ``"fp16"``: raw float16, ``2 * numel`` bytes.
- ``"int8"``: a 4-byte float32 scale header, then ``numel`` int8 values
  (symmetric per-tensor quantisation, ``value ~= scale * q``, q in [-127, 127]);
  ``4 + numel`` bytes.
"""
from __future__ import annotations

import struct

import numpy as np
import torch

ACTIVATION_DTYPES: tuple[str, ...] = ("fp32", "fp16", "int8")
_INT8_HEADER_BYTES = 4


def _check_dtype(dtype: str) -> None:
    if dtype not in ACTIVATION_DTYPES:
        raise ValueError(f"dtype={dtype!r}: must be one of {ACTIVATION_DTYPES}")


def activation_size_bytes(numel: int, dtype: str = "fp32") -> int:
    """Size in bytes of ``serialize_activation`` output for a tensor of ``numel`` elements."""
    _check_dtype(dtype)
    if numel < 0:
        raise ValueError(f"numel={numel}: must be >= 0")
    if dtype == "fp32":
        return 4 * numel
    if dtype == "fp16":
        return 2 * numel
    return _INT8_HEADER_BYTES + numel


def serialize_activation(t: torch.Tensor, dtype: str = "fp32") -> bytes:
    """Serialise a tensor to raw little-endian bytes in the given wire format (see module doc)."""
    _check_dtype(dtype)
    a = t.detach().to("cpu", torch.float32).contiguous().numpy().reshape(-1)
    if dtype == "fp32":
        return a.astype("<f4", copy=False).tobytes()
    if dtype == "fp16":
        return a.astype("<f2").tobytes()
    max_abs = float(np.max(np.abs(a))) if a.size else 0.0
    scale = max_abs / 127.0 if max_abs > 0 and np.isfinite(max_abs) else 1.0
    q = np.clip(np.rint(a / scale), -127, 127).astype(np.int8)
    return struct.pack("<f", scale) + q.tobytes()


def deserialize_activation(data: bytes, shape: tuple[int, ...], dtype: str = "fp32") -> torch.Tensor:
    """Inverse of :func:`serialize_activation`; returns a float32 tensor of ``shape``."""
    _check_dtype(dtype)
    numel = int(np.prod(shape)) if len(shape) else 1
    expected = activation_size_bytes(numel, dtype)
    if len(data) != expected:
        raise ValueError(f"len(data)={len(data)}: expected {expected} bytes for shape {shape} in {dtype}")
    if dtype == "fp32":
        a = np.frombuffer(data, dtype="<f4")
    elif dtype == "fp16":
        a = np.frombuffer(data, dtype="<f2").astype(np.float32)
    else:
        (scale,) = struct.unpack("<f", data[:_INT8_HEADER_BYTES])
        a = np.frombuffer(data[_INT8_HEADER_BYTES:], dtype=np.int8).astype(np.float32) * scale
    return torch.from_numpy(a.astype(np.float32).reshape(shape).copy())
