"""Reward fidelity: does a learned r(s) order episodes and snippets the way the true return does?

T-REX (Brown et al. 2019, Fig. 3/6) and D-REX (Brown et al. 2019, Fig. 3) judge a reward net by the correlation of
its predicted return with the true return on held-out episodes; SSRR (Chen et al. 2020) reports the same
correlation. Two confounds make that number easy to flatter (PAPERS.md "Pitfalls"):

* the summed raw r is dominated by episode length (per-frame r of the released nets is mostly negative, so a
  longer episode sums to a lower score whatever it shows), and sigmoid(r) > 0 is a survival bonus;
* length itself often correlates with return.

So the report gives three per-episode predictions (raw sum, sigmoid sum: what the RL agent is paid, and the mean
per frame: length-free), the rank and linear correlation of each with the true return, the correlation of length
with the return and with the raw sum, and a snippet test that removes length altogether: pairwise accuracy of
equal-length snippets taken at the same fraction of their episodes (the progress-matched pairs T-REX trains on).

A ``per_step`` block says what the reward pays step by step: how much of σ(r) is a constant (a survival bonus; the
constant-reward control measures what that alone earns), whether r tracks the score so far (a progress potential),
and how r changes at the steps that score (what the ``delta`` transform pays).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from scipy import stats

from trex_bench.core.errors import ConfigError
from trex_bench.core.io import atomic_write, versions, write_json
from trex_bench.core.types import DemoSet

__all__ = [
    "correlation",
    "episode_rewards",
    "snippet_accuracy",
    "fidelity_report",
    "per_step_stats",
    "scatter_plot",
    "score_command",
    "default_report_path",
    "PREDICTIONS",
]

PREDICTIONS = ("pred_sum", "pred_sigmoid_sum", "pred_mean")  # the three per-episode predicted returns


class _Scorer(Protocol):
    """Anything with a batched, gradient-free per-frame reward (``RewardNet``, ``RewardEnsemble``, a test fake)."""

    def per_frame(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor: ...


class _Stacks(Protocol):
    """Anything that builds observations from (episode, step) indices (``FrameCache``, a test fake)."""

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray: ...


def correlation(kind: str, x: np.ndarray, y: np.ndarray) -> float | None:
    """Spearman or Pearson correlation; None when undefined (a constant input), so the JSON stays valid."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy's ConstantInputWarning: reported as None instead
        r = stats.spearmanr(x, y).statistic if kind == "spearman" else stats.pearsonr(x, y).statistic
    r = float(r)
    return None if not np.isfinite(r) else r


def episode_rewards(model: _Scorer, cache: _Stacks, lengths: np.ndarray, batch_size: int = 512) -> list[np.ndarray]:
    """Per-frame r of observations 1..T of every episode, float64 [T] each.

    Observation 0 is the zero-filled reset stack that no step produced; observations 1..T are what the agent saw
    after each of its T steps, i.e. the states a reward wrapper scores during RL (the released code scores the
    observation returned by ``step``). So an episode of T steps contributes exactly T rewards.
    """
    out = []
    for e, T in enumerate(lengths):
        r = []
        for s in range(1, int(T) + 1, batch_size):  # chunked: a whole episode of stacks can be ~20 MB
            t = np.arange(s, min(s + batch_size, int(T) + 1))
            r.append(model.per_frame(torch.from_numpy(cache.stacks(np.full(len(t), e), t)), batch_size).numpy())
        out.append(np.concatenate(r).astype(np.float64))
    return out


