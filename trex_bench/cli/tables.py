"""``trex-bench tables``: the papers' tables regenerated from the leaderboard beside the published numbers, the
aggregate statistics, and docs/results.md."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.core.errors import ConfigError

KINDS = ("trex", "mturk", "drex", "stats", "results")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="regenerate a paper's table beside the published numbers, the statistics or docs/results.md",
        description="Join results/leaderboard.csv with the published numbers in baselines/ on the game and write a "
        "markdown table: trex (T-REX Table 1), mturk (T-REX from human labels), drex (D-REX demos and BC, with "
        "our BC clone beside our D-REX agent). Ours: the mean over seeds (latest row per seed) ± the std over seeds, "
        "or for one seed ± the std of its evaluation games; best of seeds, agent steps; published games without runs "
        "are listed with empty cells; rows of replaced protocols (PPO annealed over its own steps, an earlier demo "
        "set) in a section apart. stats: rliable's IQM with stratified-bootstrap 95 % CIs of demo- and "
        "true-reward-normalised scores per method and budget (no CI where every game has one run), the probability "
        "of improvement of T-REX over the constant control, BC and D-REX, and best of seeds apart. results: "
        "docs/results.md from results/ only (leaderboard, extrapolation table, learning curves).",
        epilog="Example: trex-bench tables trex   # writes results/tables/trex.md and prints it\n"
        "         trex-bench tables stats --reps 2000   # writes results/tables/stats.md\n"
        "         trex-bench tables results   # writes docs/results.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "kind", choices=KINDS, help="which table (stats: the aggregate statistics; results: docs/results.md)"
    )
    p.add_argument(
        "--csv", type=Path, default=None, help="leaderboard file (default: results/leaderboard.csv; not for results)"
    )
    p.add_argument("--baselines", type=Path, default=Path("baselines"), help="folder of the published CSVs")
    p.add_argument(
        "--results", type=Path, default=Path("results"), help="results: the results folder (default: %(default)s)"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="markdown file (default: results/tables/KIND.md; results: docs/results.md)",
    )
    p.add_argument("--reps", type=int, default=2000, help="stats: bootstrap resamples, 1 to 100,000 (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="stats: the bootstrap's seed, >= 0 (default 0)")
    p.set_defaults(func=run_tables)


def writable_file(path: Path, flag: str = "--out") -> None:
    """A one-line ConfigError unless ``path`` can be written as a file: not a folder, no file where a folder above it
    should be (what the OS would report as a bare "File exists" or "Not a directory")."""
    if path.is_dir():
        raise ConfigError(f"{flag} {path} is a folder; name a file")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
            return


def markdown_file(path: Path, flag: str = "--out") -> None:
    """A one-line ConfigError unless ``path`` may receive a markdown table: nothing there yet, or a markdown file (a
    table written before); never an output of another kind (``tables trex --out results/leaderboard.csv`` replaced the
    leaderboard it had just read) or another file."""
    from trex_bench.core.io import describe_output, output_kind

    if output_kind(path) not in ("", "file") or (path.is_file() and path.suffix.lower() not in (".md", ".markdown")):
        raise ConfigError(f"{flag} {path} holds {describe_output(path)}; a table is markdown: name a .md file")


def writable_folder(path: Path, flag: str = "--out") -> None:
    """A one-line ConfigError unless ``path`` can be (or already is) a folder: neither it nor a folder above it is a
    file."""
    for p in (path, *path.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"{flag} {path}: {p} is a file, not a folder")
            return


def run_tables(args: argparse.Namespace) -> int:
    default = Path("docs/results.md") if args.kind == "results" else Path("results/tables") / f"{args.kind}.md"
    out = args.out or default
    writable_file(out)
    markdown_file(out)
    if args.kind == "results":
        if args.csv is not None:
            raise ConfigError("tables results reads the leaderboard of --results DIR (DIR/leaderboard.csv), not --csv")
        from trex_bench.analysis.results_doc import write_results_doc

        write_results_doc(args.results, out)
        print(f"wrote {out}")
        return 0
    csv = args.csv or Path("results/leaderboard.csv")
    if not csv.exists():
        raise ConfigError(f"{csv} does not exist (runs append to it; see `trex-bench pipeline --help`)")
    if args.kind == "stats":
        from trex_bench.analysis.stats import check_bootstrap, write_stats

        check_bootstrap(args.reps, args.seed)
        print(write_stats(csv, out, reps=args.reps, seed=args.seed))
    else:
        from trex_bench.analysis.tables import write_table

        print(write_table(args.kind, csv, args.baselines, out))
    print(f"wrote {out}")
    return 0
