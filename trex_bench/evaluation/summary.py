"""The leaderboard summarised: per-group seed means, a method's variants, the recovered share, one score cell.

Reads what ``trex_bench.evaluation.leaderboard`` writes; the tables, the statistics, the report and the
``trex-bench leaderboard`` command all summarise through here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from trex_bench.evaluation.leaderboard import ROW_TRANSFORM, read_leaderboard

__all__ = ["summarize", "summarize_rows", "score_cell", "SCORE_HEADER", "variant", "variants", "recovered"]


def summarize(
    csv_path: str | Path,
    by: tuple[str, ...] = ("game", "method", "budget", "reward_transform"),
    latest_per_seed: bool = True,
) -> pd.DataFrame:
    """Results grouped by game, method, budget and reward transform: mean ± std of the per-seed mean scores, best of
    seeds, demo wins (``summarize_rows`` of the whole file).

    Budget and transform are part of the default group: a 120k-step CPU run and a GPU run, or T-REX with and without
    a KL penalty (``sigmoid+kl0.1``), are different experiments.

    Reporting mean ± std over seeds next to best-of-seeds matters: the papers report best of 3 seeds, which hides
    large seed variance (PAPERS.md pitfalls).
    """
    return summarize_rows(read_leaderboard(csv_path), by, latest_per_seed)


# A method's usual reward transform; any other (a KL penalty, ``delta``) makes a variant of its own. The preference
# loop pays PPO its ensemble's reward normalised to a fixed scale (Christiano et al. 2017, §2.2.1): that is prefs
# itself, where the same transform on T-REX's net is a variant.
_DEFAULT_TRANSFORMS = frozenset({"", "sigmoid", "constant", "clip", "sign"})
# Methods whose row names a transform of their own (``leaderboard.ROW_TRANSFORM``): the preference loop's normalised
# ensemble, GAIL's discriminator reward.
_OWN_TRANSFORM = ROW_TRANSFORM


# T-REX's usual ranking (``experiment.methods.METHODS["trex"].rankings[0]``; a test holds the two in step): one from
# human labels, a synthetic labeller or the checkpoint order is another experiment. D-REX ranks by noise alone (rows
# written before its ranking was recorded say "return"), so its ranking never makes a variant.
_USUAL_RANKING = {"trex": "return"}
_USUAL_PROFILE = "paper"  # ``core.envs.PROFILES``: the papers' env settings


def variant(method: str, transform: str, ranking: str = "", profile: str = "", capped: bool = False) -> str:
    """A method run as usual is itself; anything else names a variant, never pooled with it: a reward transform
    other than its usual one (a KL penalty, ``delta``), a ranking other than its usual one, an env profile other
    than the papers', or a PPO run stopped by a wall-time cap (``time_capped``: fewer steps than its budget).

    >>> variant("trex", "sigmoid"), variant("trex", "delta"), variant("trex", "", "human", "machado", True)
    ('trex', 'trex (delta)', 'trex (human ranking; machado env; time-capped)')
    """
    tags = []
    if not (transform in _DEFAULT_TRANSFORMS or _OWN_TRANSFORM.get(method) == transform):
        tags.append(transform)
    if ranking and method in _USUAL_RANKING and ranking != _USUAL_RANKING[method]:
        tags.append(f"{ranking} ranking")
    if profile and profile != _USUAL_PROFILE:
        tags.append(f"{profile} env")
    if capped:
        tags.append("time-capped")
    return f"{method} ({'; '.join(tags)})" if tags else method


def variants(rows: pd.DataFrame) -> pd.Series:
    """``variant`` of each leaderboard row, on the rows' index (an empty cell, or a column older rows lack, is the
    usual)."""

    def column(name: str) -> list[Any]:
        return rows[name].tolist() if name in rows.columns else [None] * len(rows)

    def text(v: Any) -> str:
        return "" if v is None or (not isinstance(v, str) and pd.isna(v)) else str(v)

    names = [
        variant(m, text(t), text(r), text(p), str(c).lower() == "true")
        for m, t, r, p, c in zip(
            rows["method"],
            *(column(c) for c in ("reward_transform", "ranking_source", "env_profile", "time_capped")),
            strict=True,
        )
    ]
    return pd.Series(names, index=rows.index, dtype=object)


def recovered(score: Any, constant: Any, true: Any) -> Any:
    """(score − constant) / (true − constant): the share of the true reward's gain over the survival bonus (the
    constant-reward control) that ``score`` recovers; NaN where the true reward gained nothing (``true ≤ constant``:
    no scale to measure on). Floats or aligned ``pd.Series``."""
    gain = true - constant
    if isinstance(gain, pd.Series):
        return (score - constant) / gain.where(gain > 0)
    return (score - constant) / gain if gain > 0 else float("nan")


def summarize_rows(df: pd.DataFrame, by: tuple[str, ...], latest_per_seed: bool = True) -> pd.DataFrame:
    """Group leaderboard rows (``read_leaderboard``'s frame, possibly filtered) by ``by``.

    A seed run again (after a fix, on another commit) would otherwise count as a second seed and pull the mean
    towards the old code: by default only the *latest* row of each seed in a group is summarised (the CSV is
    append-only, so file order is time order; the older rows stay in the file). ``latest_per_seed=False`` keeps
    every row.

    Returns:
        One row per group of ``by`` + the demo set (``best_demo``, ``avg_demo``) + ``schedule_steps`` with ``seeds``
        (rows summarised), ``superseded`` (older rows of those seeds left out),
        ``mean``, ``std`` (over seeds; NaN for one seed: one number has no spread over seeds), ``spread`` (one seed:
        its row's ``std``, the spread of its evaluation games; NaN for several seeds), ``games`` (evaluation games
        of the summarised rows, ``n_episodes`` summed), ``best``, ``rl_steps`` (max), ``beats_best_demo`` (count of
        rows) and ``human_normalized`` (mean). ``score_cell`` writes ``mean``/``std``/``spread`` as one cell.
    """
    # Runs on different demo sets are different experiments; the leaderboard names a demo set by its best and
    # average return (the same seed on the scripted and on the PPO-checkpoint demos must not supersede each other).
    # Likewise a run annealed over its own length and a prefix of a 10M-step schedule (``schedule_steps``; empty in
    # rows made before that column): never one group.
    asked = [c for c in by if c not in ("best_demo", "avg_demo", "schedule_steps")]
    by = (*asked, "best_demo", "avg_demo", "schedule_steps")
    cols = [
        "seeds",
        "superseded",
        "mean",
        "std",
        "spread",
        "games",
        "best",
        "rl_steps",
        "schedule_steps",
        "best_demo",
        "avg_demo",
        "beats_best_demo",
        "human_normalized",
    ]
    if df.empty:
        return pd.DataFrame(columns=[*asked, *cols])
    n_rows = df.groupby(list(by), sort=True, dropna=False).size()
    if latest_per_seed:
        df = df.drop_duplicates(subset=[*by, "seed"], keep="last")
    g = df.groupby(list(by), sort=True, dropna=False)  # an empty cell is a group of its own, not a dropped row
    out = pd.DataFrame(
        {
            "seeds": g.size(),
            "superseded": n_rows - g.size(),
            "mean": g["mean"].mean(),
            "std": g["mean"].std(ddof=1),  # NaN for one seed: not 0, which would claim a measured agreement
            "spread": g["std"].first().where(g.size() == 1),
            "games": g["n_episodes"].sum(min_count=1),
            "best": g["mean"].max(),
            "rl_steps": g["rl_steps"].max(),
            "beats_best_demo": g["beats_best_demo"].apply(lambda s: int((s == True).sum())),  # noqa: E712
            "human_normalized": g["human_normalized"].mean(),
        }
    )
    return out.reset_index()[[*asked, *cols]]


# The header of a ``score_cell`` column: what the ± measures depends on the seeds behind the cell.
SCORE_HEADER = "mean ± std (over seeds; one seed: over its games)"


def score_cell(mean: Any, std: Any, seeds: Any, spread: Any = None, games: Any = None, digits: int = 1) -> str:
    """One summarised score as text, its ± always a measured spread.

    Several seeds: the std of their means, ``5.3 ± 1.6 (2 seeds)``. One seed: the std of its evaluation games,
    ``7.1 ± 4.6 (30 games)``, or no ± where the row recorded none (``7.1 (1 seed)``); never ``± 0.0`` standing for
    "one number". ``—`` where there is no score.

    >>> score_cell(5.3, 1.6, 2), score_cell(7.1, float("nan"), 1, 4.6, 30), score_cell(7.1, None, 1)
    ('5.3 ± 1.6 (2 seeds)', '7.1 ± 4.6 (30 games)', '7.1 (1 seed)')
    >>> score_cell(float("nan"), 0.0, 0)
    '—'
    """
    if _missing(mean):
        return "—"
    n = 0 if _missing(seeds) else int(seeds)
    if n > 1 and not _missing(std):
        return f"{mean:.{digits}f} ± {std:.{digits}f} ({n} seeds)"
    if n == 1 and not _missing(spread) and not _missing(games):
        return f"{mean:.{digits}f} ± {spread:.{digits}f} ({int(games)} games)"
    return f"{mean:.{digits}f} ({n} seed{'s' if n != 1 else ''})"


def _missing(value: Any) -> bool:
    return value is None or bool(pd.isna(value))
