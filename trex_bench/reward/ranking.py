"""Rankers: functions from a demo set to a ``Ranking`` (strict preferences; ties give no pair).

Each ranker is one source of supervision studied in the literature:

* ``by_return`` — T-REX (Brown et al. 2019): demos ranked by their true return.
* ``by_checkpoint`` — learning from a learner (Jacq et al. 2019): a later checkpoint beats an earlier one.
* ``by_noise`` — D-REX (Brown et al. 2019b): less ε-greedy noise beats more noise.
* ``from_human_labels`` — the T-REX MTurk labels over checkpoint clips (the labeling page's own answers are
  preferences between clips, not episodes: ``trex_bench.reward.labels`` turns them into snippet pairs, and says how
  the MTurk CSV maps onto that one label format).
* ``synthetic_bradley_terry`` — a noisy oracle from true returns (Christiano et al. 2017).

Rows of ``Ranking.pairs`` are ``(worse, better)``. Every ranker raises ``ValueError`` when it finds no strict
preference, so training never starts on a set whose episodes all tie.
"""

from __future__ import annotations

import csv
import io
import warnings
from pathlib import Path

import numpy as np

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import DemoSet, Ranking
from trex_bench.reward.labels import label_format

__all__ = ["by_return", "by_checkpoint", "by_noise", "from_human_labels", "synthetic_bradley_terry"]

_NO_PREF = "fewer than 2 distinguishable episodes"


def _pairs_from_scores(score: np.ndarray, source: str, binned: bool = False) -> Ranking:
    """All (i, j) with score[i] < score[j]: the partial order a scalar score induces (ties give no pair); ``binned``:
    the ties are bins that samplers draw uniformly (``Ranking.levels``)."""
    score = np.asarray(score, dtype=np.float64)
    i, j = np.nonzero(score[:, None] < score[None, :])
    if len(i) == 0:
        raise ConfigError(f"ranking by {source}: {_NO_PREF} (all {len(score)} episodes tie)")
    return Ranking(len(score), np.stack([i, j], axis=1).astype(np.int64), source, score if binned else None)


def by_return(ds: DemoSet) -> Ranking:
    """Rank episodes by true (unclipped) return, as T-REX does; equal returns are ties, not preferences."""
    return _pairs_from_scores(ds.returns, "return")


def by_checkpoint(ds: DemoSet) -> Ranking:
    """Later learner checkpoint ≻ earlier one (Jacq et al. 2019); episodes of one checkpoint tie.

    Raises:
        ValueError: an episode carries no checkpoint (``checkpoint == -1``), or all share one checkpoint.
    """
    ck = np.array([e.checkpoint for e in ds.episodes])
    missing = np.flatnonzero(ck < 0)
    if len(missing):
        raise ConfigError(
            f"ranking by checkpoint: {len(missing)} of {len(ck)} episodes have no checkpoint index "
            f"(first: episode {missing[0]}); record them with `demos collect --checkpoint K` or use another ranker"
        )
    return _pairs_from_scores(ck, "checkpoint")


def by_noise(ds: DemoSet) -> Ranking:
    """Less ε-greedy noise ≻ more noise (D-REX); the noise-free demos (ε = 0) rank above every noise bin. Each noise
    level is a bin: pairs are drawn over pairs of bins (``Ranking.levels``), as D-REX's released sampler does."""
    return _pairs_from_scores(-np.array([e.noise for e in ds.episodes]), "noise", binned=True)


