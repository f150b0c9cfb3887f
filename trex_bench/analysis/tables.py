"""The papers' tables regenerated from the leaderboard, side by side with the published numbers (``baselines/``).

``trex-bench tables trex|mturk|drex`` joins ``results/leaderboard.csv`` with the matching ``baselines/*.csv`` on the
game and writes a markdown table to ``results/tables/<kind>.md``. One row per (game, budget) that has runs, plus one
row for each published game without runs (our columns empty), so the gap to the papers stays visible.

Our columns summarise the plain method only (a KL-penalised run or another reward transform, ``…+kl…`` or
``delta``, is another experiment: ``summary.variant``), over the latest row of each seed
(``summary.summarize``): the mean ± the std over seeds (one seed: ± the std of its evaluation games;
``summary.score_cell``) and best of seeds. The current protocol's rows come first; rows of replaced protocols
(PPO annealed over its own steps, an earlier demo set: ``protocols``) follow in a section of their own.
The T-REX table also sets the two controls beside each row, run at the same game, budget and PPO schedule: the
constant reward (what staying alive earns) and PPO on the true reward, and the share of the true reward's gain over
the constant one that the learned reward recovers, (T-REX − constant) / (true − constant) (``stats`` aggregates the
same ratio over games).
The papers report best of 3 seeds at 50M frames; our budgets are far smaller, so the ``rl_steps`` column matters
as much as the score.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from trex_bench.analysis.protocols import EARLIER_NOTE, current_demo_sets, split_protocols, why_apart
from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write
from trex_bench.evaluation.leaderboard import read_leaderboard
from trex_bench.evaluation.summary import SCORE_HEADER, recovered, score_cell, summarize_rows, variant, variants

__all__ = ["TableSpec", "TABLES", "build_table", "to_markdown", "write_table"]


@dataclass(frozen=True)
class TableSpec:
    """Which leaderboard rows a table summarises and which published columns sit beside them.

    Attributes:
        title: the table's heading.
        baseline_file: a CSV in the baselines folder with a ``game`` column.
        method, ranking: the leaderboard rows (``method``, ``ranking_source``) that are "ours"; ranking None: any
            (D-REX always ranks by noise; its rows written before that was fixed say "return").
        published: published column → header.
        companion: another method summarised beside ours (e.g. the BC clone next to D-REX), or None.
        companion_note: what the companion column is, printed under the table (its demos may differ from ours).
        controls: whether the constant-reward and true-reward controls (and the share recovered) sit beside ours.
        source: the citation printed under the table.
    """

    title: str
    baseline_file: str
    method: str
    ranking: str | None
    published: Mapping[str, str] = field(default_factory=dict)
    companion: str | None = None
    companion_note: str = ""
    controls: bool = False
    source: str = ""


TABLES: dict[str, TableSpec] = {
    "trex": TableSpec(
        "T-REX (ICML 2019, Table 1) vs trex_bench",
        "trex_table1.csv",
        "trex",
        "return",
        {"best_demo": "paper best demo", "avg_demo": "paper avg demo", "trex": "paper T-REX", "gail": "paper GAIL"},
        companion="gail",
        controls=True,
        source="Brown et al., ICML 2019, Table 1: best of 3 seeds, 30 games each, PPO 50M frames; its GAIL column "
        "is the IRL baseline run on the same demos (baselines/README.md).",
    ),
    "mturk": TableSpec(
        "T-REX from human (MTurk) labels vs trex_bench",
        "trex_table1.csv",
        "trex",
        "human",
        {"trex_mturk": "paper T-REX (MTurk)", "mturk_label_accuracy": "paper label accuracy"},
        source="Brown et al., ICML 2019, MTurk-label table (baselines/README.md).",
    ),
    "drex": TableSpec(
        "D-REX (CoRL 2019): demos and BC vs trex_bench",
        "drex_demos_bc.csv",
        "drex",
        None,
        {"best_demo": "paper best demo", "avg_demo": "paper avg demo", "bc_mean": "paper BC"},
        companion="bc",
        companion_note="`ours bc` is the `bc` method's own row (best of seeds): a clone of the run's demo set, at "
        "`small` the 12 PPO checkpoints' episodes that T-REX ranks (demos/<game>/ppo-checkpoints), where the paper's "
        "BC cloned D-REX's demos of one demonstrator (our `drex` runs clone demos/<game>/drex-demos).",
        source="Brown, Goo, Niekum, CoRL 2019 (demonstrations and BC columns; baselines/README.md).",
    ),
}


def _plain(df: pd.DataFrame, method: str, ranking: str | None = None) -> pd.DataFrame:
    """The rows of ``method`` run as usual but for ``ranking`` (None: its usual one): no KL penalty, no ``delta``,
    the papers' env profile, no wall-time cap (``summary.variant``)."""
    rows = df[df["method"] == method]
    if ranking is not None:
        rows = rows[rows["ranking_source"] == ranking]
    usual = variant(method, "", ranking or "")
    return rows[variants(rows) == usual]


