"""The ``trex-bench`` command. Each command group lives in its own module with a ``register(subparsers)``."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings
from collections.abc import Sequence

from trex_bench import __version__
from trex_bench.core.errors import TrexBenchError
from trex_bench.core.interrupts import Terminated, sigterm_as_interrupt

# Command-group modules, in --help order; each defines register(subparsers) and sets args.func.
GROUPS = (
    "games",
    "demos",
    "reward",
    "bc",
    "rl",
    "evaluate",
    "pipeline",
    "sweep",
    "extrapolation",
    "leaderboard",
    "tables",
    "curves",
    "regression",
    "report",
    "label",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trex-bench",
        description="Learn rewards from ranked demonstrations on Atari (T-REX, D-REX) and benchmark them.",
        epilog="Example: trex-bench demos collect breakout --demonstrator scripted --episodes 4 --seed 0 "
        "--out demo-check",
    )
    parser.add_argument("--version", action="version", version=f"trex-bench {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the traceback of a user error too")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in GROUPS:
        try:
            module = importlib.import_module(f"trex_bench.cli.{name}")
        except ModuleNotFoundError as e:
            if e.name == f"trex_bench.cli.{name}":
                continue  # group not built yet
            raise
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 a check failed, 2 bad input).

    A user error (``trex_bench.core.errors.TrexBenchError``, or the OS refusing a path the user named) is printed as one
    line; ``--debug`` re-raises it with its traceback. Any other exception is a bug and keeps its traceback.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    args.argv = list(sys.argv if argv is None else ["trex-bench", *argv])
    try:
        with warnings.catch_warnings(), sigterm_as_interrupt():
            warnings.simplefilter("default")
            return int(args.func(args) or 0)
    except (TrexBenchError, FileNotFoundError, FileExistsError) as e:
        if args.debug:
            raise
        print(f"trex-bench: error: {e}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError) as e:  # read-only --out, --cache, --leaderboard …
        if args.debug:
            raise
        print(f"trex-bench: error: cannot use {e.filename or e}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM (Terminated): the shells' codes, 128 + the signal
        print("trex-bench: interrupted", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    except BrokenPipeError:  # `trex-bench leaderboard | head`: the reader left; not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
