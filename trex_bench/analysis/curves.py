"""Learning curves: the true game score against agent steps, read from each run's TensorBoard log.

``train_ppo`` logs to ``<run>/agent/tb/ppo_1`` (SB3's ``tensorboard_log``). SB3's ``rollout/ep_rew_mean`` is the
mean of ``info["episode"]["r"]`` over the last 100 finished episodes, and our ``AtariVecEnv`` fills that with the
*true full-game* score whatever reward PPO is paid (``envs.py``: the monitor sits below every reward wrapper), so
that tag is the true score of the training policy (stochastic, all lives) for every method alike.

Per game, budget and schedule horizon, ``plot_curves`` overlays every run's curve with the best and the average
demonstration as horizontal lines. rl-zoo3's published PPO curves are not drawn: no source of their per-step data
could be cited here (its benchmark page gives final scores only).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write, read_json

__all__ = ["Curve", "TRUE_SCORE_TAG", "read_scores", "read_curve", "collect_curves", "plot_curves"]

TRUE_SCORE_TAG = "rollout/ep_rew_mean"


@dataclass(frozen=True)
class Curve:
    """One run's true score against agent steps, with what groups and labels it."""

    run: str
    game: str
    method: str
    budget: str
    horizon: str
    seed: int
    steps: tuple[int, ...]
    scores: tuple[float, ...]
    best_demo: float | None
    avg_demo: float | None

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.scores) or not self.steps:
            raise DataError(f"{self.run}: a curve needs as many scores as steps, at least one")


def _run_facts(run: Path) -> dict:
    """Game, method, budget, horizon, seed and demo returns from ``summary.json``'s row, else the agent card."""
    summary = run / "summary.json"
    if summary.is_file():
        row = read_json(summary).get("row", {})
        if row.get("game") and row.get("method"):
            return row
    card_path = run / "agent" / "card.json"
    if not card_path.is_file():
        raise DataError(f"{run}: neither summary.json with a row nor agent/card.json")
    from trex_bench.evaluation.leaderboard import agent_method

    card = read_json(card_path)
    return {
        "game": card.get("game"),
        "method": agent_method(card),
        "budget": card.get("budget"),
        "schedule_steps": card.get("schedule_steps"),
        "seed": card.get("seed", 0),
    }


def read_scores(tb_dir: str | Path) -> dict[int, float]:
    """``{agent step: true score}`` from the SB3 TensorBoard logs under ``tb_dir`` (``ppo_1``, ``ppo_2``, ...: a resumed
    run logs to the next folder, and its later steps win); empty where no episode finished."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    points: dict[int, float] = {}
    for folder in sorted({e.parent for e in Path(tb_dir).glob("*/events.out.tfevents.*")}):
        acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
        acc.Reload()
        if TRUE_SCORE_TAG in acc.Tags().get("scalars", []):
            points.update({int(e.step): float(e.value) for e in acc.Scalars(TRUE_SCORE_TAG)})
    return points


def read_curve(run: str | Path) -> Curve:
    """The curve of a run folder (``trex-bench pipeline``'s layout: ``agent/tb/*/events.out.tfevents.*``).

    Raises:
        ValueError: the folder has no TensorBoard event file, no ``rollout/ep_rew_mean`` in it, or no run facts.
    """
    run = Path(run)
    events = sorted((run / "agent" / "tb").glob("*/events.out.tfevents.*")) if (run / "agent" / "tb").is_dir() else []
    if not events:
        raise DataError(f"{run}: no TensorBoard log (agent/tb/*/events.out.tfevents.*)")
    points = read_scores(run / "agent" / "tb")
    if not points:
        raise DataError(f"{run}: its TensorBoard log has no {TRUE_SCORE_TAG} (no episode finished?)")
    facts = _run_facts(run)
    steps = sorted(points)
    horizon = facts.get("schedule_steps")
    best, avg = facts.get("best_demo"), facts.get("avg_demo")
    return Curve(
        run=run.name,
        game=str(facts["game"]),
        method=str(facts["method"]),
        budget=str(facts.get("budget")),
        horizon="own steps" if horizon in (None, "") else f"{int(horizon):,}",
        seed=int(facts.get("seed") or 0),
        steps=tuple(steps),
        scores=tuple(points[s] for s in steps),
        best_demo=None if best is None else float(best),
        avg_demo=None if avg is None else float(avg),
    )


def collect_curves(runs: str | Path) -> tuple[list[Curve], list[tuple[str, str]]]:
    """Curves of every run folder under ``runs`` (a folder with ``agent/``), and ``(folder, why)`` for the skipped.

    Raises:
        ValueError: ``runs`` is not a folder.
    """
    root = Path(runs)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of runs")
    curves, skipped = [], []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        if not (run / "agent").is_dir():
            continue  # not a pipeline run (e.g. runs/extrapolation)
        try:
            curves.append(read_curve(run))
        except ValueError as e:
            skipped.append((run.name, str(e).removeprefix(f"{run}: ")))
    return curves, skipped


def plot_curves(curves: Iterable[Curve], out_dir: str | Path) -> list[Path]:
    """One PNG per (game, budget, horizon): every run's curve, the best/average demo as dashed/dotted lines.

    Returns the written files, ``<game>-<budget>-<horizon>.png``, in name order.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str, str], list[Curve]] = {}
    for c in curves:
        groups.setdefault((c.game, c.budget, c.horizon), []).append(c)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for (game, budget, horizon), cs in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=90)
        methods = sorted({c.method for c in cs})
        colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
        for c in sorted(cs, key=lambda c: (c.method, c.seed)):
            ax.plot(np.array(c.steps), np.array(c.scores), color=colours[c.method], label=f"{c.method} s{c.seed}")
        best = next((c.best_demo for c in cs if c.best_demo is not None), None)
        avg = next((c.avg_demo for c in cs if c.avg_demo is not None), None)
        if best is not None and not math.isnan(best):
            ax.axhline(best, color="black", linestyle="--", linewidth=1, label=f"best demo {best:g}")
        if avg is not None and not math.isnan(avg):
            ax.axhline(avg, color="grey", linestyle=":", linewidth=1, label=f"average demo {avg:.3g}")
        ax.set(xlabel="agent steps", ylabel="true score (mean of last 100 games)")
        ax.set_title(f"{game}, budget {budget}, schedule {horizon}", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{game}-{budget}-{horizon.replace(',', '').replace(' ', '-')}.png"
        atomic_write(path, lambda p, fig=fig: fig.savefig(p, format="png"), suffix=".png")
        plt.close(fig)
        written.append(path)
    return written
