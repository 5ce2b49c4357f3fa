"""Config validation, data splits and the generated decoder task."""
import numpy as np
import pytest

from inference.configs import LlamaConfig, MLPConfig, ResNetConfig, TrainConfig, ViTConfig, config_for_family
from inference.data import TOKEN_NOT, TOKEN_QUERY, digits_split, make_signed_vote, split_indices


@pytest.mark.parametrize("make, match", [
    (lambda: MLPConfig(hidden_widths=(16, 32), exit_after=(1, 3)), r"exit_after=\(1, 3\).*last layer \(2\)"),
    (lambda: MLPConfig(exit_after=(2, 1, 4)), "strictly increasing"),
    (lambda: ResNetConfig(stem_channels=0), r"ResNetConfig.stem_channels=0"),
    (lambda: ViTConfig(patch_size=3), "patch_size=3"),
    (lambda: ViTConfig(heads=5), "heads=5"),
    (lambda: LlamaConfig(dim=30, heads=4), "heads=4"),
    (lambda: LlamaConfig(exit_after=()), "non-empty"),
    (lambda: TrainConfig(epochs=0), "TrainConfig.epochs=0"),
    (lambda: TrainConfig(exit_loss_weights=(1.0, -1.0)), "exit_loss_weights"),
])
def test_config_validation_names_field(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_unknown_family():
    with pytest.raises(ValueError, match="family='bert'"):
        config_for_family("bert")


def test_digits_split_stratified_and_fixed():
    a, b = digits_split(0, image=False), digits_split(0, image=True)
    assert a.train_x.shape[1:] == (64,) and b.train_x.shape[1:] == (1, 8, 8)
    assert len(a.train_x) + len(a.val_x) + len(a.test_x) == 1797
    assert np.array_equal(a.test_y.numpy(), b.test_y.numpy())
    shares = np.bincount(a.test_y.numpy(), minlength=10) / len(a.test_y)
    assert shares.min() > 0.08 and shares.max() < 0.12
    assert not np.array_equal(digits_split(1, image=False).test_y.numpy(), a.test_y.numpy())
    tr, va, te = split_indices(np.arange(100) % 4, seed=3)
    assert len(set(tr) | set(va) | set(te)) == 100 and not set(tr) & set(te) and not set(va) & set(te)


def _signed_vote_label(seq: np.ndarray) -> tuple[int, int]:
    score = np.zeros(4, int)
    for i, t in enumerate(seq):
        if t < 4:
            score[t] += -1 if i > 0 and seq[i - 1] == TOKEN_NOT else 1
    top = np.sort(score)[::-1]
    return int(np.argmax(score)), int(top[0] - top[1])


def test_signed_vote_labels_true_and_difficulty_spread():
    toks, labels, meta = make_signed_vote(400, 16, seed=7)
    assert toks.shape == (400, 16) and (toks[:, -1] == TOKEN_QUERY).all()
    for seq, y, m in zip(toks, labels, meta["margin"]):
        assert _signed_vote_label(seq) == (y, m)
    assert (meta["margin"] == 1).mean() > 0.2 and (meta["margin"] >= 4).mean() > 0.1
    assert 0.1 < meta["flipped"].mean() < 0.5
    assert (meta["num_negations"] == 0).mean() > 0.2
    again, labels2, _ = make_signed_vote(400, 16, seed=7)
    assert np.array_equal(again, toks) and np.array_equal(labels2, labels)
    assert not np.array_equal(make_signed_vote(400, 16, seed=8)[0], toks)
