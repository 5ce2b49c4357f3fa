"""Named edge devices and a roofline estimate of a stage's latency on them (ESTIMATED).

Every figure below is the vendor's datasheet figure (URL beside it). ``fp16_flops`` is the
*dense* FP16 Tensor Core peak: datasheets quote it "with sparsity" (2:4 structured
sparsity, twice the dense rate), and a dense decoder's matmuls do not use sparsity, so the
quoted figure is halved. Where a datasheet gives no FP16 figure (Jetson modules quote
INT8 TOPS) the derivation is written beside the number.

Roofline (Williams, Waterman & Patterson, CACM 2009) for one stage of one task::

    latency_s = max(flops / (fp16_flops * efficiency), bytes_moved / memory_bandwidth_Bps)

``efficiency`` is :data:`ROOFLINE_EFFICIENCY` unless given: the share of the dense tensor
peak that fp16 GEMMs of a prefill reach. The bandwidth side uses the datasheet peak as is.
Everything computed from this module is an estimate, not a measurement: profiles carry
``estimated=True`` and a device string starting with "estimated (roofline".

Per-stage costs of a named decoder (:func:`decoder_stage_costs`) for a prompt of T tokens,
batch 1, fp16 weights and activations (``inference.large_models`` conventions):

* flops: as ``DecoderArch.layer_flops(T)`` per layer + the exit head on the last position;
* bytes_moved: every weight of the stage's layers and head read once, the embedding rows of
  the T tokens (stage 1), the stage's KV cache written (2 x layers x T x kv_dim), the
  hidden states read in and written out (2 x T x d);
* kv_cache_bytes: what a task in service keeps for its layers, 2 x layers x T x kv_dim
  values (K and V);
* working_bytes: the transient peak of one layer's forward pass: hidden states in and out,
  Q, K, V (T x (d + 2 kv_dim)), the attention scores (heads x T x T, no fused kernel
  assumed) and the SwiGLU/GELU intermediates (2 x T x ffn_hidden), all fp16.
"""
from __future__ import annotations

from dataclasses import dataclass

from .large_models import LARGE_MODELS, DecoderArch, split_layers

#: Share of the dense fp16 tensor peak reached by a prefill's GEMMs. Tuned GEMM libraries
#: reach 60-80% of peak on large square matrices; a batch-1 prefill also runs attention,
#: norms and smaller matmuls, and inference servers commonly report 40-60% model FLOPs
#: utilisation for prefill. 0.5 is the middle of that range; sweep ``model.roofline_efficiency``
#: to see how much a result depends on it.
ROOFLINE_EFFICIENCY = 0.5

FP16_BYTES = 2


@dataclass(frozen=True)
class DeviceProfile:
    """One device's datasheet figures. ``memory_bytes``: device (or unified) memory."""

    name: str
    label: str
    kind: str                      # "data-centre GPU" | "inference GPU" | "embedded module"
    fp16_flops: float              # dense FP16 tensor peak, FLOP/s
    memory_bandwidth_Bps: float    # peak DRAM bandwidth, bytes/s
    memory_bytes: int              # device memory, bytes (GB = 1e9 as datasheets use it)
    source: str                    # datasheet URL
    note: str = ""

    def __post_init__(self) -> None:
        for f in ("fp16_flops", "memory_bandwidth_Bps", "memory_bytes"):
            if not getattr(self, f) > 0:
                raise ValueError(f"DeviceProfile.{f}={getattr(self, f)!r}: must be > 0")


DEVICES: dict[str, DeviceProfile] = {d.name: d for d in (
    DeviceProfile(
        "h100-pcie", "NVIDIA H100 PCIe 80GB", "data-centre GPU", 756e12, 2.0e12, 80 * 10**9,
        "https://resources.nvidia.com/en-us-tensor-core/nvidia-tensor-core-gpu-datasheet",
        "FP16 Tensor Core 1,513 TFLOPS with sparsity -> 756 dense; HBM2e 2.0 TB/s; 80 GB"),
    DeviceProfile(
        "a100-80gb-pcie", "NVIDIA A100 80GB PCIe", "data-centre GPU", 312e12, 1.935e12, 80 * 10**9,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
        "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf",
        "FP16 Tensor Core 312 TFLOPS dense (624 with sparsity); HBM2e 1,935 GB/s; 80 GB"),
    DeviceProfile(
        "l4", "NVIDIA L4", "inference GPU", 121e12, 300e9, 24 * 10**9,
        "https://www.nvidia.com/en-us/data-center/l4/",
        "FP16 Tensor Core 242 TFLOPS with sparsity -> 121 dense; GDDR6 300 GB/s; 24 GB; 72 W"),
    DeviceProfile(
        "t4", "NVIDIA T4", "inference GPU", 65e12, 320e9, 16 * 10**9,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf",
        "mixed-precision (FP16/FP32) 65 TFLOPS (Turing: no sparsity); GDDR6 320+ GB/s; 16 GB; 70 W"),
    DeviceProfile(
        "jetson-agx-orin-64gb", "NVIDIA Jetson AGX Orin 64GB", "embedded module", 42.5e12, 204.8e9, 64 * 10**9,
        "https://www.nvidia.com/content/dam/en-zz/Solutions/gtcf21/jetson-orin/nvidia-jetson-agx-orin-technical-brief.pdf",
        "GPU 170 sparse INT8 TOPS (2048 CUDA cores, 64 Tensor Cores, 1.3 GHz); Ampere FP16 dense = "
        "INT8 sparse / 4 = 42.5 TFLOPS; LPDDR5 204.8 GB/s; 64 GB shared by CPU and GPU"),
    DeviceProfile(
        "jetson-orin-nx-16gb", "NVIDIA Jetson Orin NX 16GB", "embedded module", 15.0e12, 102.4e9, 16 * 10**9,
        "https://github.com/icub-tech-iit/cad-libraries/files/13056089/JETSON-ORIN-NX-DATASHEET.pdf "
        "(NVIDIA Jetson Orin NX Series datasheet)",
        "GPU 1024 CUDA cores, 32 Tensor Cores, 918 MHz; FP16 dense = 32 x 918 MHz x 512 FLOP/clock per Orin "
        "Tensor Core (the AGX brief's 170 sparse INT8 TOPS / 4 / (64 x 1.3 GHz)) = 15.0 TFLOPS; "
        "LPDDR5 102.4 GB/s; 16 GB shared by CPU and GPU"),
)}


