"""Datasets: scikit-learn's digits (vision families) and a generated sequence task (decoder).

All splits are stratified by label and fixed by the seed: train 60 %, validation 20 %,
test 20 % (digits: 1077 / 360 / 360 samples). The validation split picks the training epoch
and feeds the exit curves every policy calibrates on; the test split feeds the samples a
simulation draws and the accuracies reported (calibrate on one, evaluate on another).

Decoder task, "signed vote" (``make_signed_vote``)
--------------------------------------------------
A sequence of ``seq_len`` tokens over a vocabulary of 16: tokens 0..3 are votes for class
0..3, token 4 is ``NOT``, token 5 is ``QUERY`` (always the last position, where the
classifier reads), tokens 6..15 are fillers that carry no information. A vote preceded by
``NOT`` counts -1 for its class, any other vote +1. The label is the class with the highest
signed total (ties are rejected when generating, so every label is true and unique).
Votes are drawn from a Dirichlet(1)-distributed class mix, and the number of negations
from {0, 0, 1, 2, 3, 4}, which yields a spread of difficulty:

- easy: no ``NOT`` and a large margin between the top two totals: counting tokens is
  enough, which one attention layer can do;
- hard: negations that flip the raw-count winner (``flipped``), or a margin of 1: a model
  must first bind each ``NOT`` to the next token (one layer) and then aggregate signed
  votes (a later layer), so these need depth.

Per-sample tags ``margin``, ``num_negations`` and ``flipped`` are kept for analysis.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ._seed import derive_seed, numpy_generator

NUM_VOTE_CLASSES = 4
TOKEN_NOT = 4
TOKEN_QUERY = 5
FIRST_FILLER = 6


@dataclass(frozen=True)
class DataSplit:
    """Tensors of one dataset, split three ways. ``*_meta``: per-sample tags (test only)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    test_meta: dict[str, np.ndarray] = field(default_factory=dict)


def split_indices(labels: np.ndarray, seed: int, val_share: float = 0.2, test_share: float = 0.2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stratified train/val/test index arrays (sorted), fixed by ``seed``."""
    from sklearn.model_selection import train_test_split  # lazy: scikit-learn import costs seconds

    idx = np.arange(len(labels))
    rest, test = train_test_split(idx, test_size=test_share, stratify=labels, random_state=derive_seed(seed, "split-test") % 2**31)
    train, val = train_test_split(rest, test_size=val_share / (1 - test_share), stratify=labels[rest],
                                  random_state=derive_seed(seed, "split-val") % 2**31)
    return np.sort(train), np.sort(val), np.sort(test)


def _make_split(x: torch.Tensor, y: np.ndarray, seed: int, meta: dict[str, np.ndarray] | None = None) -> DataSplit:
    tr, va, te = split_indices(y, seed)
    yt = torch.from_numpy(y.astype(np.int64))
    test_meta = {k: v[te] for k, v in (meta or {}).items()}
    return DataSplit(x[tr], yt[tr], x[va], yt[va], x[te], yt[te], test_meta)


def digits_split(seed: int, image: bool) -> DataSplit:
    """scikit-learn digits, pixel values scaled to [0, 1]; ``image``: [N,1,8,8] else [N,64]."""
    from sklearn.datasets import load_digits  # lazy: scikit-learn import costs seconds

    d = load_digits()
    x = torch.from_numpy((d.data / 16.0).astype(np.float32))
    if image:
        x = x.view(-1, 1, 8, 8)
    return _make_split(x, d.target.astype(np.int64), seed)


def make_signed_vote(num_samples: int, seq_len: int, seed: int, vocab_size: int = 16) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Generate the signed-vote task (see module doc): tokens [N, seq_len] int64, labels [N],
    tags {margin, num_negations, flipped}."""
    if vocab_size <= FIRST_FILLER:
        raise ValueError(f"vocab_size={vocab_size}: must be > {FIRST_FILLER}")
    if seq_len < 8:
        raise ValueError(f"seq_len={seq_len}: must be >= 8")
    rng = numpy_generator(seed, "signed-vote")
    content = seq_len - 1
    toks = np.empty((num_samples, seq_len), np.int64)
    labels = np.empty(num_samples, np.int64)
    margin = np.empty(num_samples, np.int64)
    n_negs = np.empty(num_samples, np.int64)
    flipped = np.empty(num_samples, bool)
    n = 0
    while n < num_samples:
        n_neg = int(rng.choice([0, 0, 1, 2, 3, 4]))
        max_votes = content - n_neg
        m = int(rng.integers(max(n_neg, 4), min(max_votes, 12) + 1))
        p = rng.dirichlet(np.ones(NUM_VOTE_CLASSES))
        votes = rng.choice(NUM_VOTE_CLASSES, size=m, p=p)
        neg = np.zeros(m, bool)
        neg[rng.choice(m, size=n_neg, replace=False)] = True
        score = np.bincount(votes[~neg], minlength=4) - np.bincount(votes[neg], minlength=4)
        top = np.sort(score)[::-1]
        if top[0] == top[1]:
            continue
        raw = np.bincount(votes, minlength=4)
        items: list[list[int]] = [[TOKEN_NOT, int(v)] if g else [int(v)] for v, g in zip(votes, neg)]
        items += [[int(f)] for f in rng.integers(FIRST_FILLER, vocab_size, size=content - m - n_neg)]
        order = rng.permutation(len(items))
        seq = [t for i in order for t in items[i]] + [TOKEN_QUERY]
        toks[n] = seq
        labels[n] = int(np.argmax(score))
        margin[n] = int(top[0] - top[1])
        n_negs[n] = n_neg
        flipped[n] = bool(raw.max() > raw[labels[n]] or (raw == raw.max()).sum() > 1)
        n += 1
    return toks, labels, {"margin": margin, "num_negations": n_negs, "flipped": flipped}


def signed_vote_split(seed: int, seq_len: int, vocab_size: int, num_samples: int = 6000) -> DataSplit:
    """The signed-vote task, split 60/20/20 stratified by label."""
    toks, labels, meta = make_signed_vote(num_samples, seq_len, seed, vocab_size)
    return _make_split(torch.from_numpy(toks), labels, seed, meta)
