"""Index-only snippet pairs for Bradley-Terry training (T-REX sampler, PAPERS.md "T-REX training data").

A snippet of episode e is the observations ``start + stride * t`` for ``t < length`` (observation 0 is the reset
observation, T the last). Lengths follow the released code: a *span* L of observations is drawn uniformly from
[min_len, max_len) and subsampled with the stride, so a snippet has ``ceil(L / stride)`` frames; both snippets of a
pair have the same span, and the better episode's snippet starts no earlier than the worse one's (progress prior:
later in a good episode should look better than earlier in a bad one, so the net cannot just learn "time").
"""

from __future__ import annotations

import numpy as np

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import Ranking, SnippetPairs

__all__ = [
    "sample_snippet_pairs",
    "whole_trajectory_pairs",
    "split_by_episode_pairs",
    "latest_checkpoint_episodes",
    "held_out_rankings",
    "split_by_held_out_episodes",
    "bootstrap_resample",
]


def _orient(
    worse: np.ndarray,
    s_w: np.ndarray,
    better: np.ndarray,
    s_b: np.ndarray,
    length: np.ndarray,
    stride: int,
    rng: np.random.Generator,
) -> SnippetPairs:
    """Put the better snippet on a random side so labels are balanced (label 1 = side b preferred)."""
    flip = rng.random(len(worse)) < 0.5  # flip: better on side a
    return SnippetPairs(
        ep_a=np.where(flip, better, worse).astype(np.int64),
        start_a=np.where(flip, s_b, s_w).astype(np.int64),
        ep_b=np.where(flip, worse, better).astype(np.int64),
        start_b=np.where(flip, s_w, s_b).astype(np.int64),
        length=length.astype(np.int64),
        stride=int(stride),
        label=(~flip).astype(np.int64),
    )


