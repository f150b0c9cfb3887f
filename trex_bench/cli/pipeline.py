"""``trex-bench pipeline``: one command from demos to a leaderboard row."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trex_bench.budgets import BUDGETS
from trex_bench.cli_util import add_ppo_run_options, positive_int, seed, torch_device
from trex_bench.config import METHODS, RANKINGS
from trex_bench.types import ENV_PROFILES, REWARD_TRANSFORMS

# The options that make the experiment (with --config, the file gives them all) and their defaults.
_EXPERIMENT = dict(
    game=None, method=None, budget=None, seed=0, demos=None, unseen=None, ranking="return", human_labels=None,
    transform="sigmoid", episodes=None, profile="paper", kl_to=None, kl_beta=0.0, precision="fp32", max_seconds=None,
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pipeline",
        help="demos → ranking → reward net → PPO → evaluation → leaderboard row",
        description="Run every stage for one game, method, budget and seed into one run folder; finished stages "
        "are reused with --resume; the final summary compares the agent with the best and average demo and one "
        "row is appended to the leaderboard.",
        epilog="Example: trex-bench pipeline breakout --method trex --budget quick --seed 0  "
        "(or: trex-bench pipeline --config runs/breakout-trex-quick-s0/config.json --out OTHER)",
    )
    p.add_argument("game", nargs="?", help="game id, e.g. breakout (not with --config)")
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="run the experiment of a config.json (as written into every run folder) instead of the options below",
    )
    p.add_argument("--method", help=" | ".join(METHODS))
    p.add_argument("--budget", choices=list(BUDGETS), help=" | ".join(BUDGETS) + " (gpu: one GPU + 16 cores, ~10 min)")
    p.add_argument("--profile", choices=list(ENV_PROFILES), default="paper", help="env profile (default: paper)")
    p.add_argument("--seed", type=seed, default=0, help="seed of every stage (default 0)")
    p.add_argument(
        "--demos", type=Path, default=None, help="demo set (default: the committed demos/<game>/scripted-noise)"
    )
    p.add_argument(
        "--unseen",
        type=Path,
        default=None,
        help="later checkpoints of the demos' PPO run: score the reward's extrapolation before PPO "
        "(default: the demo set's sibling ppo-later, if any)",
    )
    p.add_argument("--ranking", default="return", choices=list(RANKINGS), help="T-REX's ranking (default: return)")
    p.add_argument(
        "--human-labels",
        type=Path,
        default=None,
        help="T-REX MTurk CSV (A,B,label,…) for --ranking human; A/B are the demo set's checkpoint numbers",
    )
    p.add_argument(
        "--transform",
        default="sigmoid",
        choices=list(REWARD_TRANSFORMS),
        help="learned-reward transform for PPO: sigmoid (the papers) | raw | normalized (divided by a running return "
        "std) | delta (potential-based shaping r̂(s′) − r̂(s), an experiment)",
    )
    p.add_argument("--episodes", type=positive_int, default=None, help="evaluation games (default: 30; smoke: 2)")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="run folder (default: runs/<game>-<method>[-<options>]-<budget>-s<seed>, every non-default option named)",
    )
    p.add_argument("--resume", action="store_true", help="reuse the finished stages of an existing run folder")
    p.add_argument("--leaderboard", type=Path, default=Path("results/leaderboard.csv"), help="CSV to append the row to")
    p.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="frame cache folder (default: $TREX_BENCH_CACHE or ~/.cache/trex_bench)",
    )
    p.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    p.add_argument("--kl-to", type=Path, default=None, help="BC policy folder: add the RLHF KL penalty to PPO's reward")
    p.add_argument("--kl-beta", type=float, default=0.0, help="β of r − β·(log π_θ(a|s) − log π_BC(a|s))")
    add_ppo_run_options(p)
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def experiment(args: argparse.Namespace) -> Any:
    """The ``ExperimentConfig`` of the command line: from ``--config``, or resolved from the options."""
    from trex_bench.config import ExperimentConfig
    from trex_bench.errors import ConfigError
    from trex_bench.pipeline import PipelineConfig

    if args.config is not None:
        given = [k for k, default in _EXPERIMENT.items() if getattr(args, k) != default]
        if given:
            raise ConfigError(f"--config gives the whole experiment; drop {', '.join(given)}")
        return ExperimentConfig.read(args.config).replace(device=args.device)
    missing = [k for k in ("game", "method", "budget") if getattr(args, k) is None]
    if missing:
        raise ConfigError(f"pipeline needs {', '.join(missing)} (or --config FILE)")
    return PipelineConfig(
        game=args.game,
        method=args.method,
        budget=args.budget,
        seed=args.seed,
        demos=args.demos,
        ranking=args.ranking,
        human_labels=args.human_labels,
        transform=args.transform,
        eval_episodes=args.episodes,
        profile=args.profile,
        device=args.device,
        kl_to=args.kl_to,
        kl_beta=args.kl_beta,
        max_seconds=args.max_seconds,
        precision=args.precision,
        unseen=args.unseen,
    ).resolve()


def run(args: argparse.Namespace) -> int:
    from trex_bench.pipeline import run_pipeline

    summary = run_pipeline(
        experiment(args),
        out=args.out,
        resume=args.resume,
        leaderboard=args.leaderboard,
        progress=not args.no_progress,
        cache_dir=args.cache,
        log=lambda line: print(line, flush=True),
    )
    print_summary(summary)
    return 0


def print_summary(summary: dict[str, Any]) -> None:
    """The run's result against the demos, as the README shows it."""
    r = summary["row"]
    print()
    print(f"== {r['game']} · {r['method']} · budget {r['budget']} · seed {r['seed']} ==")
    print(
        f"agent: {r['mean']:.1f} ± {r['std']:.1f} over {r['n_episodes']} full games "
        f"(min {r['min']:g}, max {r['max']:g})"
    )
    verdict = (
        "beats"
        if r["beats_best_demo"]
        else ("beats the average but not the best" if r["mean"] > r["avg_demo"] else "does not beat")
    )
    print(f"demos: best {r['best_demo']:g}, average {r['avg_demo']:.1f} → the agent {verdict} demo")
    if r["fidelity_spearman"] is not None:
        print(
            f"reward fidelity: Spearman {r['fidelity_spearman']:.2f} (mean per-frame reward vs true return), "
            f"snippet pair accuracy {r['pair_accuracy']:.2f}"
        )
    hn = r["human_normalized"]
    print(f"human-normalised: {hn:.3f}" if hn is not None else "human-normalised: n/a")
    if "leaderboard_note" in summary:
        print(f"no row appended: the run {summary['leaderboard_note']}")
    print(
        f"wall time {r['wall_s']:.0f} s; run folder {summary['run_folder']}"
        + (f"; leaderboard {summary['leaderboard']}" if "leaderboard" in summary else "")
    )
