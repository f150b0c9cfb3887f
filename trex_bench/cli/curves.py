"""``trex-bench curves``: learning curves exported from run folders to small committed CSVs, and their figures."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.tables import writable_folder
from trex_bench.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "curves",
        help="learning curves: export a run folder's to results/curves, draw the figures",
        description="Learning curves: the true full-game score of the training policy against agent steps "
        "(SB3's rollout/ep_rew_mean: the mean of the last 100 training games). Run folders leave with the machine "
        "they ran on; `export` keeps each run's curve as a small CSV (every k-th rollout, at most 500 points) and a "
        "JSON sidecar (game, method, budget, seed, schedule, precision, demo returns, finished or the step reached). "
        "`plot` draws per game and budget every exported curve (and those of --runs), the best and average demo and "
        "rl-zoo3's published curve (results/curves/rlzoo3).",
        epilog="Example: trex-bench curves export --runs runs          # writes results/curves/<run>.csv + .json\n"
        "         trex-bench curves plot                       # writes results/plots/curves/<game>-<budget>.png",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmds = p.add_subparsers(dest="curves_command", metavar="{export,plot}", required=True)
    e = cmds.add_parser(
        "export",
        help="one CSV + sidecar per run folder under --runs (finished or in progress)",
        epilog="Example: trex-bench curves export --runs runs --out results/curves",
    )
    e.add_argument("--runs", type=Path, required=True, help="folder of run folders (trex-bench pipeline/sweep)")
    e.add_argument("--out", type=Path, default=Path("results/curves"), help="folder of the CSVs (default: %(default)s)")
    e.set_defaults(func=run_export)
    q = cmds.add_parser(
        "plot",
        help="one figure per game and budget from the exported curves (+ --runs)",
        epilog="Example: trex-bench curves plot --curves results/curves --out results/plots/curves",
    )
    q.add_argument("--curves", type=Path, default=Path("results/curves"), help="exported curves (default: %(default)s)")
    q.add_argument("--runs", type=Path, default=None, help="also draw the run folders under RUNS (TensorBoard logs)")
    q.add_argument("--out", type=Path, default=Path("results/plots/curves"), help="figures (default: %(default)s)")
    q.set_defaults(func=run_plot)


def run_export(args: argparse.Namespace) -> int:
    from trex_bench.analysis.curves import export_curves

    if not args.runs.is_dir():
        raise ConfigError(f"--runs {args.runs} is not a folder of run folders")
    writable_folder(args.out)
    written, skipped = export_curves(args.runs, args.out)
    for name, why in skipped:
        print(f"skipped {name}: {why}")
    for curve, path in written:
        state = "finished" if curve.finished else f"in progress: step {curve.steps[-1]:,} reached"
        print(f"wrote {path} ({curve.game} {curve.method} {curve.budget} s{curve.seed}, {state})")
    if not written:
        print(f"no run with a learning curve under {args.runs}")
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from trex_bench.analysis.curve_plots import plot_curves
    from trex_bench.analysis.curves import collect_curves, load_curves, load_references

    writable_folder(args.out)
    if not args.curves.is_dir() and args.runs is None:
        raise ConfigError(f"--curves {args.curves} is not a folder of exported curves (trex-bench curves export)")
    curves = load_curves(args.curves)
    if args.runs is not None:
        if not args.runs.is_dir():
            raise ConfigError(f"--runs {args.runs} is not a folder of run folders")
        live, skipped = collect_curves(args.runs)
        for name, why in skipped:
            print(f"skipped {name}: {why}")
        fresh = {c.run for c in live}  # a run folder's log is newer than its exported curve
        curves = [c for c in curves if c.run not in fresh] + live
        print(f"{len(live)} curves from {args.runs}")
    written = plot_curves(curves, args.out, load_references(args.curves / "rlzoo3"))
    for path in written:
        print(f"wrote {path}")
    if not written:
        print(f"no learning curves in {args.curves}" + (f" or {args.runs}" if args.runs is not None else ""))
    return 0
