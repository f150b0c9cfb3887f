"""The extrapolation benchmark: does a reward learned from ranked demos rank *unseen, better* behaviour correctly?

T-REX's central claim, measured the papers' way (hiwonjoon/ICML2019-TREX ``atari/LearnAtariReward.py`` and
``VisualizeAtariLearnedReward.py``, T-REX Fig. 3): the demonstrations are early checkpoints of one PPO run on the true
reward (one episode each); the unseen set is later checkpoints and the final agent of the *same* run (three episodes
each). A reward is trained on the demos alone and scores demos ∪ unseen. No RL is involved, so it runs on a CPU in
minutes per game. Neither paper published a correlation for these plots; these figures are ours.

Reported per (game, method, seed):

* Spearman and Pearson of predicted vs true return, per-frame mean (length-free) and σ sum (what PPO is paid), on
  all episodes and on the unseen ones alone;
* ``beyond_best_accuracy``: equal-length, progress-matched snippet accuracy on pairs whose better episode is unseen
  *and* better than the best demo (``fidelity.snippet_accuracy``);
* the contrast of what PPO would be paid on the unseen episodes: the share of σ(r) a constant explains and Δr at
  scoring steps (``fidelity.per_step_stats``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from trex_bench.core.errors import ConfigError
from trex_bench.core.io import atomic_write
from trex_bench.core.types import DemoSet
from trex_bench.reward.fidelity import correlation, episode_rewards, per_step_stats, snippet_accuracy

__all__ = [
    "ExtrapolationResult",
    "check_split",
    "demonstrator_run",
    "extrapolation_metrics",
    "figure3",
    "score_split",
    "write_stage",
    "summary_line",
    "update_table",
    "markdown_table",
]


@dataclass(frozen=True)
class ExtrapolationResult:
    """One reward net scored on a demo set and its unseen set.

    Attributes:
        game, method, seed: what was trained (``method`` ``released-trex`` etc. for the authors' nets; seed −1).
        n_demos, n_unseen, best_demo, n_beyond_best: the split.
        metrics: flat JSON-ready figures (see the module docstring).
        episodes: per episode: set (``demo``/``unseen``), checkpoint, true return, length and predictions.
    """

    game: str
    method: str
    seed: int
    n_demos: int
    n_unseen: int
    best_demo: float
    n_beyond_best: int
    metrics: dict[str, float | None]
    episodes: tuple[dict[str, Any], ...]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"episodes": list(self.episodes)}


def demonstrator_run(ds: DemoSet) -> str | None:
    """The PPO run a checkpoint demo set was recorded from (the folder holding its ``checkpoints/``), or None."""
    parts = ds.demonstrator.split("; ")
    if not all(p.startswith("sb3:") for p in parts):
        return None
    runs = set()
    for part in parts:
        p = Path(part.removeprefix("sb3:"))
        runs.add(str(p.parent.parent if p.parent.name == "checkpoints" else p.parent))
    return runs.pop() if len(runs) == 1 else None


def check_split(
    demos: DemoSet,
    unseen: DemoSet,
    demos_name: str = "demos",
    unseen_name: str = "unseen",
    need_ranking: bool = True,
) -> None:
    """Refuse an extrapolation split that does not measure extrapolation, with one line naming both sets.

    ``need_ranking=False`` for D-REX's demos (episodes of one checkpoint, ranked by noise, not by return).

    Raises:
        ValueError: another game or profile; another demonstrator run; overlapping episodes (the same reset seed and
            actions); an unseen set with no checkpoint later than the demos' latest (swapped sets); demos whose
            returns are all equal (no ranking to learn).
    """
    if demos.game != unseen.game:
        raise ConfigError(f"{unseen_name} holds {unseen.game} episodes, {demos_name} {demos.game}: one game only")
    if demos.profile_settings != unseen.profile_settings:
        raise ConfigError(
            f"{unseen_name} was recorded under env profile {unseen.profile!r}, {demos_name} under "
            f"{demos.profile!r} (or other settings): frames would differ"
        )
    run_d, run_u = demonstrator_run(demos), demonstrator_run(unseen)
    if run_d is not None and run_u is not None and run_d != run_u:
        raise ConfigError(
            f"{demos_name} come from the PPO run {run_d}, {unseen_name} from {run_u}: the papers' "
            "protocol takes both from one run"
        )
    seen = {(e.seed, e.reset_index, e.actions.tobytes()) for e in demos.episodes}
    shared = [i for i, e in enumerate(unseen.episodes) if (e.seed, e.reset_index, e.actions.tobytes()) in seen]
    if shared:
        raise ConfigError(
            f"{unseen_name} repeats {len(shared)} episode(s) of {demos_name} (e.g. episode {shared[0]}): "
            "the unseen set must be disjoint from the demos"
        )
    ck_d = [e.checkpoint for e in demos.episodes if e.checkpoint >= 0]
    ck_u = [e.checkpoint for e in unseen.episodes if e.checkpoint >= 0]
    if ck_d and ck_u and max(ck_u) <= max(ck_d):
        raise ConfigError(
            f"{unseen_name} holds checkpoints up to {max(ck_u)}, {demos_name} up to {max(ck_d)}: the unseen set is "
            "the run's later checkpoints (swapped --demos and --unseen?)"
        )
    if need_ranking and len(np.unique(demos.returns)) < 2:
        raise ConfigError(
            f"all {len(demos.episodes)} episodes of {demos_name} return {demos.returns[0]:g}: "
            "there is no ranking to learn from"
        )


def extrapolation_metrics(
    model: Any,
    demos: DemoSet,
    unseen: DemoSet,
    cache: Any,
    rng: np.random.Generator,
    snippet_len: int = 50,
    n_pairs: int = 2000,
    paid_sigmoid: bool = True,
) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """Score demos ∪ unseen with ``model``; ``cache`` holds the frames of ``merge_demo_sets([demos, unseen])``.
    ``paid_sigmoid``: whether PPO is paid σ(r); False: it is paid r, and the ``sigmoid_*`` metrics are of r (what
    PPO is paid: its sum over an episode, its constant share, ``fidelity.per_step_stats``).

    Returns:
        ``(metrics, episodes)``, as ``ExtrapolationResult`` holds them.
    """
    n_d = len(demos.episodes)
    episodes = [*demos.episodes, *unseen.episodes]
    returns = np.array([e.ret for e in episodes], dtype=np.float64)
    rewards = episode_rewards(model, cache, np.array([e.length for e in episodes]))
    preds = {
        "mean": np.array([r.mean() for r in rewards]),
        "sigmoid_sum": np.array([(1.0 / (1.0 + np.exp(-r)) if paid_sigmoid else r).sum() for r in rewards]),
        "sum": np.array([r.sum() for r in rewards]),
    }
    is_unseen = np.arange(len(episodes)) >= n_d
    best = float(demos.returns.max())
    metrics: dict[str, float | None] = {}
    for name in ("mean", "sigmoid_sum"):
        for where, mask in (("all", np.ones_like(is_unseen)), ("unseen", is_unseen)):
            for kind in ("spearman", "pearson"):
                metrics[f"{kind}_{name}_{where}"] = correlation(kind, preds[name][mask], returns[mask])
    # Snippet pairs whose better side is an unseen episode better than every demo, the other side any worse episode.
    beyond = np.flatnonzero(is_unseen & (returns > best))
    pairs = [(i, j) for j in beyond for i in range(len(episodes)) if returns[i] < returns[j]]
    if pairs:
        lo, hi = (np.array(x) for x in zip(*pairs, strict=True))
        metrics["beyond_best_accuracy"] = snippet_accuracy(
            rewards, returns, snippet_len, n_pairs, rng, candidates=(lo, hi)
        )["accuracy"]
    else:
        metrics["beyond_best_accuracy"] = None
    metrics["snippet_accuracy_all"] = snippet_accuracy(rewards, returns, snippet_len, n_pairs, rng)["accuracy"]
    contrast = per_step_stats(
        [rewards[i] for i in np.flatnonzero(is_unseen)],
        [episodes[i].rewards for i in np.flatnonzero(is_unseen)],
        paid_sigmoid,
    )
    metrics["sigmoid_constant_share_unseen"] = contrast["sigmoid_constant_share"]
    metrics["delta_at_scoring_steps_unseen"] = contrast["delta_at_scoring_steps"]
    metrics["delta_std_unseen"] = contrast["delta_std"]
    rows = [
        {
            "set": "unseen" if is_unseen[i] else "demo",
            "checkpoint": int(e.checkpoint),
            "true_return": float(e.ret),
            "length": int(e.length),
            **{f"pred_{k}": float(v[i]) for k, v in preds.items()},
        }
        for i, e in enumerate(episodes)
    ]
    return metrics, rows


def figure3(result: ExtrapolationResult, path: str | Path, pred: str = "pred_mean") -> Path:
    """T-REX Fig. 3: predicted return (min–max rescaled) against true return; demos red, unseen blue.

    The default prediction is the mean per-frame reward, the length-free one the title's Spearman is of: the summed
    raw r of a net whose per-frame r is mostly negative falls with episode length (PAPERS.md pitfalls).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    eps = result.episodes
    x = np.array([e["true_return"] for e in eps])
    y = np.array([e[pred] for e in eps])
    y = (y - y.min()) / (y.max() - y.min()) if y.max() > y.min() else np.zeros_like(y)
    unseen = np.array([e["set"] == "unseen" for e in eps])
    fig = Figure(figsize=(4.5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.scatter(x[~unseen], y[~unseen], c="tab:red", edgecolors="k", linewidths=0.3, label="demos (ranked)")
    ax.scatter(x[unseen], y[unseen], c="tab:blue", edgecolors="k", linewidths=0.3, label="unseen, later checkpoints")
    ax.axvline(result.best_demo, color="tab:red", lw=0.8, ls="--")
    rho = result.metrics.get("spearman_mean_all")
    ax.set_title(
        f"{result.game}, {result.method} (seed {result.seed}): Spearman "
        f"{'n/a' if rho is None else f'{rho:.2f}'} (mean r)",
        fontsize=9,
    )
    ax.set_xlabel("true return")
    ax.set_ylabel(f"predicted ({pred.removeprefix('pred_')} r), min-max rescaled")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, format="png"), suffix=".png")
    return path


METRIC_COLUMNS = (
    "spearman_mean_all",
    "spearman_mean_unseen",
    "spearman_sigmoid_sum_all",
    "pearson_mean_all",
    "beyond_best_accuracy",
    "snippet_accuracy_all",
    "sigmoid_constant_share_unseen",
    "delta_at_scoring_steps_unseen",
)


def score_split(
    model: Any,
    method: str,
    seed: int,
    demos: DemoSet,
    unseen: DemoSet,
    cache_dir: str | Path | None = None,
    rng_seed: int = 0,
    paid_sigmoid: bool = True,
) -> ExtrapolationResult:
    """Score one reward model on a checked split (``check_split``) and return its ``ExtrapolationResult``
    (``paid_sigmoid``: whether PPO is paid σ(r), as T-REX and D-REX; the preference loop pays r)."""
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import merge_demo_sets

    check_split(demos, unseen)
    game = getattr(model, "game", None)
    if game is not None and getattr(game, "id", game) != demos.game:
        raise ConfigError(f"the reward model is for {getattr(game, 'id', game)}, the demos are {demos.game}")
    cache = FrameCache(merge_demo_sets([demos, unseen]), cache_dir)
    rng = np.random.default_rng(rng_seed)
    metrics, rows = extrapolation_metrics(model, demos, unseen, cache, rng, paid_sigmoid=paid_sigmoid)
    best = float(demos.returns.max())
    return ExtrapolationResult(
        demos.game,
        method,
        seed,
        len(demos.episodes),
        len(unseen.episodes),
        best,
        int(sum(e.ret > best for e in unseen.episodes)),
        metrics,
        tuple(rows),
    )


def write_stage(
    model_dir: Path,
    method: str,
    seed: int,
    demos: DemoSet,
    unseen: DemoSet,
    out: Path,
    cache_dir: str | Path | None = None,
) -> ExtrapolationResult:
    """A reward-model folder scored on a split: ``out/extrapolation.json`` and ``out/figure3.png`` (pipeline stage)."""
    from trex_bench.core.io import write_json
    from trex_bench.reward.net import load_model

    model, _ = load_model(model_dir, game=demos.game)
    result = score_split(model, method, seed, demos, unseen, cache_dir)
    write_json(out / "extrapolation.json", result.to_json())
    figure3(result, out / "figure3.png")
    return result


def summary_line(ex: dict[str, Any], unseen_dir: str | Path) -> str:
    """One line of an ``extrapolation.json`` for a log."""
    m = ex["metrics"]

    def f(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.2f}"

    return (
        f"extrapolation on {unseen_dir} ({ex['n_unseen']} unseen episodes, {ex['n_beyond_best']} beyond the best "
        f"demo {ex['best_demo']:g}): Spearman of mean r with the return {f(m['spearman_mean_all'])} on all, "
        f"{f(m['spearman_mean_unseen'])} on the unseen; snippet accuracy beyond the best demo "
        f"{f(m['beyond_best_accuracy'])}"
    )


def update_table(results: list[ExtrapolationResult], csv_path: str | Path, md_path: str | Path) -> None:
    """Merge ``results`` into the per-seed CSV (a (game, method, seed) row is replaced) and regenerate the markdown
    table: games × methods, mean ± std over seeds."""
    import pandas as pd
    from filelock import FileLock

    csv_path, md_path = Path(csv_path), Path(md_path)
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(csv_path) + ".lock", timeout=120):  # games run side by side share one table
        _merge(results, csv_path, md_path, pd)


