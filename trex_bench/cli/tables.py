"""``trex-bench tables``: the papers' tables regenerated from the leaderboard beside the published numbers."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="regenerate a paper's table beside the published numbers (markdown)",
        description="Join results/leaderboard.csv with the published numbers in baselines/ on the game and write a "
        "markdown table: trex (T-REX Table 1), mturk (T-REX from human labels), drex (D-REX demos and BC, with "
        "our BC clone beside our D-REX agent). Ours: mean ± std over seeds (latest row per seed), best of seeds, "
        "agent steps; published games without runs are listed with empty cells. stats: rliable's IQM with "
        "stratified-bootstrap 95 % CIs of demo- and true-reward-normalised scores per method and budget, the "
        "probability of improvement of T-REX over the constant control, BC and D-REX, and best of seeds apart.",
        epilog="Example: trex-bench tables trex   # writes results/tables/trex.md and prints it\n"
        "         trex-bench tables stats --reps 2000   # writes results/tables/stats.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "kind", choices=["trex", "mturk", "drex", "stats"], help="which table (stats: the aggregate statistics)"
    )
    p.add_argument("--csv", type=Path, default=Path("results/leaderboard.csv"), help="leaderboard file")
    p.add_argument("--baselines", type=Path, default=Path("baselines"), help="folder of the published CSVs")
    p.add_argument("--out", type=Path, default=None, help="markdown file (default: results/tables/KIND.md)")
    p.add_argument("--reps", type=int, default=2000, help="stats: bootstrap resamples (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="stats: the bootstrap's seed")
    p.set_defaults(func=run_tables)


def run_tables(args: argparse.Namespace) -> int:
    from trex_bench.analysis.tables import write_table

    if not args.csv.exists():
        raise ConfigError(f"{args.csv} does not exist (runs append to it; see `trex-bench pipeline --help`)")
    out = args.out or Path("results/tables") / f"{args.kind}.md"
    if args.kind == "stats":
        from trex_bench.analysis.stats import write_stats

        print(write_stats(args.csv, out, reps=args.reps, seed=args.seed))
    else:
        print(write_table(args.kind, args.csv, args.baselines, out))
    print(f"wrote {out}")
    return 0
