"""``trex-bench report``: results/report/index.html, one static page of the results (and its browser check)."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="one static HTML page of the results: leaderboard, statistics, tables, figures, learning curves",
        description="Build results/report/index.html from the results folder: the leaderboard by game with the "
        "methods side by side (best/average demo beside them, beats-best-demo flagged), rliable's aggregate "
        "statistics, the papers' tables beside ours, the extrapolation table and Figure-3 plots, fidelity and "
        "degradation figures, the learning curves (results/plots/curves; with --runs drawn afresh from those runs' "
        "TensorBoard logs and results/curves) and the package versions of the rows against requirements.lock. Rows "
        "of replaced protocols sit in collapsed sections. Relative links only: open it from the file system. --check "
        "renders it in headless Chromium (make install-browser), saves screenshot.png next to it and fails on a "
        "broken image or link, a console message or a blank screenshot.",
        epilog="Example: trex-bench report --runs runs --check",
    )
    p.add_argument("--results", type=Path, default=Path("results"), help="results folder (default: results)")
    p.add_argument("--out", type=Path, default=None, help="report folder (default: RESULTS/report)")
    p.add_argument("--runs", type=Path, default=None, help="draw the learning curves afresh, with these run folders")
    p.add_argument("--games", default=None, help="comma-separated games to show (default: all with rows)")
    p.add_argument(  # the default is stats.DEFAULT_METHODS, read at run time: stats loads scipy/rliable (~2.8 s)
        "--methods", default=None, help="comma-separated methods to show (default: trex,drex,bc,constant,ppo-true)"
    )
    p.add_argument(
        "--reps", type=int, default=2000, help="bootstrap resamples of the statistics, 1 to 100,000 (default 2000)"
    )
    p.add_argument("--lock", type=Path, default=None, help="lock file (default: RESULTS/../requirements.lock)")
    p.add_argument("--check", action="store_true", help="render in headless Chromium; save screenshot.png")
    p.set_defaults(func=run_report)


def run_report(args: argparse.Namespace) -> int:
    from trex_bench.analysis.report import build_report
    from trex_bench.core.errors import ConfigError
    from trex_bench.core.games import get_game

    out = args.out or args.results / "report"
    games = [get_game(g.strip()).id for g in args.games.split(",") if g.strip()] if args.games else None
    if args.runs is not None and not args.runs.is_dir():  # before the report folder is made
        raise ConfigError(f"--runs {args.runs} is not a folder of run folders")
    from trex_bench.analysis.stats import DEFAULT_METHODS

    given = args.methods if args.methods is not None else ",".join(DEFAULT_METHODS)
    methods = [m.strip() for m in given.split(",") if m.strip()]
    command = " ".join(["trex-bench", *args.argv[1:]]) if getattr(args, "argv", None) else "trex-bench report"
    report = build_report(
        args.results,
        out,
        runs=args.runs,
        games=games,
        methods=methods,
        reps=args.reps,
        command=command,
        lock=args.lock,
    )
    for note in report.notes:
        print(f"note: {note}")
    print(f"wrote {report.path} ({len(report.figures)} figures)")
    if not args.check:
        return 0
    from trex_bench.analysis.browser import render, static_problems

    check = render(report.path, out / "screenshot.png")
    problems = static_problems(report.path) + check.problems
    for p in problems:
        print(f"report check: {p}")
    print(
        f"browser check: {check.images} images, {check.broken_images} broken, {len(check.console)} console "
        f"messages; screenshot {check.screenshot}"
    )
    return 1 if problems else 0
