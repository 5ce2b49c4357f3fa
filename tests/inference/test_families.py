"""All families share the StagedModel contract. Fast tests use tiny configs and 1 epoch;
the ``slow`` tests train the default configs (minutes on 2 cores, cached per session)."""
import numpy as np
import pytest
import torch

from inference import LlamaConfig, ResNetConfig, TrainConfig, ViTConfig, load_staged_model, serialize_activation

TINY = {
    "resnet": ResNetConfig(stem_channels=4, block_channels=(4, 8, 8), exit_after=(1, 2, 3)),
    "vit": ViTConfig(dim=16, depth=3, heads=2, exit_after=(1, 2, 3)),
    "llama": LlamaConfig(dim=16, depth=3, heads=2, ffn_hidden=32, exit_after=(1, 2, 3)),
}
ONE_EPOCH = TrainConfig(epochs=1)


@pytest.mark.parametrize("family", sorted(TINY))
def test_tiny_family_contract(family, tmp_path):
    m = load_staged_model(family, seed=0, cache_dir=tmp_path, config=TINY[family], train_config=ONE_EPOCH)
    assert m.num_stages == 3 and len(m.profile) == 3
    if family == "llama":
        assert m.test_inputs.dtype == torch.int64 and m.test_inputs.shape[1] == TINY[family].seq_len
        assert m.input_bytes == TINY[family].seq_len * 8
    else:
        assert m.test_inputs.shape[1:] == (1, 8, 8) and m.input_bytes == 256
    for n in (0, 5):
        x, _ = m.sample(n)
        for k in (1, 2, 3):
            r = m.run_stage(k, x)
            assert r.confidence == m.replay.confidence[n, k - 1] and r.predicted == m.replay.predicted[n, k - 1]
            assert r.activation_bytes == len(serialize_activation(r.activation)) == m.profile[k - 1].activation_bytes
            x = r.activation
    assert all(p.flops > 0 and p.param_bytes > 0 and p.latency_s > 0 for p in m.profile)
    again = load_staged_model(family, seed=0, cache_dir=tmp_path, config=TINY[family], train_config=ONE_EPOCH)
    assert again.loaded_from_cache and np.array_equal(again.replay.confidence, m.replay.confidence)


def test_config_must_match_family(tmp_path):
    with pytest.raises(ValueError, match="family='vit'"):
        load_staged_model("vit", cache_dir=tmp_path, config=TINY["resnet"])


@pytest.mark.slow
@pytest.mark.parametrize("family", ["resnet", "vit", "llama"])
def test_default_family_honest_exits(family, cache_dir):
    m = load_staged_model(family, seed=0, cache_dir=cache_dir)
    acc = m.exit_test_accuracy()
    assert acc[-1] >= acc[0] and acc[-1] > 0.9, acc
    for c in m.exit_curves():
        assert c.exit_share[0] == 1.0
    if family == "llama":
        # exit 1 (one layer) cannot bind NOT to its vote: hard samples need depth
        flipped = m.test_meta["flipped"].astype(bool)
        correct1 = m.replay.predicted[:, 0] == m.test_labels
        correct_last = m.replay.predicted[:, -1] == m.test_labels
        assert correct1[flipped].mean() < correct_last[flipped].mean() - 0.3


def test_tiny_vit_training_deterministic(tmp_path):
    a = load_staged_model("vit", seed=3, cache_dir=tmp_path / "a", config=TINY["vit"], train_config=ONE_EPOCH)
    b = load_staged_model("vit", seed=3, cache_dir=tmp_path / "b", config=TINY["vit"], train_config=ONE_EPOCH)
    assert all(torch.equal(x, y) for x, y in zip(a.net.state_dict().values(), b.net.state_dict().values()))
    assert np.array_equal(a.replay.confidence, b.replay.confidence)
