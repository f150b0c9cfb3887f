"""Aggregate statistics over games and seeds with rliable (Agarwal et al., NeurIPS 2021).

One pure function, ``aggregate_stats``, on leaderboard rows (``read_leaderboard``'s frame). Per method variant,
budget and PPO schedule horizon (``schedule_steps``: a prefix of a 10M-step schedule and a run annealed over its own
steps are never mixed), across games and seeds:

- the interquartile mean (IQM, ``rliable.metrics.aggregate_iqm``) with a stratified-bootstrap 95 % percentile CI of
  *demo-normalised* scores, (score − random) / (best demo − random): 1 = the best demonstration, 0 = a uniform
  random policy (random scores: ``games.py``, the Mnih et al. 2015 values quoted by T-REX/D-REX, PAPERS.md);
- the same of *true-reward-normalised* scores, (score − constant) / (ppo-true − constant), against the mean of the
  constant-reward control and of PPO on the true reward on the same game, budget and horizon: 0 = what staying
  alive earns, 1 = what the true reward earns with the same PPO;
- the probability of improvement (``rliable.metrics.probability_of_improvement``) of T-REX over the constant
  control, BC, D-REX, GAIL, RL from preferences and a random policy, on the games both have rows for, with its CI;
- best of seeds per game, kept apart: the papers' protocol (best of 3 seeds), which hides seed variance.

The bootstrap resamples runs within each game (rliable's ``StratifiedBootstrap`` without task resampling). Where a
game has one run, that game would never vary, so the games are resampled too (rliable's ``task_bootstrap=True``; the
tables mark it "over games"): it says how much the aggregate hangs on which games were run, and needs ``MIN_GAMES``.
Over 5–7 games such a percentile interval covers the population's IQM about 90 % of the time, not 95 % (simulated
with normal and lognormal scores across games: 73 % at 3 games, 89–90 % at 5–7, 93 % at 10). An interval no resample
widened (every game agrees, or a control on its own normalisation) is not shown. It is written here in a few
lines because ``rliable.library`` cannot be imported beside pandas 3: rliable 1.2.0 pins
``arch<8``, arch 7.2 calls a private pandas decorator whose signature pandas 3 changed, and arch 8 renamed the
``random_state`` argument rliable passes. The statistics themselves are rliable's.

Which rows: the latest row of each seed (the CSV is append-only, so file order is time order); per game, budget and
horizon one demo set, the latest T-REX row's (a demo set is named by its best and average return), which also
normalises the controls there (they learn nothing from demos; ``_runs``); a KL penalty or a
non-default reward transform is its own variant (``trex (sigmoid+kl0.1)``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rliable import metrics

from trex_bench.analysis.protocols import EARLIER_NOTE, SUITE, demo_family, ran_ppo, split_protocols, with_suite
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.games import GAMES
from trex_bench.core.io import atomic_write
from trex_bench.evaluation.leaderboard import read_leaderboard
from trex_bench.evaluation.summary import recovered, variants
from trex_bench.experiment.budgets import ZOO_HORIZON, ppo_config

__all__ = [
    "Stats",
    "aggregate_stats",
    "protocol_stats",
    "tables_markdown",
    "check_bootstrap",
    "MAX_REPS",
    "to_markdown",
    "DEFAULT_METHODS",
    "CONTROLS",
    "IMPROVEMENT_OVER",
    "RANDOM_SOURCE",
    "variants",
    "write_stats",
]

DEFAULT_METHODS: tuple[str, ...] = ("trex", "drex", "bc", "gail", "prefs", "random", "constant", "ppo-true")
IMPROVEMENT_OVER: tuple[str, ...] = ("constant", "bc", "drex", "gail", "prefs", "random")  # P(T-REX > each of these)
CONTROLS: tuple[str, ...] = ("constant", "ppo-true")  # PPO without demos: their rows' demo set does not split them
MIN_GAMES = 5  # fewest games to resample where a game has one run (coverage: module doc)
MAX_REPS = 100_000  # rliable's default is 50 000; beyond this a run takes minutes and the CIs no longer move
RANDOM_SOURCE = "random-policy scores: trex_bench/core/games.py (Mnih et al. 2015, as quoted by T-REX/D-REX; PAPERS.md)"
_KEY = ["variant", "budget", "horizon"]


@dataclass(frozen=True)
class Stats:
    """What ``aggregate_stats`` returns.

    Attributes:
        aggregates: one row per (variant, budget, horizon, normalisation ``demo``/``true``): ``iqm``, ``ci_low``,
            ``ci_high``, ``ci_over`` (what the bootstrap resampled, ``_bootstrap``), ``games``, ``runs``.
        improvements: one row per (budget, horizon, other method): ``probability`` that a T-REX run beats a run of
            ``other`` on a game, averaged over the ``games`` both have, with ``ci_low``/``ci_high``/``ci_over``.
        best_of_seeds: per (variant, budget, horizon, game): ``seeds``, ``best`` score and its demo-normalised value.
        notes: what could not be computed and why (a method without rows, a game without controls).
        reps, seed: the bootstrap's resamples and seed.
    """

    aggregates: pd.DataFrame
    improvements: pd.DataFrame
    best_of_seeds: pd.DataFrame
    notes: tuple[str, ...]
    reps: int
    seed: int


def horizon(schedule_steps: float | None) -> str:
    """The PPO schedule's horizon as a label: ``10,000,000``, or ``own steps`` (annealed over the run's length)."""
    return "own steps" if schedule_steps is None or pd.isna(schedule_steps) else f"{int(schedule_steps):,}"


def _budget_horizon(budget: str) -> int:
    """The schedule horizon of a budget's PPO runs (``paper``: its own 12.5M steps), the rl-zoo3 schedule's for a
    budget this version does not know."""
    try:
        return ppo_config(str(budget)).horizon
    except ValueError:
        return ZOO_HORIZON


def _runs(df: pd.DataFrame, methods: Sequence[str]) -> pd.DataFrame:
    """The rows that count: requested methods, latest row per seed, one demo set per game, budget and horizon.

    The demo set is that of the latest T-REX row there (else of the latest row of another method that learns from
    demos); rows of those methods on other sets are left out. The controls (``CONTROLS``) learn nothing from demos:
    all their rows count, normalised by that same set, so a control and T-REX are never scored against different
    best demos. A method with a demo set of its own (``protocols.OWN_DEMO_SET``: D-REX) keeps its latest row's set
    and is normalised by it. Rows without a demo score cannot be normalised and are left out.
    """
    rows = df[df["method"].isin(methods) & (df["method"].isin(CONTROLS) | df["best_demo"].notna())].copy()
    rows["variant"] = variants(rows)
    # A row that ran no PPO (random, BC) has no schedule to differ on: it sits beside its budget's PPO rows.
    schedule = pd.to_numeric(rows["schedule_steps"], errors="coerce")
    ran = ran_ppo(rows["rl_steps"])
    rows["horizon"] = [
        horizon(s if r else _budget_horizon(b)) for s, r, b in zip(schedule, ran, rows["budget"], strict=True)
    ]
    keep = []
    for _, g in rows.groupby(["budget", "horizon", "game"], sort=False):
        controls = g[g["method"].isin(CONTROLS)]
        parts = []
        for family, learned in g[~g["method"].isin(CONTROLS)].groupby(g["method"].map(demo_family), sort=False):
            ref = learned[learned["method"] == "trex"] if (learned["method"] == "trex").any() else learned
            best, avg = ref["best_demo"].iloc[-1], ref["avg_demo"].iloc[-1]
            parts.append(learned[(learned["best_demo"] == best) & (learned["avg_demo"] == avg)])
            if not family:  # the controls are normalised by the shared set
                controls = controls.assign(best_demo=best, avg_demo=avg)
        g = pd.concat([controls, *parts])
        keep.append(g.drop_duplicates(subset=["variant", "seed"], keep="last"))
    return pd.concat(keep) if keep else rows.iloc[:0]


def _demo_normalised(rows: pd.DataFrame) -> pd.Series:
    random = rows["game"].map(lambda g: GAMES[g].random_score if g in GAMES else np.nan).astype(float)
    return (rows["mean"] - random) / (rows["best_demo"] - random)


def _true_normalised(rows: pd.DataFrame, notes: list[str]) -> pd.Series:
    """(score − constant) / (ppo-true − constant), the controls' seed means on the same game, budget and horizon."""
    refs = rows[rows["method"].isin(("constant", "ppo-true")) & (rows["variant"] == rows["method"])]
    ref = refs.groupby(["method", "budget", "horizon", "game"])["mean"].mean()
    out = pd.Series(np.nan, index=rows.index)
    missing: set[tuple[str, str, str]] = set()
    for i, r in rows.iterrows():
        lo = ref.get(("constant", r["budget"], r["horizon"], r["game"]))
        hi = ref.get(("ppo-true", r["budget"], r["horizon"], r["game"]))
        share = float("nan") if lo is None or hi is None else recovered(r["mean"], lo, hi)
        if np.isnan(share):  # a control missing, or no gain of the true reward over survival: no scale to measure on
            missing.add((r["game"], r["budget"], r["horizon"]))
        else:
            out[i] = share
    for game, budget, horizon in sorted(missing):
        notes.append(
            f"true-reward-normalised: {game} at {budget} ({horizon}) lacks a constant or a ppo-true row "
            "(or the true reward scores no higher than the constant); its runs are left out of that column"
        )
    return out


