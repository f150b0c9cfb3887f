"""``trex-bench regression check|update``: compare small deterministic runs with ``results/regression.json``."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path

from trex_bench.cli.util import positive_int, seed_list

# trex_bench.regression.checks.CHECKS' names, here torch-free
CHECK_NAMES = (
    "demos",
    "reward.trex",
    "reward.drex",
    "extrap.breakout",
    "released.breakout",
    "released.beamrider",
    "released.hero",
    "released.pong",
    "released.qbert",
    "released.seaquest",
    "released.spaceinvaders",
    "ppo.true",
    "ppo.learned",
    "tables",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regression",
        help="CI regression checks against committed expectations (results/regression.json)",
        description="Small deterministic CPU runs (demo replay, tiny T-REX/D-REX reward nets, extrapolation to the "
        "unseen Breakout set of a tiny net, of the released T-REX nets on every game's unseen set, 256-step PPO "
        "runs on the true and on a "
        "learned reward, the table generators) compared with the expected values and bands in "
        "results/regression.json.",
        epilog="Example: trex-bench regression check",
    )
    rsub = p.add_subparsers(dest="regression_command", metavar="COMMAND", required=True)

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument(
            "--expectations",
            type=Path,
            default=Path("results/regression.json"),
            help="the expectations file (default: results/regression.json)",
        )
        q.add_argument(
            "--root",
            type=Path,
            default=Path("."),
            help="repository root holding demos/, baselines/ and tests/data/ (default: .)",
        )
        q.add_argument(
            "--only",
            nargs="+",
            choices=CHECK_NAMES,
            metavar="CHECK",
            help=f"run only these checks ({', '.join(CHECK_NAMES)}); default: all",
        )

    c = rsub.add_parser(
        "check",
        help="run the checks; print check, expected, got, band, verdict; exit 1 if any fails",
        description="Run the regression checks and compare each metric with its expectation: 'exact' (hashes, "
        "counts), 'rel' (within 1e-5 relative) or a measured band. All checks take about 12 minutes of CPU, half "
        "of it replaying the committed demo sets, spread over --workers processes (docs/measurements.md has the "
        "wall time on 2 cores); --only for fewer. Exits 1 and names every failing metric and by how much.",
        epilog="Example: trex-bench regression check --only reward.trex tables",
    )
    common(c)
    c.add_argument(
        "--workers",
        type=positive_int,
        default=min(2, os.cpu_count() or 1),
        help="checks (and demo sets) measured at once, each in its own process on one torch thread, so the "
        "values do not depend on it (default: 2, or 1 on a 1-core machine)",
    )
    c.set_defaults(func=run_check)
    u = rsub.add_parser(
        "update",
        help="re-measure and rewrite the expectations (needs --reason)",
        description="Re-measure the checks (banded metrics over several seeds, a few minutes) and rewrite the "
        "expectations file, recording the reason, command, commit and versions beside each changed value. Right "
        "after a deliberate change of method or dependency; never to make a failing check pass (README.md).",
        epilog="Example: trex-bench regression update --reason "
        '"torch 2.13 -> 2.14: new CPU conv kernels" --only reward.trex',
    )
    common(u)
    u.add_argument("--reason", default=None, help="why the expected values change (required, non-empty)")
    u.add_argument(
        "--this-cpu",
        action="store_true",
        help="record this CPU vendor's own values of the exact and rel metrics that differ from the file's "
        "(under by_cpu; seed 0 only, bands untouched), for a vendor whose CPUs round differently even pinned; "
        "a rel value more than 1e-3 off is refused as a change, not rounding",
    )
    u.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="seeds the bands are measured over (0,1,2 or 0-4; default 0-4); seed 0 is always the expectation",
    )
    u.set_defaults(func=run_update)


def _fmt(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value[:12] + "…" if len(value) > 13 else value
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _pin() -> None:
    """Pin the float kernels before torch loads (``pin_numerics``); say so on stderr where they could not be."""
    from trex_bench.regression.numerics import pin_numerics

    why = pin_numerics()
    if why:
        print(f"regression: warning: numerics not pinned: {why}; exact weight hashes may differ", file=sys.stderr)


def run_check(args: argparse.Namespace) -> int:
    _pin()
    from trex_bench.regression.expectations import compare_all, load_expectations
    from trex_bench.regression.runner import run_checks

    expectations = load_expectations(args.expectations)  # refuse a bad file before a minute of work
    t0 = time.perf_counter()
    measured, seconds, skipped = run_checks(args.root, args.only, workers=args.workers)
    results = compare_all(expectations, measured)
    rows = [(r.key, _fmt(r.expected), _fmt(r.got), r.band, "ok" if r.ok else "FAIL") for r in results]
    rows += [(f"{name}.*", "-", "-", "-", "SKIPPED") for name in skipped]
    head = ("check", "expected", "got", "band", "verdict")
    widths = [max(len(x[i]) for x in [head, *rows]) for i in range(5)]
    for row in [head, *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for name, why in skipped.items():
        print(f"regression: SKIPPED {name}: {why}", file=sys.stderr)
    from trex_bench.regression.numerics import numerics

    print(
        f"{numerics()}; {args.workers} worker(s); {len(results)} metrics, {sum(not r.ok for r in results)} failing, "
        f"{len(skipped)} check(s) skipped; "
        + "time in each check (its units summed): "
        + ", ".join(f"{k} {s:.0f} s" for k, s in seconds.items())
        + f"; wall {time.perf_counter() - t0:.0f} s"
    )
    failing = [r for r in results if not r.ok]
    for r in failing:
        print(
            f"regression: FAIL {r.key}: expected {_fmt(r.expected)}, got {_fmt(r.got)} ({r.band}): {r.detail}",
            file=sys.stderr,
        )
    return 1 if failing else 0


def run_update(args: argparse.Namespace) -> int:
    _pin()
    from trex_bench.regression.checks import BAND_SEEDS, RegressionError
    from trex_bench.regression.expectations import (
        load_expectations,
        record_for_cpu,
        save_expectations,
        update_expectations,
    )

    old = load_expectations(args.expectations, missing_ok=not args.this_cpu)
    command = shlex.join(["trex-bench", *args.argv[1:]])
    say = lambda name: print(f"measuring {name} ...", file=sys.stderr, flush=True)  # noqa: E731
    if args.this_cpu:
        if args.seeds:
            raise RegressionError("--this-cpu measures seed 0 only; drop --seeds")
        doc, changed = record_for_cpu(args.root, old, args.reason, command, args.only, progress=say)
    else:
        doc, changed = update_expectations(
            args.root, old, args.reason, command, args.only, tuple(args.seeds or BAND_SEEDS), progress=say
        )
    save_expectations(args.expectations, doc)
    print(f"{len(changed)} expectation(s) changed: {', '.join(changed) if changed else 'none'}")
    print(f"wrote {args.expectations}")
    return 0
