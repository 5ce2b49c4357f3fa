"""Multi-exit networks: a list of K stage blocks and K exit heads, one module per family.

``MultiExitNet.stage_forward(k, x)`` runs stage block k (1-based) and returns the activation;
``MultiExitNet.exit_logits(k, a)`` runs exit head k on it. Stage 1 includes the input
embedding (stem / patch embedding / token embedding).
"""
from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn

from .configs import LlamaConfig, MLPConfig, ModelConfig, ResNetConfig, ViTConfig


def _stage_layer_ranges(exit_after: tuple[int, ...]) -> list[range]:
    """0-based layer index ranges per stage: stage k covers layers (exit_after[k-2], exit_after[k-1]]."""
    starts = (0,) + exit_after[:-1]
    return [range(a, b) for a, b in zip(starts, exit_after)]


class MultiExitNet(nn.Module):
    """K stage blocks + K exit heads. Subclasses fill ``self.stages`` and ``self.heads``."""

    stages: nn.ModuleList
    heads: nn.ModuleList

    @property
    def num_stages(self) -> int:
        return len(self.stages)

    def stage_forward(self, k: int, x: torch.Tensor) -> torch.Tensor:
        return self.stages[k - 1](x)

    def exit_logits(self, k: int, a: torch.Tensor) -> torch.Tensor:
        return self.heads[k - 1](a)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Logits of every exit, for training: list of K tensors [B, classes]."""
        out = []
        for k in range(1, self.num_stages + 1):
            x = self.stage_forward(k, x)
            out.append(self.exit_logits(k, x))
        return out


# ---------------------------------------------------------------- MLP
class MLPNet(MultiExitNet):
    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        widths = (cfg.input_dim,) + cfg.hidden_widths
        layers = [nn.Sequential(nn.Linear(widths[i], widths[i + 1]), nn.ReLU()) for i in range(cfg.num_layers)]
        self.stages = nn.ModuleList(nn.Sequential(*[layers[i] for i in r]) for r in _stage_layer_ranges(cfg.exit_after))
        self.heads = nn.ModuleList(nn.Linear(cfg.hidden_widths[e - 1], cfg.num_classes) for e in cfg.exit_after)


# ---------------------------------------------------------------- ResNet
class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv when shape changes), ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + self.shortcut(x))


class PoolHead(nn.Module):
    """Global average pool + linear classifier."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc(a.mean(dim=(2, 3)))


class ResNetNet(MultiExitNet):
    def __init__(self, cfg: ResNetConfig) -> None:
        super().__init__()
        stem = nn.Sequential(nn.Conv2d(cfg.in_channels, cfg.stem_channels, 3, 1, 1, bias=False),
                             nn.BatchNorm2d(cfg.stem_channels), nn.ReLU())
        blocks = []
        c_prev = cfg.stem_channels
        for c in cfg.block_channels:
            blocks.append(BasicBlock(c_prev, c, 2 if c > c_prev else 1))
            c_prev = c
        stages = []
        for i, r in enumerate(_stage_layer_ranges(cfg.exit_after)):
            mods = [blocks[j] for j in r]
            stages.append(nn.Sequential(stem, *mods) if i == 0 else nn.Sequential(*mods))
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(PoolHead(cfg.block_channels[e - 1], cfg.num_classes) for e in cfg.exit_after)


# ---------------------------------------------------------------- ViT
def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool) -> torch.Tensor:
    """softmax(q k^T / sqrt(d)) v on [B, H, T, Dh], explicitly (for these tiny sequences it
    is several times faster on CPU than the fused SDPA kernel, and gives the same result)."""
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5)
    if causal:
        t = q.shape[-2]
        mask = torch.ones(t, t, dtype=torch.bool, device=q.device).triu(1)
        scores = scores.masked_fill(mask, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


class Attention(nn.Module):
    """Multi-head self-attention with fused qkv projection; optional rotary embedding."""

    def __init__(self, dim: int, heads: int, causal: bool, bias: bool) -> None:
        super().__init__()
        self.heads = heads
        self.causal = causal
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.proj = nn.Linear(dim, dim, bias=bias)

    def forward(self, x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if rope is not None:
            q, k = apply_rope(q, rope), apply_rope(k, rope)
        y = attention(q, k, v, self.causal)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class ViTBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_hidden: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, causal=False, bias=True)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_hidden), nn.GELU(), nn.Linear(mlp_hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    """Image [B, C, H, W] -> tokens [B, 1 + patches, dim] (CLS first, learned positions)."""

    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        self.proj = nn.Conv2d(cfg.in_channels, cfg.dim, cfg.patch_size, cfg.patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, cfg.dim))
        self.pos = nn.Parameter(torch.randn(1, cfg.num_patches + 1, cfg.dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.proj(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(p.shape[0], -1, -1), p], dim=1) + self.pos


class ClsHead(nn.Module):
    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.fc = nn.Linear(dim, num_classes)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(a[:, 0]))