def _bootstrap(
    per_game: list[list[np.ndarray]], stat: Callable[..., float], reps: int, rng: np.random.Generator
) -> tuple[float, float, float, str]:
    """``stat`` on the data, its 95 % percentile CI over ``reps`` resamples, and what was resampled.

    ``per_game[k]`` holds, for each game, the runs of the k-th argument of ``stat``. Every game's runs are resampled
    with replacement within that game (rliable's ``StratifiedBootstrap``, ``task_bootstrap=False``): ``"runs"``. A game
    with one run is then the same in every resample, and where all are, the "interval" has zero width by construction.
    So where any game has one run, the games are resampled with replacement first, the same draw for every argument
    (paired games stay paired), then the runs within each drawn game (rliable's ``task_bootstrap=True``): ``"games"``.
    No interval (NaN) where that would need games it has not (``MIN_GAMES``: ``"few games"``; three give the range of
    the data) or where no resample moved it (``"no spread"``): never a point posing as an interval.
    """
    point = float(stat(*per_game))
    n_games = len(per_game[0])
    over = "runs" if all(len(x) > 1 for arg in per_game for x in arg) else "games"
    if over == "games" and n_games < MIN_GAMES:
        return point, float("nan"), float("nan"), "few games"
    draws = np.empty(reps)
    for b in range(reps):
        pick = rng.integers(0, n_games, n_games) if over == "games" else np.arange(n_games)
        draws[b] = stat(*[[arg[i][rng.integers(0, len(arg[i]), len(arg[i]))] for i in pick] for arg in per_game])
    low, high = np.percentile(draws, [2.5, 97.5])
    if low == high:
        return point, float("nan"), float("nan"), "no spread"
    return point, float(low), float(high), over