def device(name: str) -> DeviceProfile:
    if name not in DEVICES:
        raise ValueError(f"device={name!r}: must be one of {sorted(DEVICES)}")
    return DEVICES[name]


def roofline_latency_s(flops: float, bytes_moved: float, dev: DeviceProfile | str,
                       efficiency: float = ROOFLINE_EFFICIENCY) -> float:
    """max(flops / (fp16_flops x efficiency), bytes_moved / memory_bandwidth_Bps), seconds."""
    dev = device(dev) if isinstance(dev, str) else dev
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency={efficiency!r}: must be in (0, 1]")
    if flops < 0 or bytes_moved < 0:
        raise ValueError(f"flops={flops!r}, bytes_moved={bytes_moved!r}: must be >= 0")
    return max(flops / (dev.fp16_flops * efficiency), bytes_moved / dev.memory_bandwidth_Bps)


def ridge_intensity(dev: DeviceProfile | str, efficiency: float = ROOFLINE_EFFICIENCY) -> float:
    """FLOPs per byte above which a kernel is compute-bound on ``dev``."""
    dev = device(dev) if isinstance(dev, str) else dev
    return dev.fp16_flops * efficiency / dev.memory_bandwidth_Bps


@dataclass(frozen=True)
class StageCost:
    """One stage of one task (1-based ``stage``); see the module doc for each term."""

    stage: int
    tokens: int
    flops: int
    bytes_moved: int
    param_bytes: int
    kv_cache_bytes: int
    working_bytes: int


def decoder_stage_costs(arch: DecoderArch | str, num_stages: int, tokens: int) -> list[StageCost]:
    """Per-stage FLOPs, bytes moved, fp16 parameter bytes, KV cache and working memory of a
    decoder cut into ``num_stages`` (``large_models.split_layers``) for a T-token prompt."""
    arch = LARGE_MODELS[arch] if isinstance(arch, str) else arch
    if not isinstance(tokens, int) or not 1 <= tokens <= arch.max_positions:
        raise ValueError(f"tokens={tokens!r}: must be an int in 1..{arch.max_positions}")
    b, t, d = FP16_BYTES, tokens, arch.dim
    kv_per_layer = 2 * t * arch.kv_dim * b
    mlp_width = 2 if arch.gated_mlp else 1
    working = b * (2 * t * d + t * (d + 2 * arch.kv_dim) + arch.heads * t * t + mlp_width * t * arch.ffn_hidden)
    out = []
    for k, layers in enumerate(split_layers(arch.num_layers, num_stages), start=1):
        n = len(layers)
        params = n * arch.layer_params() + arch.head_params() + (arch.embedding_params() if k == 1 else 0)
        read_params = n * arch.layer_params() + arch.head_params()
        embed_read = t * d * (2 if arch.learned_positions else 1) if k == 1 else 0
        flops = n * arch.layer_flops(t) + arch.head_flops()
        bytes_moved = b * (read_params + embed_read) + n * kv_per_layer + 2 * t * d * b
        out.append(StageCost(k, t, int(flops), int(bytes_moved), int(params * b), int(n * kv_per_layer), int(working)))
    return out


def stage_latencies_s(costs: list[StageCost], dev: DeviceProfile | str,
                      efficiency: float = ROOFLINE_EFFICIENCY) -> list[float]:
    """Roofline latency of each stage on ``dev``."""
    return [roofline_latency_s(c.flops, c.bytes_moved, dev, efficiency) for c in costs]


def device_label(dev: DeviceProfile | str, efficiency: float = ROOFLINE_EFFICIENCY) -> str:
    """The string profiles and plots carry: says it is an estimate and from what."""
    dev = device(dev) if isinstance(dev, str) else dev
    return (f"estimated (roofline) on {dev.label}: {dev.fp16_flops / 1e12:g} TFLOP/s fp16 dense x {efficiency:g}, "
            f"{dev.memory_bandwidth_Bps / 1e9:g} GB/s")
