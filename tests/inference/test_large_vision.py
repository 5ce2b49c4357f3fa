"""Estimated profiles of the large vision transformers (ViT-L/16, ViT-H/14 at 224 px)."""
import pytest

from inference.large_models import LARGE_MODELS, VisionArch, is_vision, large_model_profile, total_params
from inference.report import write_profile


def test_param_counts_and_macs_match_the_published_models():
    # Dosovitskiy et al. 2021 / torchvision's vit_l_16 and vit_h_14 with a 1000-class head.
    assert total_params("vit-l-16") == 304_326_632
    assert total_params("vit-h-14") == 632_045_800
    # Published compute at 224 px: 61.6 and 167.4 GMACs (1 MAC = 2 FLOPs here).
    for name, gmacs in (("vit-l-16", 61.6), ("vit-h-14", 167.4)):
        flops = sum(p.flops for p in large_model_profile(name, 1, 1e12))
        assert flops / 2e9 == pytest.approx(gmacs, rel=0.01), name


@pytest.mark.parametrize("name, tokens", [("vit-l-16", 197), ("vit-h-14", 257)])
def test_vit_profile_estimated(name, tokens):
    arch = LARGE_MODELS[name]
    assert is_vision(name) and arch.tokens == tokens and arch.input_bytes == 3 * 224 * 224
    prof = large_model_profile(name, 3, device_flops=1e14)
    assert all(p.estimated and p.device.startswith("estimated") for p in prof)
    assert all(p.latency_s == pytest.approx(p.flops / 1e14) for p in prof)
    assert all(p.activation_bytes_fp16 == tokens * arch.dim * 2 and p.activation_bytes_int8 == tokens * arch.dim + 4
               for p in prof)
    # Stage 1 holds the patch embedding: more FLOPs and parameters than an equal later stage.
    assert prof[0].flops - prof[1].flops == arch.embedding_flops()
    assert prof[0].param_bytes - prof[1].param_bytes == 2 * arch.embedding_params()
    assert sum(p.param_bytes for p in prof) == 2 * (total_params(name) + 2 * arch.head_params())
    with pytest.raises(ValueError, match=f"sees {tokens} tokens"):
        large_model_profile(name, 3, 1e14, seq_len=512)


def test_vision_arch_checks_and_profile_files(tmp_path):
    with pytest.raises(ValueError, match="patch_size=15 must divide image_size=224"):
        VisionArch("bad", 2, 64, 4, 128, 15)
    paths = write_profile("vit-l-16", tmp_path, num_stages=3, device_flops=1e14)
    text = paths["profile_json"].read_text()
    assert '"estimated": true' in text and '"seq_len": 197' in text and "class token" in text
    assert paths["plot_png"].name.endswith("ESTIMATED.png")