def _iqm(games: list[np.ndarray]) -> float:
    return float(metrics.aggregate_iqm(np.concatenate(games)))


def _poi(xs: list[np.ndarray], ys: list[np.ndarray]) -> float:
    """rliable's P(X > Y) per game (its matrices need equal run counts across games, so one game at a time)."""
    return float(np.mean([metrics.probability_of_improvement(x[:, None], y[:, None]) for x, y in zip(xs, ys)]))


def check_bootstrap(reps: int, seed: int) -> None:
    """ConfigError unless ``reps`` is in [1, ``MAX_REPS``] and ``seed`` is a valid generator seed (>= 0)."""
    if not 1 <= reps <= MAX_REPS:
        raise ConfigError(f"bootstrap resamples (--reps) must be in [1, {MAX_REPS:,}], got {reps:,}")
    if seed < 0:
        raise ConfigError(f"the bootstrap's seed (--seed) must be >= 0, got {seed}")


def aggregate_stats(
    df: pd.DataFrame, methods: Sequence[str] = DEFAULT_METHODS, reps: int = 2000, seed: int = 0
) -> Stats:
    """IQMs with stratified-bootstrap CIs, probabilities of improvement and best of seeds (see the module doc).

    Args:
        df: leaderboard rows (``read_leaderboard``); not modified.
        methods: the methods to aggregate; a requested method without rows is named in ``notes``.
        reps: bootstrap resamples (rliable's default is 50 000; a few thousand give CIs stable to ~0.01 here).
        seed: the bootstrap's seed.

    Raises:
        ValueError: ``reps`` outside [1, ``MAX_REPS``], a negative ``seed``, or ``df`` lacks a leaderboard column this
            needs.
    """
    check_bootstrap(reps, seed)
    need = ["game", "method", "reward_transform", "budget", "schedule_steps", "seed", "mean", "best_demo", "avg_demo"]
    lacking = [c for c in need if c not in df.columns]
    if lacking:
        raise DataError(f"leaderboard rows lack column(s) {', '.join(lacking)}")
    notes = [f"no leaderboard rows for method {m!r}" for m in methods if not (df["method"] == m).any()]
    rows = _runs(df, methods)
    rows = rows.assign(demo_norm=_demo_normalised(rows), true_norm=_true_normalised(rows, notes))
    rng = np.random.default_rng(seed)

    agg = []
    for (name, budget, hor), g in rows.groupby(_KEY, sort=True):
        for norm in ("demo", "true"):
            vals = g.dropna(subset=[f"{norm}_norm"])
            if vals.empty:
                continue
            per_game = [v[f"{norm}_norm"].to_numpy(float) for _, v in vals.groupby("game")]
            counts = vals["game"].value_counts().sort_index()
            if norm == "demo" and counts.nunique() > 1:  # rliable's score matrices assume as many runs per game
                runs = ", ".join(f"{game} {n}" for game, n in counts.items())
                notes.append(
                    f"IQM of {name} at {budget} ({hor}) pools unequal runs per game ({runs}): a game "
                    "with more runs weighs more"
                )
            iqm, low, high, over = _bootstrap([per_game], _iqm, reps, rng)
            agg.append((name, budget, hor, norm, iqm, low, high, over, len(per_game), len(vals)))
    aggregates = pd.DataFrame(
        agg, columns=[*_KEY, "normalisation", "iqm", "ci_low", "ci_high", "ci_over", "games", "runs"]
    ).sort_values(["normalisation", "budget", "horizon", "variant"], ignore_index=True)

    imp = []
    trex = rows[rows["variant"] == "trex"]
    for (budget, horizon), t in trex.groupby(["budget", "horizon"], sort=True):
        for other in IMPROVEMENT_OVER:
            o = rows[(rows["variant"] == other) & (rows["budget"] == budget) & (rows["horizon"] == horizon)]
            games = sorted(set(t["game"]) & set(o["game"]))
            if not games:
                notes.append(f"P(trex > {other}) at {budget} ({horizon}): no {other} rows on T-REX's games")
                continue
            xs = [t.loc[t["game"] == gm, "mean"].to_numpy(float) for gm in games]
            ys = [o.loc[o["game"] == gm, "mean"].to_numpy(float) for gm in games]
            p, low, high, over = _bootstrap([xs, ys], _poi, reps, rng)
            imp.append((budget, horizon, other, p, low, high, over, len(games), sum(map(len, xs)), sum(map(len, ys))))
    improvements = pd.DataFrame(
        imp,
        columns=[
            "budget",
            "horizon",
            "other",
            "probability",
            "ci_low",
            "ci_high",
            "ci_over",
            "games",
            "trex_runs",
            "runs",
        ],
    )

    g = rows[rows["budget"] != SUITE].groupby([*_KEY, "game"], sort=True)  # the suite's rows are at their budget
    best = g["mean"].max()
    best_of_seeds = pd.DataFrame(
        {"seeds": g.size(), "best": best, "best_demo_normalised": g["demo_norm"].max()}
    ).reset_index()
    return Stats(aggregates, improvements, best_of_seeds, tuple(notes), reps, seed)


