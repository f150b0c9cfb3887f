"""``trex-bench sweep``: games × methods × seeds (× KL β) as independent pipeline runs."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.options import add_config_options, config_kwargs
from trex_bench.cli.util import positive_int, seed_list
from trex_bench.experiment.budgets import BUDGETS
from trex_bench.experiment.methods import METHODS
from trex_bench.experiment.options import PipelineConfig

# PipelineConfig fields a sweep passes to every run, and where a sweep's help says it differently.
_SHARED = (
    "profile",
    "demos",
    "ranking",
    "human_labels",
    "precision",
    "transform",
    "eval_episodes",
    "device",
    "label_noise",
)
_SHARED_HELP = {
    "demos": "demo set for every run (default: each game's committed set)",
    "human_labels": "MTurk label CSV for --ranking human (T-REX runs)",
    "precision": "PPO policy numerics of every run (see `trex-bench pipeline --help`)",
    "transform": "learned-reward transform of the T-REX/D-REX runs: sigmoid (the papers) | raw | normalized | delta",
    "eval_episodes": "evaluation games per run (default by budget)",
    "label_noise": "the synthetic labeler's error rate of the prefs runs, in [0, 0.5] (default 0)",
    "device": "torch device of every run (default: cpu)",
}


def _words(text: str) -> list[str]:
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise argparse.ArgumentTypeError("empty list")
    return items


def _floats(text: str) -> list[float]:
    try:
        return [float(x) for x in _words(text)]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a list of numbers: {text!r}") from e


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="games × methods × seeds (× KL β) as independent pipeline runs, several at once",
        description="Run `trex-bench pipeline` for every combination, each in its own run folder "
        "(ROOT/<game>-<method>[-<options>]-<budget>-s<seed>[-<hash of other options>]) from its config file "
        "with --resume, each appending its leaderboard row. "
        "A run folder that already holds summary.json is finished and skipped (--force reruns it, reusing its "
        "stages and appending a new row). Local executor: --workers pipelines at once, each with --threads "
        "torch threads (on 2 cores, two 1-thread runs do ~1.4x the work of one 2-thread run). Ray executor: one "
        "task per run on a Ray cluster sharing this file system. Exit code 1 if any run failed.",
        epilog="Example: trex-bench sweep --games breakout --methods trex,drex,constant --seeds 0-2 --budget small",
    )
    p.add_argument("--games", type=_words, required=True, help="comma-separated game ids, e.g. breakout,pong")
    p.add_argument("--methods", type=_words, required=True, help="comma-separated: " + ", ".join(METHODS))
    p.add_argument(
        "--seeds", type=seed_list, default=[0], help="comma-separated seeds and ranges, e.g. 0-2 (default 0)"
    )
    p.add_argument("--budget", required=True, choices=list(BUDGETS), help=" | ".join(BUDGETS))
    p.add_argument("--kl-to", type=Path, default=None, help="BC policy folder: the reference of the KL axis")
    p.add_argument(
        "--kl-betas", type=_floats, default=[], help="KL axis, e.g. 0,0.01,0.1 (0 = no penalty); needs --kl-to"
    )
    # The options every run shares, generated from PipelineConfig's fields (as `pipeline`'s), in the sweep's words.
    add_config_options(p, PipelineConfig, only=_SHARED, helps=_SHARED_HELP)
    p.add_argument("--root", type=Path, default=Path("runs"), help="folder of the run folders (default: runs)")
    p.add_argument("--leaderboard", type=Path, default=Path("results/leaderboard.csv"), help="CSV the rows go to")
    p.add_argument("--executor", choices=["local", "ray"], default="local", help="where runs execute (default local)")
    p.add_argument("--workers", type=positive_int, default=2, help="local: runs at once (default 2)")
    p.add_argument(
        "--threads", type=positive_int, default=1, help="torch/OpenMP threads (ray: CPUs) per run (default 1)"
    )
    p.add_argument("--address", default=None, help="ray: cluster address (default: a local Ray)")
    p.add_argument("--force", action="store_true", help="rerun finished runs too (a new leaderboard row each)")
    p.add_argument(
        "--dry-run", action="store_true", help="print the runs and their commands, run nothing (writes no file)"
    )
    p.set_defaults(func=run_sweep_command)


def run_sweep_command(args: argparse.Namespace) -> int:
    import itertools
    import shlex

    from trex_bench.experiment.sweep import JobResult, plan_sweep, run_sweep

    config = config_kwargs(args, PipelineConfig, only=_SHARED)
    jobs = plan_sweep(
        args.games,
        args.methods,
        args.seeds,
        args.budget,
        root=args.root,
        leaderboard=args.leaderboard,
        kl_to=args.kl_to,
        kl_betas=args.kl_betas,
        **config,
    )
    print(f"sweep: {len(jobs)} run(s), executor {args.executor}, {args.workers} at once × {args.threads} thread(s)")
    if args.dry_run:
        print(f"each run's command (its --config file is written under {args.root / 'sweep-configs'} when it starts):")
    for j in jobs:
        print(f"  {j.name}{'  (finished)' if j.finished() else ''}")
        if args.dry_run:
            print(f"    {shlex.join(j.command())}")
    if args.dry_run:
        return 0
    log_dir = args.root / "sweep-logs"
    n, ended = len(jobs), itertools.count(1)

    def show(r: JobResult) -> None:
        score = r.score()
        if score:
            what = f"{score[0]:.1f} ± {score[1]:.1f}"
        elif r.status == "skipped":
            what = f"finished before, but {r.job.folder / 'summary.json'} holds no score"
        elif r.status == "busy":
            what = f"its run folder is in use by {f'pid {r.holder}' if r.holder else 'another process'}"
        else:
            what = f"exit {r.returncode}, log {r.log}"
        print(f"[{next(ended)}/{n}] {r.job.name}: {r.status} ({r.wall_s / 60:.1f} min) {what}", flush=True)

    results = run_sweep(
        jobs,
        executor=args.executor,
        workers=args.workers,
        threads=args.threads,
        force=args.force,
        log_dir=log_dir,
        address=args.address,
        on_result=show,
    )
    failed = [r for r in results if r.status in ("failed", "busy")]
    busy = sum(r.status == "busy" for r in results)
    print(
        f"sweep: {n - len(failed)} of {n} run(s) finished"
        + (f" ({busy} in use by another process: run the sweep again when it ends)" if busy else "")
        + f"; logs in {log_dir}; rows in {args.leaderboard}"
    )
    return 1 if failed else 0