def _merge(results: list[ExtrapolationResult], csv_path: Path, md_path: Path, pd: Any) -> None:
    new = pd.DataFrame(
        [
            {
                "game": r.game,
                "method": r.method,
                "seed": r.seed,
                "n_demos": r.n_demos,
                "n_unseen": r.n_unseen,
                "best_demo": r.best_demo,
                "n_beyond_best": r.n_beyond_best,
                **{k: r.metrics.get(k) for k in METRIC_COLUMNS},
            }
            for r in results
        ]
    )
    if csv_path.exists():
        old = pd.read_csv(csv_path)
        keys = set(zip(new["game"], new["method"], new["seed"], strict=True))
        old = old[[k not in keys for k in zip(old["game"], old["method"], old["seed"], strict=True)]]
        new = pd.concat([old, new], ignore_index=True)
    new = new.sort_values(["game", "method", "seed"]).reset_index(drop=True)
    atomic_write(csv_path, lambda p: new.to_csv(p, index=False), suffix=".csv")
    atomic_write(md_path, lambda p: p.write_text(markdown_table(new)), suffix=".md")


def markdown_table(df: Any) -> str:
    """The extrapolation table from the per-seed CSV's frame."""
    heads = {
        "spearman_mean_all": "ρ mean r, all",
        "spearman_mean_unseen": "ρ mean r, unseen",
        "spearman_sigmoid_sum_all": "ρ σ-sum, all",
        "beyond_best_accuracy": "snippet acc. beyond best demo",
        "sigmoid_constant_share_unseen": "σ(r) constant share (unseen)",
    }
    lines = [
        "# Reward extrapolation (T-REX's protocol: early PPO checkpoints as demos, later ones unseen)",
        "",
        "Generated by `trex-bench extrapolation` from `results/tables/extrapolation.csv`; mean ± std over seeds "
        "(`released-*`: the authors' nets, one row). ρ = Spearman of predicted vs true return per episode: "
        "*mean r* ranks episodes by the net's mean per-frame reward (length-free), *σ-sum* by the sum of σ(r) over "
        "the episode (what PPO is paid; long episodes score high whatever r is). *Snippet acc. beyond best demo*: "
        "equal-length, progress-matched snippet pairs whose better episode is unseen and beats the best demo, the "
        "share the net orders right (0.5 = chance). *σ(r) constant share*: mean(σ(r))² / mean(σ(r)²) over the "
        "unseen episodes' frames, the share of the paid reward a constant explains (1 = a pure survival bonus); "
        "*prefs-<budget>* rows score a preference loop's final reward (`--prefs-run`), which pays PPO r itself, "
        "normalised: their σ-sum is Σ r and their share mean(r)² / mean(r²).",
        "",
        "| game | method | seeds | demos / unseen (beyond best) | " + " | ".join(heads.values()) + " |",
        "|" + "---|" * (4 + len(heads)),
    ]
    for (game, method), g in df.groupby(["game", "method"], sort=True):
        cells = []
        for col in heads:
            v = g[col].astype(float).dropna()
            cells.append("n/a" if v.empty else f"{v.mean():.2f}" + (f" ± {v.std(ddof=1):.2f}" if len(v) > 1 else ""))
        split = f"{int(g['n_demos'].iloc[0])} / {int(g['n_unseen'].iloc[0])} ({int(g['n_beyond_best'].iloc[0])})"
        lines.append(f"| {game} | {method} | {len(g)} | {split} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