NO_INTERVAL = {
    "few games": f"n/a: a game with one run, under {MIN_GAMES} games",
    "no spread": "n/a: no resample moved it",
}


def _ci(point: float, low: float, high: float, over: str) -> str:
    """``0.35 [0.20, 0.50]`` (runs resampled within games), ``0.35 [0.20, 0.50] over games`` (the games resampled
    too), ``0.28 (n/a: …)`` where no interval is given (``NO_INTERVAL``, ``_bootstrap``)."""
    if np.isnan(low) or np.isnan(high):
        return f"{point:.2f} ({NO_INTERVAL[over]})"
    return f"{point:.2f} [{low:.2f}, {high:.2f}]" + (" over games" if over == "games" else "")


def tables_markdown(stats: Stats, h: str) -> list[str]:
    """The three tables of ``stats`` under ``h``-level headings (``##``, ``###``)."""
    lines = []
    iqm = "IQM [95 % CI]"
    titles = {
        "demo": f"Demo-normalised score, (score − random) / (best demo − random): {iqm}",
        "true": f"True-reward-normalised score, (score − constant) / (ppo-true − constant), same budget: {iqm}",
    }
    for norm, title in titles.items():
        a = stats.aggregates[stats.aggregates["normalisation"] == norm]
        lines += [f"{h} {title}", "", "| method | budget | schedule horizon | IQM [95 % CI] | games | runs |"]
        lines += ["|---|---|---|---|---|---|"]
        lines += [
            f"| {r.variant} | {r.budget} | {r.horizon} | {_ci(r.iqm, r.ci_low, r.ci_high, r.ci_over)} | {r.games} "
            f"| {r.runs} |"
            for r in a.itertuples()
        ] or ["| — | | | no rows | | |"]
        lines.append("")
    lines += [f"{h} Probability of improvement of T-REX, P(T-REX run > other run on a game) [95 % CI]", ""]
    lines += [
        "| budget | schedule horizon | over | P [95 % CI] | games | T-REX runs | other runs |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.budget} | {r.horizon} | {r.other} | {_ci(r.probability, r.ci_low, r.ci_high, r.ci_over)} | {r.games} | "
        f"{r.trex_runs} | {r.runs} |"
        for r in stats.improvements.itertuples()
    ] or ["| — | | | no pairs | | | |"]
    lines += ["", f"{h} Best of seeds per game (the papers' protocol: best of 3 seeds; hides seed variance)", ""]
    lines += [
        "| method | budget | schedule horizon | game | seeds | best | demo-normalised |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r.variant} | {r.budget} | {r.horizon} | {r.game} | {r.seeds} | {r.best:.1f} "
        f"| {r.best_demo_normalised:.2f} |"
        for r in stats.best_of_seeds.itertuples()
    ]
    if stats.notes:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in stats.notes]
    return [*lines, ""]