def snippet_accuracy(
    rewards: list[np.ndarray],
    returns: np.ndarray,
    snippet_len: int,
    n_pairs: int,
    rng: np.random.Generator,
    candidates: tuple[np.ndarray, np.ndarray] | None = None,
) -> dict[str, Any]:
    """Pairwise accuracy on equal-length snippets at matched progress between episodes of different return.

    Each pair draws two episodes with different true return and one progress fraction p ~ U[0, 1); both snippets
    have length L = min(snippet_len, T_i, T_j) and start at ``round(p · (T − L))`` of their episode, so neither
    length nor "how far into the game" can tell them apart. The label is the episodes' true-return order (the
    T-REX assumption that a better episode's snippets are better); a tie in predicted return counts one half.
    ``candidates`` (episode index arrays) restricts the pairs drawn from (default: every pair of episodes).
    """
    ii, jj = candidates if candidates is not None else np.triu_indices(len(returns), k=1)
    keep = returns[ii] != returns[jj]
    ii, jj = ii[keep], jj[keep]
    pick = rng.integers(0, len(ii), size=n_pairs)
    a, b = ii[pick], jj[pick]
    lengths = np.array([len(r) for r in rewards])
    L = np.minimum(snippet_len, np.minimum(lengths[a], lengths[b]))
    p = rng.random(n_pairs)
    start_a = np.rint(p * (lengths[a] - L)).astype(np.int64)
    start_b = np.rint(p * (lengths[b] - L)).astype(np.int64)
    # Snippet sum = difference of two look-ups in the episodes' prefix sums, all pairs at once.
    csum = np.concatenate([np.concatenate([[0.0], np.cumsum(r)]) for r in rewards])
    off = np.concatenate([[0], np.cumsum(lengths + 1)[:-1]])
    ra = csum[off[a] + start_a + L] - csum[off[a] + start_a]
    rb = csum[off[b] + start_b + L] - csum[off[b] + start_b]
    truth, pred = np.sign(returns[b] - returns[a]), np.sign(rb - ra)
    acc = float(np.mean(np.where(pred == 0, 0.5, pred == truth)))
    return {"accuracy": acc, "n_pairs": int(n_pairs), "snippet_len": int(snippet_len), "min_len_used": int(L.min())}


def per_step_stats(
    rewards: list[np.ndarray], true_rewards: list[np.ndarray], paid_sigmoid: bool = True
) -> dict[str, Any]:
    """Step-level diagnostics of per-frame rewards ``rewards[e][t]`` (r of observation t + 1, as ``episode_rewards``).

    ``paid_sigmoid``: PPO is paid σ(r) (T-REX, D-REX); False: it is paid r itself (the preference loop's normalised
    reward), and the constant share is of r.

    Returns (``None`` where a statistic is undefined):
        ``sigmoid_constant_share``: mean(p)² / mean(p²) over all steps for the paid reward p (σ(r), or r), the share
            of its second moment a constant explains (1: p is a pure survival bonus).
        ``spearman_vs_score_so_far``: Spearman of r(s_t) with the true score after step t, steps pooled (≈ 1: r is a
            progress potential, as our Breakout nets are).
        ``delta_at_scoring_steps`` / ``delta_elsewhere`` / ``delta_std``: mean r(s_t) − r(s_{t−1}) at steps whose
            true reward is > 0 and at the others, and its std over all steps (the first step of an episode has no
            Δ): the signal-to-noise of ``--transform delta``.
    """
    r = np.concatenate(rewards)
    sig = 1.0 / (1.0 + np.exp(-r)) if paid_sigmoid else r
    so_far = np.concatenate([np.cumsum(np.asarray(t, np.float64)) for t in true_rewards])
    delta = np.concatenate([np.diff(x) for x in rewards])
    scoring = np.concatenate([np.asarray(t)[1:] > 0 for t in true_rewards])

    def mean(x: np.ndarray) -> float | None:
        return float(x.mean()) if len(x) else None

    return {
        "sigmoid_constant_share": float(sig.mean() ** 2 / np.mean(sig**2)) if np.any(sig) else None,
        "spearman_vs_score_so_far": correlation("spearman", r, so_far),
        "delta_at_scoring_steps": mean(delta[scoring]),
        "delta_elsewhere": mean(delta[~scoring]),
        "delta_std": float(delta.std()) if len(delta) else None,
    }