def _ours(df: pd.DataFrame, method: str, ranking: str | None) -> pd.DataFrame:
    """Per (game, budget) of the plain method: ``summary.summarize_rows``, latest row per seed."""
    rows = _plain(df, method, ranking)
    return summarize_rows(rows, ("game", "budget")).drop(columns=["superseded", "human_normalized"])


CONSTANT, TRUE, RECOVERED = "constant", "true reward", "(T-REX − constant) / (true − constant)"
SCORE = f"ours {SCORE_HEADER}"
PROTOCOL, CURRENT = "protocol", "current"
_CONTROL_KEY = ["game", "budget", "schedule_steps"]
_OURS = {
    "mean": "ours mean",
    "std": "ours std",
    "spread": "ours spread",
    "games": "ours games",
    "best": "ours best of seeds",
    "best_demo": "our best demo",
    "avg_demo": "our avg demo",
    "beats_best_demo": "seeds beating best demo",
}


def _control(df: pd.DataFrame, method: str) -> pd.DataFrame:
    """A control's mean over seeds per game, budget and schedule: ``_CONTROL_KEY`` + ``mean``.

    Neither control learns from the demos, so the demo set its row names does not split it: the latest row of each
    seed counts, whichever set it was logged with.
    """
    rows = _plain(df, method).drop_duplicates(subset=[*_CONTROL_KEY, "seed"], keep="last")
    return rows.groupby(_CONTROL_KEY, dropna=False)["mean"].mean().reset_index()


def _with_controls(ours: pd.DataFrame, lb: pd.DataFrame) -> pd.DataFrame:
    """``ours`` with the constant and true-reward controls of its game, budget and schedule, and the share recovered.

    A game and budget with controls but no T-REX run gets a row of its own (T-REX columns empty), so the controls
    already run are visible before the method's run lands.
    """
    both = _control(lb, "constant").merge(_control(lb, "ppo-true"), on=_CONTROL_KEY, how="outer", suffixes=("_c", "_t"))
    both = both.rename(columns={"mean_c": CONSTANT, "mean_t": TRUE})
    # an empty frame's key columns are objects: one dtype per key on both sides, whatever rows there are
    ours, both = (f.astype({"schedule_steps": float, "game": object, "budget": object}) for f in (ours, both))
    out = ours.merge(both, on=_CONTROL_KEY, how="outer")
    out[RECOVERED] = recovered(out["ours mean"], out[CONSTANT], out[TRUE])
    return out


def _our_columns(spec: TableSpec, lb: pd.DataFrame) -> pd.DataFrame:
    """Our summarised rows of ``spec`` from the leaderboard rows ``lb`` (one protocol's), one per game and budget."""
    ours = _ours(lb, spec.method, spec.ranking).rename(columns=_OURS)
    if spec.companion is not None:
        comp = _ours(lb, spec.companion, None)[["game", "budget", "best"]].rename(
            columns={"best": f"ours {spec.companion}"}
        )
        ours = ours.merge(comp, on=["game", "budget"], how="outer")
    if spec.controls:
        ours = _with_controls(ours, lb)
    return ours


def _published(kind: str, baselines: str | Path) -> pd.DataFrame:
    """The published columns of the ``kind`` table, renamed to their headers."""
    if kind not in TABLES:
        raise DataError(f"unknown table {kind!r}; valid: {', '.join(TABLES)}")
    spec = TABLES[kind]
    path = Path(baselines) / spec.baseline_file
    if not path.exists():
        raise DataError(f"{path} does not exist (the published numbers; see baselines/README.md)")
    published = pd.read_csv(path)
    missing = [c for c in ("game", *spec.published) if c not in published.columns]
    if missing:
        raise DataError(f"{path} lacks column(s) {', '.join(missing)}")
    return published[["game", *spec.published]].rename(columns=dict(spec.published))


