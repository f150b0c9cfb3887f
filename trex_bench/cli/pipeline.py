"""``trex-bench pipeline``: one command from demos to a leaderboard row."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from trex_bench.cli.options import add_config_options, config_defaults, config_kwargs
from trex_bench.cli.util import positive_seconds
from trex_bench.experiment.options import PipelineConfig

# With --config the file gives the whole experiment; --device may still say where it runs.
_RUN_WHERE = ("device",)


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
    p.add_argument(
        "--config",
        type=Path,
        default=None,
        help="run the experiment of a config.json (as written into every run folder) instead of the options below",
    )
    add_config_options(p, PipelineConfig)  # every experiment option, from PipelineConfig's fields
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
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument(
        "--label-timeout",
        type=positive_seconds,
        default=600.0,
        metavar="S",
        help="--labeler human: seconds to wait for a person's answers on `trex-bench label serve RUN` before the run "
        "pauses (rerun the same command with --resume to go on; no answer is lost) (default 600)",
    )
    p.set_defaults(func=run)


def experiment(args: argparse.Namespace) -> Any:
    """The ``ExperimentConfig`` of the command line: from ``--config``, or resolved from the options."""
    from trex_bench.core.errors import ConfigError
    from trex_bench.experiment.config import ExperimentConfig

    if args.config is not None:
        defaults = config_defaults(PipelineConfig)
        given = [k for k, default in defaults.items() if k not in _RUN_WHERE and getattr(args, k) != default]
        if given:
            raise ConfigError(f"--config gives the whole experiment; drop {', '.join(given)}")
        exp = ExperimentConfig.read(args.config)  # every value checked as the same option would be
        given_device = any(a == "--device" or a.startswith("--device=") for a in getattr(args, "argv", []))
        return exp.replace(device=args.device) if given_device or args.device != defaults["device"] else exp
    missing = [k for k in ("game", "method", "budget") if getattr(args, k) is None]
    if missing:
        raise ConfigError(f"pipeline needs {', '.join(missing)} (or --config FILE)")
    return PipelineConfig(**config_kwargs(args, PipelineConfig)).resolve()


def run(args: argparse.Namespace) -> int:
    from trex_bench.experiment.pipeline import run_pipeline

    summary = run_pipeline(
        experiment(args),
        out=args.out,
        resume=args.resume,
        leaderboard=args.leaderboard,
        progress=not args.no_progress,
        cache_dir=args.cache,
        log=lambda line: print(line, flush=True),
        label_timeout=args.label_timeout,
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