def fidelity_report(
    model: _Scorer,
    demos: DemoSet,
    cache: _Stacks | None = None,
    snippet_len: int = 50,
    n_pairs: int = 2000,
    rng: np.random.Generator | None = None,
) -> dict[str, Any]:
    """Score every episode of ``demos`` with ``model`` and measure how well it tracks the true return.

    Args:
        model: a reward model with ``per_frame`` (its ``game``, when it has one, must be the demos' game).
        demos: the episodes to score; they need at least two distinct true returns.
        cache: their replayed frames (a ``FrameCache``); built in the default cache folder when None.
        snippet_len: snippet length for the pairwise test (T-REX §5.2 samples 50–100; 50 keeps short episodes in).
        n_pairs: snippet pairs drawn for the pairwise test.
        rng: randomness of the snippet pairs; ``default_rng(0)`` when None so the report is reproducible.

    Returns:
        A JSON-ready dict: ``episodes`` (per episode: true return, length, noise, checkpoint, truncated and the
        three predictions), ``correlations`` (Spearman and Pearson of each prediction against the true return),
        ``length_confound`` (Spearman of length vs true return, raw sum vs length, mean per frame vs length) and
        ``pairwise`` (snippet accuracy).

    Raises:
        ValueError: fewer than two distinct true returns, a model of another game, or bad sizes.
    """
    _check_inputs(model, demos, snippet_len, n_pairs)
    if cache is None:
        from trex_bench.demos.frames import FrameCache

        cache = FrameCache(demos)
    rng = rng if rng is not None else np.random.default_rng(0)
    returns, lengths = demos.returns, demos.lengths
    rewards = episode_rewards(model, cache, lengths)
    preds = {
        "pred_sum": np.array([r.sum() for r in rewards]),
        # what PPO is paid per step in both papers: sigmoid(r(s)) (PAPERS.md "RL on the learned reward")
        "pred_sigmoid_sum": np.array([(1.0 / (1.0 + np.exp(-r))).sum() for r in rewards]),
        "pred_mean": np.array([r.mean() for r in rewards]),
    }
    return {
        "kind": "fidelity_report",
        "game": demos.game,
        "profile": demos.profile,
        "demos_hash": demos.content_hash(),
        "demonstrator": demos.demonstrator,
        "n_episodes": len(returns),
        "n_distinct_returns": int(len(np.unique(returns))),
        "scored_observations": (
            "1..T of each episode (the observation after each agent step; the reset stack is not scored)"
        ),
        "episodes": _episode_rows(demos, preds),
        "correlations": {
            k: {"spearman": correlation("spearman", v, returns), "pearson": correlation("pearson", v, returns)}
            for k, v in preds.items()
        },
        "length_confound": {
            "spearman_length_vs_return": correlation("spearman", lengths, returns),
            "spearman_sum_vs_length": correlation("spearman", preds["pred_sum"], lengths),
            "spearman_mean_vs_length": correlation("spearman", preds["pred_mean"], lengths),
        },
        "pairwise": snippet_accuracy(rewards, returns, snippet_len, n_pairs, rng),
        "per_step": per_step_stats(rewards, [ep.rewards for ep in demos.episodes]),
        "versions": versions(),
    }


def _check_inputs(model: _Scorer, demos: DemoSet, snippet_len: int, n_pairs: int) -> None:
    game = getattr(model, "game", None)
    if game is not None and getattr(game, "id", game) != demos.game:
        raise ConfigError(f"reward model is for {getattr(game, 'id', game)}, the demos are {demos.game}")
    returns = demos.returns
    if len(np.unique(returns)) < 2:
        raise ConfigError(
            f"fidelity needs episodes with at least 2 distinct true returns; all {len(returns)} episodes of this "
            f"{demos.game} demo set return {returns[0]:g} (collect at several noise levels or checkpoints)"
        )
    if snippet_len < 1 or n_pairs < 1:
        raise ConfigError(f"snippet_len and n_pairs must be >= 1, got {snippet_len} and {n_pairs}")


def _episode_rows(demos: DemoSet, preds: dict[str, np.ndarray]) -> list[dict[str, Any]]:
    """Per episode: its true return, length, noise, checkpoint, truncation and the three predictions."""
    return [
        {
            "index": i,
            "true_return": float(demos.returns[i]),
            "length": int(demos.lengths[i]),
            "noise": float(ep.noise),
            "checkpoint": int(ep.checkpoint),
            "truncated": bool(ep.truncated),
            **{k: float(v[i]) for k, v in preds.items()},
        }
        for i, ep in enumerate(demos.episodes)
    ]


