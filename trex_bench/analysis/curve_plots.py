"""Learning-curve figures: per game and budget, every run's true score against agent steps, the best and the average
demonstration, and rl-zoo3's published PPO curve with its points at 1M / 2M / 2.5M agent steps marked.

The axis runs to the budget's length (``experiment.budgets``), so a budget's curves and rl-zoo3's curve are read at
the same steps; a run still in progress is drawn dashed and says how far it got.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from trex_bench.analysis.curves import Curve, Reference, value_at
from trex_bench.analysis.protocols import demo_family
from trex_bench.core.io import atomic_write

__all__ = ["REFERENCE_STEPS", "plot_curves", "figure_name"]

REFERENCE_STEPS: tuple[int, ...] = (1_000_000, 2_000_000, 2_500_000)


def figure_name(game: str, budget: str) -> str:
    """The file name of a game and budget's figure: ``breakout-long.png``."""
    return f"{game}-{budget}.png"


def _budget_steps(budget: str, curves: list[Curve]) -> int:
    """The budget's PPO length (``experiment.budgets``), else the longest curve's last step."""
    from trex_bench.experiment.budgets import BUDGETS

    longest = max(c.steps[-1] for c in curves)
    return max(BUDGETS[budget].ppo.total_steps, longest) if budget in BUDGETS else longest


def _label(c: Curve) -> str:
    label = f"{c.variant or c.method} s{c.seed}" + ("" if c.horizon == "10,000,000" else f" (schedule {c.horizon})")
    return label if c.finished else f"{label}, running: {c.steps[-1]:,} steps"


def _draw_reference(ax, ref: Reference, x_max: int) -> None:
    steps, scores = np.array(ref.steps), np.array(ref.scores)
    inside = steps <= x_max * 1.02
    ax.plot(steps[inside], scores[inside], color="0.55", linewidth=2.2, alpha=0.7, label=ref.label, zorder=1)
    for at in REFERENCE_STEPS:
        v = value_at(ref.steps, ref.scores, at)
        if at <= x_max * 1.02 and v is not None:
            ax.plot([at], [v], marker="D", color="0.35", markersize=5, zorder=3)
            ax.annotate(f"{v:.4g}", (at, v), textcoords="offset points", xytext=(4, 4), fontsize=7, color="0.3")


def _draw_demos(ax, curves: list[Curve]) -> None:
    """The best and average demo of the set the game's methods share; a set of one method's own (D-REX's,
    ``protocols.demo_family``) only where no other curve is drawn, and then named."""
    shared = [c for c in curves if not demo_family(c.method)]
    whose = "" if shared else f" ({curves[0].method}'s own set)"
    best = next((c.best_demo for c in shared or curves if c.best_demo is not None), None)
    avg = next((c.avg_demo for c in shared or curves if c.avg_demo is not None), None)
    if best is not None and not math.isnan(best):
        ax.axhline(best, color="black", linestyle="--", linewidth=1, label=f"best demo {best:g}{whose}")
    if avg is not None and not math.isnan(avg):
        ax.axhline(avg, color="black", linestyle=":", linewidth=1, label=f"average demo {avg:.3g}{whose}")


def plot_curves(
    curves: Iterable[Curve], out_dir: str | Path, references: Mapping[str, Reference] | None = None
) -> list[Path]:
    """One PNG per (game, budget): ``figure_name``; returns the written files in name order."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups: dict[tuple[str, str], list[Curve]] = {}
    for c in curves:
        groups.setdefault((c.game, c.budget), []).append(c)
    out = Path(out_dir)
    if groups:  # nothing to draw makes no folder
        out.mkdir(parents=True, exist_ok=True)
    written = []
    for (game, budget), cs in sorted(groups.items()):
        fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=90)
        x_max = _budget_steps(budget, cs)
        ref = (references or {}).get(game)
        if ref is not None:
            _draw_reference(ax, ref, x_max)
        names = sorted({c.variant or c.method for c in cs})  # a variant (a KL penalty) gets a colour of its own
        colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(names)}
        for c in sorted(cs, key=lambda c: (c.variant or c.method, c.seed, c.run)):
            style = "-" if c.finished else "--"
            colour = colours[c.variant or c.method]
            ax.plot(np.array(c.steps), np.array(c.scores), style, color=colour, label=_label(c), zorder=2)
        _draw_demos(ax, cs)
        ax.set_xlim(0, x_max * 1.02)
        ax.set(xlabel="agent steps", ylabel="true score (mean of the last 100 games)")
        ax.set_title(f"{game}, budget {budget}", fontsize=10)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / figure_name(game, budget)
        atomic_write(path, lambda p, fig=fig: fig.savefig(p, format="png", metadata={"Software": None}), suffix=".png")
        plt.close(fig)
        written.append(path)
    return written