def _draw_preferences(ranking: Ranking, pairs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``pairs`` (preferences of ``ranking``): uniformly, or where the ranking has bins
    (``Ranking.levels``) a pair of bins uniformly and then a preference between them uniformly, so each pair of bins
    is drawn as often whatever its number of episodes (D-REX's ``create_training_data_from_bins``)."""
    if ranking.levels is None:
        return pairs[rng.integers(len(pairs), size=n)]
    bins = np.stack([ranking.levels[pairs[:, 0]], ranking.levels[pairs[:, 1]]], axis=1)
    _, which, count = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    weight = 1.0 / count[which.reshape(-1)]
    return pairs[rng.choice(len(pairs), size=n, p=weight / weight.sum())]


def sample_snippet_pairs(
    ranking: Ranking,
    lengths: np.ndarray,
    n_pairs: int,
    min_len: int,
    max_len: int,
    stride: int,
    rng: np.random.Generator,
) -> SnippetPairs:
    """Draw ``n_pairs`` T-REX snippet pairs (Brown et al. 2019, §5.1 and the released ``create_training_data``).

    Per pair: a preference (worse, better) from ``ranking.pairs`` (uniformly, or over bins: ``_draw_preferences``); a
    span L uniform in [min_len, max_len)
    observations, shortened to fit the shorter of the two episodes; the worse snippet's start uniform in
    [0, n_short − L]; the better one's start uniform in [start_worse, n_better − L] (progress prior).

    Args:
        ranking: preferences over episodes.
        lengths: int [E] agent steps per episode (an episode has ``T + 1`` observations).
        n_pairs: pairs to draw.
        min_len, max_len: span of a snippet in observations, before the stride; T-REX uses 50–100.
        stride: keep every ``stride``-th observation (T-REX 2, D-REX 4).
        rng: randomness of the draw.

    Raises:
        ValueError: bad arguments, or ``min_len`` longer than the shorter episode of every preference pair.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if not 1 <= min_len < max_len:
        raise ConfigError(f"need 1 <= min_len < max_len, got {min_len}, {max_len}")
    if stride < 1 or n_pairs < 1:
        raise ConfigError(f"stride and n_pairs must be >= 1, got {stride}, {n_pairs}")
    if len(lengths) != ranking.n_episodes:
        raise ConfigError(f"{len(lengths)} episode lengths for a ranking of {ranking.n_episodes} episodes")
    n_obs = lengths + 1
    pairs = ranking.pairs
    fits = np.minimum(n_obs[pairs[:, 0]], n_obs[pairs[:, 1]]) >= min_len
    if not fits.any():
        raise ConfigError(
            f"snippet length {min_len} exceeds every episode pair (longest episode has {n_obs.max()} observations); "
            "lower the snippet length"
        )
    pick = _draw_preferences(ranking, pairs[fits], n_pairs, rng)
    worse, better = pick[:, 0], pick[:, 1]
    n_w, n_b = n_obs[worse], n_obs[better]
    span = np.minimum(rng.integers(min_len, max_len, size=n_pairs), np.minimum(n_w, n_b))
    s_w = rng.integers(0, np.minimum(n_w, n_b) - span + 1)
    s_b = rng.integers(s_w, n_b - span + 1)
    n_frames = (span + stride - 1) // stride
    return _orient(worse, s_w, better, s_b, n_frames, stride, rng)


def whole_trajectory_pairs(
    ranking: Ranking, lengths: np.ndarray, n_pairs: int, stride: int, rng: np.random.Generator
) -> SnippetPairs:
    """Pairs of (nearly) whole episodes, subsampled with ``stride`` from a random offset — the T-REX Enduro variant.

    T-REX trains Enduro on 2000 pairs of whole trajectories (PAPERS.md), where snippets would miss the slow
    passing progress. Both sides get the frame count of the shorter episode, so the pair stays equal-length.
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if stride < 1 or n_pairs < 1:
        raise ConfigError(f"stride and n_pairs must be >= 1, got {stride}, {n_pairs}")
    if len(lengths) != ranking.n_episodes:
        raise ConfigError(f"{len(lengths)} episode lengths for a ranking of {ranking.n_episodes} episodes")
    if np.any(lengths < 1):
        raise ConfigError(f"episode lengths must be >= 1, got {lengths.min()}")
    pick = _draw_preferences(ranking, ranking.pairs, n_pairs, rng)
    worse, better = pick[:, 0], pick[:, 1]
    off_w, off_b = rng.integers(0, stride, size=n_pairs), rng.integers(0, stride, size=n_pairs)
    n_obs = lengths + 1
    # an episode shorter than the stride starts at its last observation (the draws, and so every longer episode's
    # pairs, stay as they were)
    off_w, off_b = np.minimum(off_w, n_obs[worse] - 1), np.minimum(off_b, n_obs[better] - 1)
    frames = np.minimum((n_obs[worse] - off_w + stride - 1) // stride, (n_obs[better] - off_b + stride - 1) // stride)
    return _orient(worse, off_w, better, off_b, np.maximum(frames, 1), stride, rng)


def split_by_episode_pairs(
    pairs: SnippetPairs, val_frac: float, rng: np.random.Generator
) -> tuple[SnippetPairs, SnippetPairs]:
    """Hold out whole *episode pairs*: no unordered (i, j) episode pair has snippets in both splits.

    Splitting snippet pairs at random would put near-duplicate snippets of the same two episodes on both sides and
    flatter validation accuracy; holding out episode pairs keeps the validation set honest about generalisation.

    Returns:
        ``(train, val)``; ``val`` holds about ``val_frac`` of the episode pairs (at least one when ``val_frac > 0``
        and there are two or more), ``train`` at least one.
    """
    if not 0.0 <= val_frac < 1.0:
        raise ConfigError(f"val_frac must be in [0, 1), got {val_frac}")
    key = np.minimum(pairs.ep_a, pairs.ep_b) * (1 << 32) + np.maximum(pairs.ep_a, pairs.ep_b)
    groups, inverse = np.unique(key, return_inverse=True)
    n_val = int(round(val_frac * len(groups)))
    if val_frac > 0 and len(groups) >= 2:
        n_val = min(max(n_val, 1), len(groups) - 1)
    else:
        n_val = 0
    is_val_group = np.zeros(len(groups), dtype=bool)
    is_val_group[rng.permutation(len(groups))[:n_val]] = True
    val = is_val_group[inverse]
    return pairs.subset(~val), pairs.subset(val)


def latest_checkpoint_episodes(checkpoints: np.ndarray) -> np.ndarray:
    """The episodes of the latest demonstrator checkpoint, the ones ``TrainConfig.validation="latest"`` holds out.

    Args:
        checkpoints: int [E], each episode's checkpoint index (−1: not from a checkpoint series).

    Raises:
        ConfigError: an episode without a checkpoint number, or one checkpoint for every episode (nothing to train on).
    """
    ck = np.asarray(checkpoints, dtype=np.int64)
    if ck.size == 0 or np.any(ck < 0):
        raise ConfigError(
            f"validation 'latest' holds out the latest demo checkpoint, but {int(np.sum(ck < 0))} of the "
            f"{ck.size} episodes have no checkpoint number; use validation 'episodes'"
        )
    held = np.flatnonzero(ck == ck.max())
    if len(held) == len(ck):
        raise ConfigError(
            f"validation 'latest': all {ck.size} episodes are of checkpoint {ck.max()}, none is left to train on; "
            "use validation 'episodes'"
        )
    return held


def held_out_rankings(ranking: Ranking, held_out: np.ndarray) -> tuple[Ranking, Ranking]:
    """(training, validation) rankings when the episodes ``held_out`` are kept out of training.

    Training keeps the preferences among the other episodes; validation the preferences between a held-out episode
    and a training one (two held-out episodes are compared by neither).

    Raises:
        ConfigError: no preference left on one side (e.g. a held-out episode that ties every other).
    """
    held = np.zeros(ranking.n_episodes, dtype=bool)
    held[np.asarray(held_out, dtype=np.int64)] = True
    side = held[ranking.pairs]
    train, val = ranking.pairs[~side.any(1)], ranking.pairs[side[:, 0] != side[:, 1]]
    for name, p in (("training", train), ("validation", val)):
        if not len(p):
            raise ConfigError(
                f"holding out episode(s) {', '.join(map(str, np.flatnonzero(held)))} leaves no {name} preference "
                f"in the ranking by {ranking.source}; use validation 'episodes'"
            )
    return (
        Ranking(ranking.n_episodes, train, ranking.source, ranking.levels),
        Ranking(ranking.n_episodes, val, ranking.source, ranking.levels),
    )


def split_by_held_out_episodes(pairs: SnippetPairs, held_out: np.ndarray) -> tuple[SnippetPairs, SnippetPairs]:
    """(train, val) of given pairs: train = no side held out, val = exactly one side held out; the rest dropped."""
    is_held = np.isin(pairs.ep_a, held_out), np.isin(pairs.ep_b, held_out)
    return pairs.subset(~(is_held[0] | is_held[1])), pairs.subset(is_held[0] != is_held[1])


def bootstrap_resample(pairs: SnippetPairs, rng: np.random.Generator) -> SnippetPairs:
    """As many pairs as ``pairs``, drawn uniformly with replacement (one ensemble member's training set,
    Christiano et al. 2017 §2.2.3: each predictor on |D| triples sampled from D with replacement)."""
    return pairs.subset(rng.integers(len(pairs), size=len(pairs)))