def from_human_labels(ds: DemoSet, csv_path: str | Path) -> Ranking:
    """Preferences from the T-REX MTurk label CSV (``A,B,label,scoreA,scoreB``), mapped onto episodes by checkpoint.

    ``A`` and ``B`` are demonstrator checkpoint numbers; every episode whose ``checkpoint`` equals A (B) stands for
    clip A (B). Convention, checked on the released files: ``label == 1`` means B was preferred, ``0`` means A.
    Read that way, the labels agree with the true scores (over rows where scoreA ≠ scoreB) on breakout 52/59
    (88.1 %), hero 45/58 (77.6 %), spaceinvaders 50/57 (87.7 %), seaquest 42/50 (84.0 %), pong 40/48 (83.3 %),
    qbert 44/54 (81.5 %), beamrider 29/45 (64.4 %), enduro 31/54 (57.4 %); the breakout and hero figures equal the
    "MTurk label accuracy" column of T-REX Table 3, and the opposite reading would agree on only 12–43 %.
    Rows whose checkpoints are not in the demo set are dropped with a warning that counts them; a row preferring a
    checkpoint to itself is dropped.

    Raises:
        ValueError: the file is missing or malformed, episodes have no checkpoints, or fewer than 2 distinct
            episode pairs remain (the message says how many rows were dropped).
    """
    path = Path(csv_path)
    if not path.exists():
        raise ConfigError(f"human labels {path} do not exist")
    if not path.is_file():
        raise ConfigError(f"human labels {path} is not a file")
    if _is_page_csv(path):
        raise ConfigError(
            f"{path} holds the labeling page's clip preferences, not episode preferences: train on them with "
            "`trex-bench reward train --ranking human --human-labels` (trex_bench.reward.labels)"
        )
    ck = np.array([e.checkpoint for e in ds.episodes])
    if np.all(ck < 0):
        raise ConfigError("human labels refer to checkpoints, but no episode of the demo set has a checkpoint index")
    rows: list[np.ndarray] = []
    unknown: set[int] = set()
    n_rows = n_unknown = n_self = 0
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 CSV ({e})") from e
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        need = {"A", "B", "label"}
        if not need <= set(reader.fieldnames or ()):
            raise ConfigError(f"{path}: expected columns A,B,label(,scoreA,scoreB), got {reader.fieldnames}")
        for line, r in enumerate(reader, start=2):
            try:
                a, b, label = int(r["A"]), int(r["B"]), int(r["label"])
            except (TypeError, ValueError) as e:
                raise ConfigError(f"{path}:{line}: not integers ({e})") from e
            if label not in (0, 1):
                raise ConfigError(f"{path}:{line}: label must be 0 or 1, got {label}")
            worse, better = (a, b) if label == 1 else (b, a)
            ew, eb = np.flatnonzero(ck == worse), np.flatnonzero(ck == better)
            n_rows += 1
            if not len(ew) or not len(eb):
                n_unknown += 1
                unknown.update(c for c, e in ((worse, ew), (better, eb)) if not len(e))
                continue
            if worse == better:
                n_self += 1
                continue
            rows.append(np.stack(np.meshgrid(ew, eb, indexing="ij"), -1).reshape(-1, 2))
    reasons = [
        f"{n_unknown} of {n_rows} rows name checkpoints not in the demo set ({_ids(unknown)})" if n_unknown else "",
        f"{n_self} of {n_rows} rows compare a checkpoint with itself" if n_self else "",
    ]
    dropped = "; ".join(r for r in reasons if r) or f"all {n_rows} rows were read"
    if not rows:
        raise ConfigError(
            f"human labels {path}: {_NO_PREF} (no row compares two different checkpoints of the demo set, "
            f"{_ids(set(ck))}: {dropped})"
        )
    pairs = np.unique(np.concatenate(rows), axis=0).astype(np.int64)
    if len(pairs) < 2:
        raise ConfigError(
            f"human labels {path}: only {len(pairs)} usable pair of episodes, too few to train on ({dropped})"
        )
    if n_unknown:
        warnings.warn(f"human labels {path}: dropped {dropped}", stacklevel=2)
    return Ranking(len(ds.episodes), pairs, "human")


def _is_page_csv(path: Path) -> bool:
    try:
        return label_format(path) == "clips"
    except ConfigError:
        return False  # neither format: the checks of from_human_labels name what is wrong


def _ids(ids: set) -> str:
    """Checkpoint ids as plain numbers, the first few of them."""
    nums = sorted(int(i) for i in ids)
    return ", ".join(map(str, nums[:8])) + (f", … ({len(nums)} in all)" if len(nums) > 8 else "")


def synthetic_bradley_terry(
    ds: DemoSet, rng: np.random.Generator, temperature: float = 1.0, n_queries: int = 1000
) -> Ranking:
    """A noisy preference oracle: P(j ≻ i) = sigmoid((R_j − R_i) / T) (Christiano et al. 2017, synthetic labels).

    Queries are uniformly drawn pairs of episodes with different returns (equal returns are ties and never asked).
    T → 0 gives ``by_return``; larger T flips more labels between close episodes.

    Args:
        ds: the demo set (true returns are the oracle's utility).
        rng: randomness of the queries and of the answers.
        temperature: T > 0, in units of return.
        n_queries: number of labelled queries (pairs may repeat, as with a real labeller).
    """
    if not temperature > 0:
        raise ConfigError(f"temperature must be > 0, got {temperature}")
    if n_queries < 1:
        raise ConfigError(f"n_queries must be >= 1, got {n_queries}")
    ret = ds.returns
    i, j = np.nonzero(ret[:, None] < ret[None, :])
    if len(i) == 0:
        raise ConfigError(f"ranking by synthetic oracle: {_NO_PREF} (all {len(ret)} episodes tie)")
    q = rng.integers(len(i), size=n_queries)
    lo, hi = i[q], j[q]  # lo has the lower return
    p_hi = 1.0 / (1.0 + np.exp(-(ret[hi] - ret[lo]) / temperature))
    hi_wins = rng.random(n_queries) < p_hi
    pairs = np.where(hi_wins[:, None], np.stack([lo, hi], 1), np.stack([hi, lo], 1)).astype(np.int64)
    return Ranking(len(ret), pairs, "synthetic")
