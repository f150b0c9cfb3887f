"""``trex-bench bc train``: behaviour cloning of a demo set (D-REX's clone, the RLHF "SFT" policy)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from trex_bench.cli.util import seed, torch_device
from trex_bench.experiment.budgets import BUDGETS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bc",
        help="behaviour cloning of demonstrations",
        description="Clone a demo set's demonstrator with a Nature-DQN CNN classifier (D-REX).",
        epilog="Example: trex-bench bc train breakout --demos demos/breakout/drex-demos --budget quick --seed 0 "
        "--out bc",
    )
    bs = p.add_subparsers(dest="bc_command", metavar="SUBCOMMAND", required=True)

    t = bs.add_parser(
        "train",
        help="train a BC policy on a demo set",
        description="Cross-entropy on (observation, action) pairs of the demos (Adam 1e-4, batch 32, D-REX), held-out "
        "split by episode, early stopping that keeps the best weights; writes model.safetensors + card.json. "
        "Use the result as a demonstrator with `demos collect --demonstrator bc:DIR`.",
        epilog="Example: trex-bench bc train breakout --demos demos/breakout/ppo-checkpoints --budget quick --seed 0 "
        "--out runs/breakout-bc-0",
    )
    t.add_argument("game", help="game id, e.g. breakout (the demo set must be of this game)")
    t.add_argument("--demos", type=Path, required=True, help="demo set folder (at least 2 episodes)")
    t.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="quick",
        help="training budget (default: quick)",
    )
    t.add_argument("--seed", type=seed, required=True, help="seed of the split, batch order and init")
    t.add_argument("--out", type=Path, required=True, help="BC model folder to write")
    t.add_argument("--overwrite", action="store_true", help="write into --out even if it holds something else")
    t.add_argument("--cache", type=Path, default=None, help="frame cache folder (default: the package cache)")
    t.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from trex_bench.bc.folder import summary_line, train_command
    from trex_bench.core.io import check_cache_dir, read_json
    from trex_bench.experiment.budgets import bc_config

    check_cache_dir(args.cache)

    out = train_command(
        args.game,
        args.demos,
        args.out,
        config=bc_config(args.budget),
        budget=args.budget,
        seed=args.seed,
        cache_dir=args.cache,
        device=args.device,
        progress=not args.no_progress,
        created_by=shlex.join(args.argv),
        overwrite=args.overwrite,
    )
    print(summary_line(read_json(out / "card.json")["metrics"]))
    print(f"wrote BC policy to {out}")
    return 0