def scatter_plot(report: dict[str, Any], path: str | Path) -> Path:
    """PNG of mean per-frame predicted reward vs true return, one point per episode, coloured by noise level.

    Coloured by checkpoint instead when all episodes share one noise level. Uses matplotlib's Agg canvas directly
    (no global backend switch) and writes atomically.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    eps = report["episodes"]
    x = np.array([e["true_return"] for e in eps])
    y = np.array([e["pred_mean"] for e in eps])
    noise = np.array([e["noise"] for e in eps])
    by, c = (
        ("noise ε", noise) if len(np.unique(noise)) > 1 else ("checkpoint", np.array([e["checkpoint"] for e in eps]))
    )
    fig = Figure(figsize=(5, 4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    sc = ax.scatter(x, y, c=c, cmap="viridis", edgecolors="k", linewidths=0.3)
    fig.colorbar(sc, ax=ax, label=by)
    rho = report["correlations"]["pred_mean"]["spearman"]
    ax.set_title(
        f"{report['game']}: mean r per frame vs return (Spearman {rho if rho is None else f'{rho:.2f}'})", fontsize=9
    )
    ax.set_xlabel("true return")
    ax.set_ylabel("predicted reward, mean per frame")
    fig.tight_layout()
    path = Path(path)
    atomic_write(path, lambda p: fig.savefig(p, format="png"), suffix=".png")
    return path


def default_report_path(model_dir: str | Path, demos_hash: str) -> Path:
    """Where ``score_command`` writes a report without ``out_json``: in the model folder, named by the demo set."""
    return Path(model_dir) / f"fidelity-{demos_hash}.json"


def score_command(
    model_dir: str | Path,
    demos_dir: str | Path,
    out_json: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Score a reward-model folder on a demo set: write the fidelity JSON and its scatter PNG, return the report.

    Args:
        model_dir: a folder written by ``save_model`` / ``import_official``.
        demos_dir: a demo-set folder.
        out_json: where to write the report; default ``<model_dir>/fidelity-<demos hash>.json``. The PNG goes
            next to it with the same stem.
        cache_dir: frame-cache root (default ``$TREX_BENCH_CACHE`` or ``~/.cache/trex_bench``).

    Raises:
        ValueError: the model is for another game than the demos, ``out_json`` (or its PNG) holds another kind of
            file (``core.io.claim_output``), or anything ``fidelity_report`` refuses.
    """
    from trex_bench.core.io import claim_output, read_json
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.net import load_model

    model_dir, demos_dir = Path(model_dir), Path(demos_dir)
    demos = load_demos(demos_dir)
    out = Path(out_json) if out_json is not None else default_report_path(model_dir, demos.content_hash())
    claim_output(out, "fidelity")  # before any scoring: never over another kind of file (a card, a CSV)
    claim_output(out.with_suffix(".png"), "plot")
    card_path = model_dir / "card.json"
    if card_path.exists():  # a clear message before load_model's generic one
        model_game = read_json(card_path).get("game")
        if model_game is not None and model_game != demos.game:
            raise ConfigError(
                f"{model_dir} is a reward model for {model_game}, but {demos_dir} holds {demos.game} demos"
            )
    model, card = load_model(model_dir, game=demos.game)
    if card.get("profile") not in (None, demos.profile):
        warnings.warn(
            f"{model_dir} was trained under env profile {card.get('profile')!r}, the demos use {demos.profile!r}: "
            "frames may differ from what the net saw",
            stacklevel=2,
        )
    report = fidelity_report(model, demos, FrameCache(demos, cache_dir))
    report["model_dir"] = str(model_dir)
    report["demos_dir"] = str(demos_dir)
    report["model_card"] = {
        k: card.get(k) for k in ("arch", "ensemble_size", "profile", "source", "which", "source_repo", "source_commit")
    }
    report["kind"] = "fidelity"
    report["plot"] = out.with_suffix(".png").name  # next to the JSON (a pipeline stage renames its folder)
    write_json(out, report)
    scatter_plot(report, out.with_suffix(".png"))
    return report