class ViTNet(MultiExitNet):
    def __init__(self, cfg: ViTConfig) -> None:
        super().__init__()
        embed = PatchEmbed(cfg)
        blocks = [ViTBlock(cfg.dim, cfg.heads, int(round(cfg.dim * cfg.mlp_ratio))) for _ in range(cfg.depth)]
        stages = []
        for i, r in enumerate(_stage_layer_ranges(cfg.exit_after)):
            mods = [blocks[j] for j in r]
            stages.append(nn.Sequential(embed, *mods) if i == 0 else nn.Sequential(*mods))
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(ClsHead(cfg.dim, cfg.num_classes) for _ in cfg.exit_after)


# ---------------------------------------------------------------- LLaMA-style decoder
class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope_tables(seq_len: int, head_dim: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin tables [seq_len, head_dim/2] for rotary position embeddings."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv_freq)
    return ang.cos(), ang.sin()


def apply_rope(x: torch.Tensor, rope: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Rotate pairs (x[..., 2i], x[..., 2i+1]) of x [B, H, T, Dh] by position-dependent angles."""
    cos, sin = rope
    t = x.shape[-2]
    cos, sin = cos[:t], sin[:t]
    x1, x2 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x1 * cos - x2 * sin, x1 * sin + x2 * cos), dim=-1).flatten(-2)


class SwiGLU(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class LlamaBlock(nn.Module):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg.dim, cfg.heads, causal=True, bias=False)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.ffn = SwiGLU(cfg.dim, cfg.ffn_hidden)
        cos, sin = rope_tables(cfg.seq_len, cfg.dim // cfg.heads, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), (self.rope_cos, self.rope_sin))
        return x + self.ffn(self.ffn_norm(x))


class LastTokenHead(nn.Module):
    """RMSNorm + linear classifier on the last position (it attends to the whole sequence)."""

    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.fc = nn.Linear(cfg.dim, cfg.num_classes, bias=False)

    def forward(self, a: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(a[:, -1]))


class LlamaNet(MultiExitNet):
    def __init__(self, cfg: LlamaConfig) -> None:
        super().__init__()
        embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        blocks = [LlamaBlock(cfg) for _ in range(cfg.depth)]
        stages = []
        for i, r in enumerate(_stage_layer_ranges(cfg.exit_after)):
            mods = [blocks[j] for j in r]
            stages.append(nn.Sequential(embed, *mods) if i == 0 else nn.Sequential(*mods))
        self.stages = nn.ModuleList(stages)
        self.heads = nn.ModuleList(LastTokenHead(cfg) for _ in cfg.exit_after)


def build_net(cfg: ModelConfig) -> MultiExitNet:
    """Build an (untrained) multi-exit net for a config; parameters from torch's global RNG
    (callers seed it in a scope, see ``_seed.scoped_torch_rng``)."""
    if isinstance(cfg, MLPConfig):
        return MLPNet(cfg)
    if isinstance(cfg, ResNetConfig):
        return ResNetNet(cfg)
    if isinstance(cfg, ViTConfig):
        return ViTNet(cfg)
    if isinstance(cfg, LlamaConfig):
        return LlamaNet(cfg)
    raise ValueError(f"config={cfg!r}: unknown config type")


def stage_param_bytes(net: MultiExitNet, k: int, bytes_per_param: int = 4) -> int:
    """Bytes of parameters + persistent buffers of stage block k and exit head k."""
    mods = [net.stages[k - 1], net.heads[k - 1]]
    n = sum(p.numel() for m in mods for p in m.parameters())
    n += sum(b.numel() for m in mods for name, b in m.named_buffers() if b.is_floating_point() and "rope" not in name)
    return n * bytes_per_param