def build_table(kind: str, leaderboard: str | Path, baselines: str | Path) -> pd.DataFrame:
    """The ``kind`` table (``trex``, ``mturk``, ``drex``) as a DataFrame: published columns, then ours.

    The current protocol's rows come first (``protocol`` = ``current``; every published game, with or without runs),
    then the rows of replaced protocols (``protocols.split_protocols``), each with what differs in ``protocol``.

    Raises:
        ValueError: an unknown kind, or a baselines CSV that is missing or has no ``game`` column.
    """
    published = _published(kind, baselines)
    spec = TABLES[kind]
    lb = read_leaderboard(leaderboard)
    split = split_protocols(lb)
    current = published.merge(_our_columns(spec, split.current), on="game", how="outer")
    current.insert(0, PROTOCOL, CURRENT)
    earlier = published.merge(_our_columns(spec, split.earlier), on="game", how="right")
    if not earlier.empty:
        sets = current_demo_sets(lb)
        cols = ("game", "schedule_steps", "our best demo", "our avg demo", "rl_steps")
        why = [
            why_apart(g, spec.method, s, b, a, sets, n)
            for g, s, b, a, n in zip(*(earlier[c] for c in cols), strict=True)
        ]
        earlier.insert(0, PROTOCOL, [w or "earlier protocol" for w in why])
    key = ["game", "budget"]
    parts = [t.sort_values(key, na_position="last", kind="stable") for t in (current, earlier) if not t.empty]
    return pd.concat(parts, ignore_index=True) if parts else current


def _fmt(value: object) -> str:
    """Numbers alike whatever their dtype: 1,332 · 686 · 14.5 · 0.881; missing as —."""
    if value is None or (isinstance(value, (float, np.floating)) and np.isnan(value)):
        return "—"
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        v = float(value)
        if v.is_integer() or abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.3g}" if abs(v) < 1 else f"{v:.1f}"
    return str(value)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """The table's cells as text: ours as one ``score_cell`` (± over seeds, or over one seed's games), counts as
    integers, the share recovered to two decimals."""
    t = table.copy()
    if "ours mean" in t.columns:
        t.insert(
            t.columns.get_loc("ours mean"),
            SCORE,
            [
                score_cell(r["ours mean"], r["ours std"], r["seeds"], r["ours spread"], r["ours games"])
                for _, r in t.iterrows()
            ],
        )
        t = t.drop(columns=["ours mean", "ours std", "ours spread", "ours games"])
    if RECOVERED in t.columns:
        t[RECOVERED] = [("—" if pd.isna(v) else f"{v:.2f}") for v in t[RECOVERED]]
    for c in ("seeds", "rl_steps", "seeds beating best demo"):
        if c in t.columns:
            t[c] = [("—" if pd.isna(v) else f"{int(v):,}") for v in t[c]]
    return t


def _pipe_table(t: pd.DataFrame) -> list[str]:
    lines = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in t.itertuples(index=False)]


def to_markdown(table: pd.DataFrame, spec: TableSpec, leaderboard: str | Path) -> str:
    """A markdown page: title, the current protocol's table, earlier protocols apart, provenance and caveats."""
    t = _display(table)
    protocol = t.pop(PROTOCOL) if PROTOCOL in t.columns else pd.Series(CURRENT, index=t.index)
    lines = [f"# {spec.title}", "", *_pipe_table(t[protocol == CURRENT])]
    earlier = t[protocol != CURRENT].drop(columns=list(spec.published.values()))
    if not earlier.empty:
        earlier.insert(2, "what differs", protocol[protocol != CURRENT])
        lines += ["", "## Earlier protocols", "", EARLIER_NOTE, "", *_pipe_table(earlier)]
    lines += [
        "",
        f"Published: {spec.source}",
        f"Ours: `{leaderboard}`, method `{spec.method}`"
        + (f", ranking `{spec.ranking}`" if spec.ranking else "")
        + ", no KL penalty; the latest row of each seed; `rl_steps` = agent steps (the papers: 12.5M); "
        "± is the std of the seeds' means, or for one seed the std of its evaluation games (the cell says which).",
        *(
            [
                f"Controls: `{CONSTANT}` and `{TRUE}` are PPO on the constant and on the true reward at the same game, "
                "budget and schedule, mean over seeds (latest row per seed), whatever demo set their rows name "
                f"(neither learns from demos); `{RECOVERED}` is the share of the true reward's gain over survival "
                "that the learned reward recovers, left empty where the true reward gained nothing over the constant."
            ]
            if spec.controls
            else []
        ),
        *([spec.companion_note] if spec.companion_note else []),
        "Generated by `trex-bench tables`; do not edit by hand.",
        "",
    ]
    return "\n".join(lines)


def write_table(kind: str, leaderboard: str | Path, baselines: str | Path, out: str | Path) -> str:
    """Build the ``kind`` table, write it to ``out`` atomically as markdown and return the text."""
    text = to_markdown(build_table(kind, leaderboard, baselines), TABLES[kind], leaderboard)
    atomic_write(Path(out), lambda tmp: tmp.write_text(text, encoding="utf-8"))
    return text
