"""Learning curves: the true game score against agent steps, from run folders and from the committed CSVs.

``train_ppo`` logs to ``<run>/agent/tb/ppo_1`` (SB3's ``tensorboard_log``; ``<run>/.agent.tmp/tb`` while the run is
in progress). SB3's ``rollout/ep_rew_mean`` is the mean of ``info["episode"]["r"]`` over the last 100 finished
episodes, and our ``AtariVecEnv`` fills that with the *true full-game* score whatever reward PPO is paid (``envs.py``:
the monitor sits below every reward wrapper), so that tag is the true score of the training policy (stochastic, all
lives) for every method alike.

Run folders are not committed (their checkpoints are hundreds of MB) and leave with the machine they ran on, so
``export_curve`` reduces a run's curve to a small CSV beside a JSON sidecar (``results/curves/<run>.csv`` and
``.json``): every k-th rollout, at most ``MAX_POINTS`` points. The report and ``docs/results.md`` draw from those.
rl-zoo3's published PPO runs are the reference curve of each game (``results/curves/rlzoo3/<game>.csv``, reduced
from its monitor files by ``tools/reduce_rlzoo3_monitors.py``; the README there cites the files).
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write, read_json, write_json

__all__ = [
    "Curve",
    "Reference",
    "TRUE_SCORE_TAG",
    "MAX_POINTS",
    "read_scores",
    "read_curve",
    "collect_curves",
    "export_curve",
    "export_curves",
    "read_curve_csv",
    "load_curves",
    "load_references",
    "first_above",
    "value_at",
    "thin",
]

TRUE_SCORE_TAG = "rollout/ep_rew_mean"
# A 2.5M-step run logs a point every 1024 steps (8 envs × 128): 2442 points; 500 keep the shape at a few kB.
MAX_POINTS = 500
SOURCE = (
    f"{TRUE_SCORE_TAG}: SB3's mean true full-game score (all lives) of the last 100 training episodes of the "
    "stochastic policy, whatever reward PPO was paid"
)


@dataclass(frozen=True)
class Curve:
    """One run's true score against agent steps, with what groups and labels it.

    Attributes:
        variant: how the method ran where that is not as usual (``evaluation.summary.variant``: a KL penalty, another
            reward transform or ranking, a time cap), "" where it ran as usual: a variant's curve is never the
            method's.
        finished: False while the run's PPO stage is still going (``steps[-1]`` is the step reached so far).
    """

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
    precision: str | None = None
    finished: bool = True
    variant: str = ""

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.scores) or not self.steps:
            raise DataError(f"{self.run}: a curve needs as many scores as steps, at least one")
        if any(b <= a for a, b in zip(self.steps, self.steps[1:])):
            raise DataError(f"{self.run}: a curve's steps must increase")


@dataclass(frozen=True)
class Reference:
    """A published curve of a game (rl-zoo3's PPO): score against agent steps and where it comes from."""

    game: str
    steps: tuple[int, ...]
    scores: tuple[float, ...]
    label: str


def _horizon(schedule_steps: Any) -> str:
    return "own steps" if schedule_steps in (None, "") else f"{int(float(schedule_steps)):,}"


def _demo_returns(demos: str | None, roots: Sequence[Path]) -> tuple[float | None, float | None]:
    """Best and average return of a demo set named by a run's config (its manifest's episodes), else Nones."""
    if not demos:
        return None, None
    for root in roots:
        manifest = Path(root) / demos / "manifest.json"
        if manifest.is_file():
            returns = [float(e["return"]) for e in read_json(manifest).get("episodes", [])]
            if returns:
                return max(returns), sum(returns) / len(returns)
    return None, None


def _run_facts(run: Path) -> dict[str, Any]:
    """Game, method, budget, schedule, seed, precision and demo returns of a run folder, finished or in progress.

    A finished run: ``summary.json``'s leaderboard row (and ``agent/card.json`` for the precision), else the agent
    card (PPO done, evaluation not yet). A run in progress: its ``config.json`` and ``.agent.tmp/run.json`` (the PPO
    job's card so far). The demo returns of the last two come from the demo set's manifest, found relative to the
    working folder or the runs folder's parent.
    """
    from trex_bench.evaluation.leaderboard import agent_method, card_transform
    from trex_bench.evaluation.summary import variant

    card_path = run / "agent" / "card.json"
    card = read_json(card_path) if card_path.is_file() else {}
    summary = run / "summary.json"
    row = read_json(summary).get("row", {}) if summary.is_file() else {}
    if row.get("game") and row.get("method"):
        how = [str(row.get(k) or "") for k in ("reward_transform", "ranking_source", "env_profile")]
        capped = str(row.get("time_capped")).lower() == "true"
        return row | {
            "precision": row.get("precision") or card.get("precision"),
            "variant": _unusual(variant(str(row["method"]), *how, capped), str(row["method"])),
            "finished": True,
        }
    config_path, job_path = run / "config.json", run / ".agent.tmp" / "run.json"
    config = read_json(config_path) if config_path.is_file() else {}
    best, avg = _demo_returns(config.get("demos"), [run.parent.parent, Path.cwd()])
    # The card (PPO finished, its evaluation has not) or the PPO job's record so far: the same reward and KL facts.
    if not card and not (config_path.is_file() and job_path.is_file()):
        raise DataError(
            f"{run}: neither summary.json with a row, agent/card.json nor config.json + .agent.tmp/run.json"
        )
    job = card or read_json(job_path)
    method = agent_method(job)
    how = variant(method, card_transform(job), str(config.get("ranking") or ""), str(config.get("profile") or ""))
    return {
        "game": job.get("game"),
        "method": method,
        "budget": card.get("budget") if card else config.get("budget"),
        "schedule_steps": card.get("schedule_steps") if card else job.get("config", {}).get("schedule_steps"),
        "seed": job.get("seed", 0),
        "precision": job.get("precision"),
        "best_demo": best,
        "avg_demo": avg,
        "variant": _unusual(how, method),
        "finished": bool(card),
    }


def _unusual(name: str, method: str) -> str:
    """``Curve.variant``: "" for the method as usual."""
    return "" if name == method else name


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


def _tb_dir(run: Path) -> Path | None:
    """The run's TensorBoard folder: ``agent/tb`` once PPO finished, ``.agent.tmp/tb`` while it runs."""
    for tb in (run / "agent" / "tb", run / ".agent.tmp" / "tb"):
        if tb.is_dir() and any(tb.glob("*/events.out.tfevents.*")):
            return tb
    return None


def read_curve(run: str | Path) -> Curve:
    """The curve of a run folder (``trex-bench pipeline``'s layout), finished or in progress.

    Raises:
        ValueError: the folder has no TensorBoard event file, no ``rollout/ep_rew_mean`` in it, or no run facts.
    """
    run = Path(run)
    tb = _tb_dir(run)
    if tb is None:
        raise DataError(f"{run}: no TensorBoard log (agent/tb/*/events.out.tfevents.* or .agent.tmp/tb/...)")
    points = read_scores(tb)
    if not points:
        raise DataError(f"{run}: its TensorBoard log has no {TRUE_SCORE_TAG} (no episode finished?)")
    facts = _run_facts(run)
    steps = sorted(points)
    best, avg = facts.get("best_demo"), facts.get("avg_demo")
    return Curve(
        run=run.name,
        game=str(facts["game"]),
        method=str(facts["method"]),
        budget=str(facts.get("budget")),
        horizon=_horizon(facts.get("schedule_steps")),
        seed=int(facts.get("seed") or 0),
        steps=tuple(steps),
        scores=tuple(points[s] for s in steps),
        best_demo=None if best in (None, "") else float(best),
        avg_demo=None if avg in (None, "") else float(avg),
        precision=facts.get("precision") or None,
        finished=bool(facts.get("finished", True)),
        variant=str(facts.get("variant") or ""),
    )


def collect_curves(runs: str | Path) -> tuple[list[Curve], list[tuple[str, str]]]:
    """Curves of every run folder under ``runs`` (one with ``agent/`` or ``.agent.tmp/``), and ``(folder, why)`` for
    the skipped.

    Raises:
        ValueError: ``runs`` is not a folder.
    """
    root = Path(runs)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of runs")
    curves, skipped = [], []
    for run in sorted(p for p in root.iterdir() if p.is_dir()):
        if not ((run / "agent").is_dir() or (run / ".agent.tmp").is_dir()):
            continue  # not a pipeline run with a PPO stage (e.g. runs/extrapolation, sweep-logs)
        try:
            curves.append(read_curve(run))
        except ValueError as e:
            skipped.append((run.name, str(e).removeprefix(f"{run}: ")))
    return curves, skipped


def thin(steps: Sequence[int], scores: Sequence[float], max_points: int = MAX_POINTS) -> tuple[list, list, int]:
    """Every k-th point (the first and the last always kept), k the smallest that leaves ≤ ``max_points``.

    >>> thin(range(10), range(10), 4)
    ([0, 3, 6, 9], [0, 3, 6, 9], 3)
    """
    n = len(steps)
    k = max(1, math.ceil((n - 1) / max(1, max_points - 1))) if n > max_points else 1
    keep = list(range(0, n, k))
    if keep[-1] != n - 1:
        keep.append(n - 1)
    return [steps[i] for i in keep], [scores[i] for i in keep], k


def export_curve(curve: Curve, out_dir: str | Path, max_points: int = MAX_POINTS) -> Path:
    """Write ``<out_dir>/<run>.csv`` (``step,true_score``) and its sidecar ``<run>.json``, each atomically; returns the
    CSV's path. Only this run's two files are written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    steps, scores, every = thin(curve.steps, curve.scores, max_points)
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "true_score"])
    w.writerows([s, f"{v:.6g}"] for s, v in zip(steps, scores, strict=True))
    path = out / f"{curve.run}.csv"
    sidecar = {
        "run": curve.run,
        **{k: v for k, v in asdict(curve).items() if k not in ("run", "steps", "scores", "horizon")},
        "schedule_steps": None if curve.horizon == "own steps" else int(curve.horizon.replace(",", "")),
        "finished": curve.finished,
        "step_reached": curve.steps[-1],
        "points_logged": len(curve.steps),
        "kept_every": every,
        "source": SOURCE,
    }
    write_json(out / f"{curve.run}.json", sidecar)
    atomic_write(path, lambda p: p.write_text(buf.getvalue(), encoding="utf-8"), suffix=".csv")
    return path


def export_curves(runs: str | Path, out_dir: str | Path) -> tuple[list[tuple[Curve, Path]], list[tuple[str, str]]]:
    """``export_curve`` of every run under ``runs``: ``(curve, csv)`` written, ``(folder, why)`` skipped."""
    curves, skipped = collect_curves(runs)
    return [(c, export_curve(c, out_dir)) for c in curves], skipped


def read_curve_csv(path: str | Path) -> Curve:
    """A curve exported by ``export_curve`` (its CSV and the sidecar beside it).

    Raises:
        ValueError: a missing or incomplete sidecar, a CSV without ``step,true_score`` columns or without rows.
    """
    path = Path(path)
    side = path.with_suffix(".json")
    if not side.is_file():
        raise DataError(f"{path}: no sidecar {side.name} (written by `trex-bench curves export`)")
    meta = read_json(side)
    lacking = [k for k in ("run", "game", "method", "budget") if not isinstance(meta, dict) or k not in meta]
    if lacking:
        raise DataError(f"{side}: the sidecar lacks {', '.join(lacking)}")
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"step", "true_score"} <= set(rows[0]):
        raise DataError(f"{path}: want columns step,true_score and at least one row")
    return Curve(
        run=str(meta["run"]),
        game=str(meta["game"]),
        method=str(meta["method"]),
        budget=str(meta["budget"]),
        horizon=_horizon(meta.get("schedule_steps")),
        seed=int(meta.get("seed") or 0),
        steps=tuple(int(r["step"]) for r in rows),
        scores=tuple(float(r["true_score"]) for r in rows),
        best_demo=meta.get("best_demo"),
        avg_demo=meta.get("avg_demo"),
        precision=meta.get("precision"),
        finished=bool(meta.get("finished", True)),
        variant=str(meta.get("variant") or ""),
    )


def load_curves(folder: str | Path) -> list[Curve]:
    """Every exported curve in ``folder`` (``*.csv`` with a sidecar), by run name; none when it does not exist."""
    folder = Path(folder)
    return [read_curve_csv(p) for p in sorted(folder.glob("*.csv"))] if folder.is_dir() else []


def load_references(folder: str | Path, label: str = "rl-zoo3 PPO") -> dict[str, Reference]:
    """``{game: Reference}`` from ``folder/<game>.csv`` (``step,score``); empty when the folder does not exist."""
    out = {}
    for path in sorted(Path(folder).glob("*.csv")) if Path(folder).is_dir() else []:
        with path.open(encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        if not rows or not {"step", "score"} <= set(rows[0]):
            raise DataError(f"{path}: want columns step,score and at least one row")
        steps = tuple(int(r["step"]) for r in rows)
        out[path.stem] = Reference(path.stem, steps, tuple(float(r["score"]) for r in rows), label)
    return out


def first_above(steps: Sequence[int], scores: Sequence[float], threshold: float, k: int = 5) -> int | None:
    """The first step from which ``k`` consecutive points are all above ``threshold``; None when no such run.

    >>> first_above([1, 2, 3, 4, 5, 6, 7], [0, 5, 0, 5, 5, 5, 5], 1, k=3)
    4
    >>> first_above([1, 2, 3], [5, 5, 0], 1, k=3) is None
    True
    """
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    streak = 0
    for i, v in enumerate(scores):
        streak = streak + 1 if v > threshold else 0
        if streak == k:
            return int(steps[i - k + 1])
    return None


def value_at(steps: Sequence[int], scores: Sequence[float], step: int) -> float | None:
    """The last point at or before ``step``; None when the curve starts after it or ends well before it (< 99 %).

    >>> value_at([100, 200, 300], [1.0, 2.0, 3.0], 250), value_at([100, 200], [1.0, 2.0], 1000)
    (2.0, None)
    """
    before = [v for s, v in zip(steps, scores, strict=True) if s <= step]
    return before[-1] if before and steps[-1] >= 0.99 * step else None
