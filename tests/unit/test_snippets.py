"""Snippet sampler: progress prior, equal lengths, stride, bounds, validation split, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest

from trex_bench.core.types import Ranking
from trex_bench.reward.snippets import sample_snippet_pairs, split_by_episode_pairs, whole_trajectory_pairs

LENGTHS = np.array([120, 300, 80, 500, 200])
RANK = Ranking(5, np.array([(i, j) for i in range(5) for j in range(5) if i < j]), "return")


def _better_worse(p):
    """(worse ep, worse start, better ep, better start) per pair from the label."""
    b = p.label == 1
    return (np.where(b, p.ep_a, p.ep_b), np.where(b, p.start_a, p.start_b),
            np.where(b, p.ep_b, p.ep_a), np.where(b, p.start_b, p.start_a))


def test_progress_prior_lengths_stride_and_bounds():
    p = sample_snippet_pairs(RANK, LENGTHS, 3000, 50, 100, 2, np.random.default_rng(0))
    worse, s_w, better, s_b = _better_worse(p)
    assert set(map(tuple, np.stack([worse, better], 1))) <= set(map(tuple, RANK.pairs))
    assert np.all(s_b >= s_w)  # progress prior
    span = (p.length - 1) * p.stride + 1
    assert p.stride == 2 and np.all(p.length >= 25) and np.all(p.length <= 50)
    assert p.length.min() == 25 and p.length.max() == 50  # span uniform in [50, 100) → 25..50 frames at stride 2
    assert np.all(s_w + span <= LENGTHS[worse] + 1) and np.all(s_b + span <= LENGTHS[better] + 1)
    assert 0.45 < p.label.mean() < 0.55  # preferred side is randomised


def test_short_pairs_are_clipped_and_too_long_raises():
    p = sample_snippet_pairs(RANK, LENGTHS, 500, 50, 300, 1, np.random.default_rng(1))
    worse, s_w, better, s_b = _better_worse(p)
    assert np.all(p.length <= np.minimum(LENGTHS[worse], LENGTHS[better]) + 1)
    with pytest.raises(ValueError, match="exceeds every episode"):
        sample_snippet_pairs(RANK, LENGTHS, 10, 600, 700, 2, np.random.default_rng(0))


def test_deterministic_for_a_seed():
    a = sample_snippet_pairs(RANK, LENGTHS, 100, 10, 20, 2, np.random.default_rng(7))
    b = sample_snippet_pairs(RANK, LENGTHS, 100, 10, 20, 2, np.random.default_rng(7))
    for name in ("ep_a", "start_a", "ep_b", "start_b", "length", "label"):
        assert np.array_equal(getattr(a, name), getattr(b, name))


def test_split_by_episode_pairs_is_disjoint():
    p = sample_snippet_pairs(RANK, LENGTHS, 2000, 10, 20, 1, np.random.default_rng(0))
    train, val = split_by_episode_pairs(p, 0.3, np.random.default_rng(0))
    assert len(train) + len(val) == len(p) and len(val) > 0
    key = lambda s: {(min(a, b), max(a, b)) for a, b in zip(s.ep_a.tolist(), s.ep_b.tolist(), strict=True)}  # noqa: E731
    assert not key(train) & key(val)
    assert len(key(val)) == 3  # 30 % of the 10 episode pairs


def test_whole_trajectory_pairs_equal_length_within_episodes():
    p = whole_trajectory_pairs(RANK, LENGTHS, 200, 4, np.random.default_rng(0))
    span = (p.length - 1) * 4
    assert np.all(p.start_a < 4) and np.all(p.start_a + span <= LENGTHS[p.ep_a])
    assert np.all(p.start_b + span <= LENGTHS[p.ep_b])
    assert np.all(p.length >= (np.minimum(LENGTHS[p.ep_a], LENGTHS[p.ep_b]) + 1) // 4 - 1)
