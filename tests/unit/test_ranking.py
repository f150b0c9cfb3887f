"""Rankers: correct strict preferences, ties give no pair, errors on all-tie sets, human-label mapping."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trex_bench.core.types import DemoSet, Episode
from trex_bench.reward import ranking


def _ep(ret: float, noise: float = 0.0, checkpoint: int = -1) -> Episode:
    rewards = np.zeros(5, np.float32)
    rewards[0] = ret
    return Episode(0, np.zeros(5, np.uint8), rewards, np.array([0]), np.array([0], np.uint64), noise, checkpoint)


def _ds(*eps: Episode, game: str = "breakout") -> DemoSet:
    return DemoSet(game, "paper", {}, "test", tuple(eps))


def _set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return {tuple(map(int, p)) for p in pairs}


def test_by_return_orders_and_skips_ties():
    r = ranking.by_return(_ds(_ep(3), _ep(1), _ep(3), _ep(7)))
    assert r.source == "return" and r.n_episodes == 4
    assert _set(r.pairs) == {(1, 0), (1, 2), (1, 3), (0, 3), (2, 3)}  # (0, 2) tie: no pair


def test_all_ties_raise():
    for fn in (ranking.by_return, ranking.by_noise):
        with pytest.raises(ValueError, match="fewer than 2 distinguishable"):
            fn(_ds(_ep(2, 0.5), _ep(2, 0.5)))
    with pytest.raises(ValueError, match="fewer than 2 distinguishable"):
        ranking.synthetic_bradley_terry(_ds(_ep(2), _ep(2)), np.random.default_rng(0), 1.0, 10)


def test_by_checkpoint_later_is_better_and_refuses_missing():
    r = ranking.by_checkpoint(_ds(_ep(0, checkpoint=200), _ep(0, checkpoint=100), _ep(0, checkpoint=200)))
    assert _set(r.pairs) == {(1, 0), (1, 2)}
    with pytest.raises(ValueError, match="no checkpoint"):
        ranking.by_checkpoint(_ds(_ep(0, checkpoint=1), _ep(0)))


def test_by_noise_less_noise_is_better():
    r = ranking.by_noise(_ds(_ep(0, 1.0), _ep(0, 0.0), _ep(0, 0.5)))
    assert _set(r.pairs) == {(0, 1), (0, 2), (2, 1)}


def test_noise_bins_are_drawn_evenly_whatever_their_size():
    """D-REX's released sampler draws two bins, then an episode of each: the 10 demos (ε = 0) must not fill most
    pairs because they are 10 episodes against 3 per noise level (uniform over episode pairs gave them 57 %)."""
    from trex_bench.core.types import NOOP_NOISE
    from trex_bench.reward.snippets import sample_snippet_pairs, whole_trajectory_pairs

    noise = [0.0] * 10 + [eps for eps in (0.01, 0.25, 0.5, 0.75, 1.0, NOOP_NOISE) for _ in range(3)]
    r = ranking.by_noise(_ds(*(_ep(0, n) for n in noise)))
    lengths = np.full(len(noise), 300)
    n_bins = 7
    for draw in (
        lambda rng: sample_snippet_pairs(r, lengths, 42_000, 50, 100, 4, rng),
        lambda rng: whole_trajectory_pairs(r, lengths, 42_000, 4, rng),
    ):
        p = draw(np.random.default_rng(0))
        level = np.asarray(noise)
        bins = {tuple(sorted(b)) for b in zip(level[p.ep_a], level[p.ep_b], strict=True)}
        assert len(bins) == n_bins * (n_bins - 1) // 2
        demo_share = np.mean((level[p.ep_a] == 0.0) | (level[p.ep_b] == 0.0))
        assert abs(demo_share - 2 / n_bins) < 0.01  # 6 of the 21 bin pairs hold the demos
        pairs, counts = np.unique(np.sort(np.stack([level[p.ep_a], level[p.ep_b]], 1), 1), axis=0, return_counts=True)
        assert np.all(np.abs(counts / counts.sum() - 1 / 21) < 0.006)
    # A ranking without bins (T-REX's by return) still draws its preferences uniformly.
    assert ranking.by_return(_ds(_ep(1), _ep(2))).levels is None


def test_synthetic_bradley_terry_temperature():
    ds = _ds(_ep(0), _ep(10), _ep(20))
    cold = ranking.synthetic_bradley_terry(ds, np.random.default_rng(0), 1e-3, 300)
    assert np.all(ds.returns[cold.pairs[:, 0]] < ds.returns[cold.pairs[:, 1]])  # T → 0: the true order
    hot = ranking.synthetic_bradley_terry(ds, np.random.default_rng(0), 1e3, 2000)
    wrong = np.mean(ds.returns[hot.pairs[:, 0]] > ds.returns[hot.pairs[:, 1]])
    assert 0.4 < wrong < 0.5  # T ≫ ΔR: close to a coin flip, still slightly right
    mid = ranking.synthetic_bradley_terry(ds, np.random.default_rng(0), 10.0, 4000)
    # P(better wins) for ΔR = 10 and 20 at T = 10: sigmoid(1) = 0.731, sigmoid(2) = 0.881; mean over the 3 pairs
    right = np.mean(ds.returns[mid.pairs[:, 0]] < ds.returns[mid.pairs[:, 1]])
    assert abs(right - (2 * 0.731 + 0.881) / 3) < 0.03
    with pytest.raises(ValueError):
        ranking.synthetic_bradley_terry(ds, np.random.default_rng(0), 0.0, 10)


def test_human_labels_map_checkpoints_to_episodes(tmp_path: Path):
    csv = tmp_path / "labels.csv"
    csv.write_text("A,B,label,scoreA,scoreB\n00100,00200,1,1,5\n00300,00200,0,9,5\n00100,00900,1,0,0\n")
    ds = _ds(_ep(0, checkpoint=100), _ep(0, checkpoint=200), _ep(0, checkpoint=300), _ep(0, checkpoint=200))
    r = ranking.from_human_labels(ds, csv)
    # label 1 → B preferred; label 0 → A preferred; checkpoint 900 is not in the set
    assert r.source == "human"
    assert _set(r.pairs) == {(0, 1), (0, 3), (1, 2), (3, 2)}
    with pytest.raises(ValueError, match="fewer than 2 distinguishable"):
        ranking.from_human_labels(_ds(_ep(0, checkpoint=5), _ep(0, checkpoint=6)), csv)
    with pytest.raises(ValueError, match="do not exist"):
        ranking.from_human_labels(ds, tmp_path / "missing.csv")


def test_human_label_convention_on_released_breakout_file(reference_dir: Path):
    """label == 1 means B preferred: read so, labels agree with scores on 88.1 % (T-REX's MTurk accuracy)."""
    import csv

    rows = list(csv.DictReader((reference_dir / "trex/human_labels/breakout_human_rankings.csv").open()))
    agree = np.mean([(r["label"] == "1") == (float(r["scoreB"]) > float(r["scoreA"])) for r in rows])
    assert abs(agree - 0.881) < 0.005
    ds = _ds(*[_ep(0, checkpoint=c) for c in range(50, 650, 50)])
    r = ranking.from_human_labels(ds, reference_dir / "trex/human_labels/breakout_human_rankings.csv")
    assert len(r.pairs) > 40