def to_markdown(stats: Stats, source: str = "results/leaderboard.csv", earlier: Stats | None = None) -> str:
    """The three tables and the notes as a markdown page; ``earlier`` (the same of rows of replaced protocols,
    ``protocols.split_protocols``) in a section of its own after them."""
    lines = ["# Aggregate statistics (rliable): IQM and probability of improvement over games and seeds", ""]
    lines += tables_markdown(stats, "##")
    if earlier is not None and not (earlier.aggregates.empty and earlier.improvements.empty):
        lines += ["## Earlier protocols", "", EARLIER_NOTE, "", *tables_markdown(earlier, "###")]
    lines += [
        f"Rows: `{source}`, the latest row of each seed; per game, budget and horizon one demo set (the latest "
        f"T-REX row's), which also normalises the controls. {RANDOM_SOURCE}. "
        f"Stratified bootstrap over runs within games, {stats.reps} resamples, seed {stats.seed}; where a game has "
        "one run, the games are resampled too (rliable's task bootstrap, marked *over games*: how much the number "
        f"hangs on which games were run), from {MIN_GAMES} games; over 5–7 games such an interval covers about 90 %, "
        "not 95 % (simulated; `trex_bench/analysis/stats.py`). No interval where there are too few games or no "
        "resample moved the number. "
        "IQM and P(improvement): `rliable.metrics`. With two or three runs per game a CI is mostly a statement of how "
        "few there are. Generated by `trex-bench tables stats`; do not edit by hand.",
        "",
    ]
    return "\n".join(lines)


def protocol_stats(
    df: pd.DataFrame, methods: Sequence[str] = DEFAULT_METHODS, reps: int = 2000, seed: int = 0
) -> tuple[Stats, Stats]:
    """``aggregate_stats`` of the current protocol's rows, its eight-game leaderboard among them
    (``protocols.with_suite``), and, apart, of the replaced protocols' rows (``protocols.split_protocols``), each with
    its own generator seeded by ``seed``."""
    split = split_protocols(df)
    current = aggregate_stats(with_suite(split.current), methods, reps, seed)
    earlier = aggregate_stats(split.earlier.drop(columns="why"), methods, reps, seed)
    return current, replace(earlier, notes=tuple(n for n in earlier.notes if not n.startswith("no leaderboard rows")))


def write_stats(leaderboard: str | Path, out: str | Path, reps: int = 2000, seed: int = 0) -> str:
    """``aggregate_stats`` of a leaderboard file, written to ``out`` atomically as markdown; returns the text."""
    current, earlier = protocol_stats(read_leaderboard(leaderboard), reps=reps, seed=seed)
    text = to_markdown(current, str(leaderboard), earlier)
    atomic_write(Path(out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return text
