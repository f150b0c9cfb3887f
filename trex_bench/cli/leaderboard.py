"""``trex-bench leaderboard``: the results table grouped by game and method."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "leaderboard",
        help="print the leaderboard grouped by game and method",
        description="Summarise results/leaderboard.csv: per game, method variant and budget, the mean of the per-seed "
        "scores ± their std over seeds (one seed: ± the std of its evaluation games), best of seeds, and how many "
        "seeds beat the best demo. A variant is a method run otherwise than usual (a KL penalty, another ranking or "
        "env profile, a wall-time cap: `trex (sigmoid+kl0.1)`). Rows on different demo sets or PPO schedules "
        "(schedule_steps empty: annealed over the run's own steps) are never pooled. A seed run again counts once "
        "(its latest row in its group) unless --all-rows; group by fewer columns and variants supersede each other.",
        epilog="Example: trex-bench leaderboard --csv results/leaderboard.csv --by game variant budget",
    )
    p.add_argument("--csv", type=Path, default=Path("results/leaderboard.csv"), help="leaderboard file")
    p.add_argument(
        "--by",
        nargs="+",
        default=["game", "variant", "budget"],
        help="leaderboard columns, or variant, to group by (default: game variant budget)",
    )
    p.add_argument(
        "--all-rows",
        action="store_true",
        help="summarise every row; by default a seed run again counts once, with its latest row",
    )
    p.set_defaults(func=run_leaderboard)


def run_leaderboard(args: argparse.Namespace) -> int:
    from trex_bench.evaluation.leaderboard import COLUMNS, read_leaderboard
    from trex_bench.evaluation.summary import SCORE_HEADER, score_cell, summarize_rows, variants

    bad = [c for c in args.by if c not in (*COLUMNS, "variant")]
    if bad:
        raise ConfigError(f"cannot group by {', '.join(bad)}; columns: variant, {', '.join(COLUMNS)}")
    if not args.csv.exists():
        raise ConfigError(f"{args.csv} does not exist (runs append to it; see `trex-bench pipeline --help`)")
    rows = read_leaderboard(args.csv)
    table = summarize_rows(rows.assign(variant=variants(rows)), tuple(args.by), latest_per_seed=not args.all_rows)
    if table.empty:
        print(f"{args.csv}: no rows yet")
        return 0
    table[SCORE_HEADER] = [
        score_cell(r.mean, r.std, r.seeds, r.spread, r.games, digits=2) for r in table.itertuples(index=False)
    ]
    extra = [c for c in ("best_demo", "schedule_steps") if c not in args.by]
    cols = [*args.by, "seeds", "superseded", SCORE_HEADER, "best", *extra, "beats_best_demo", "human_normalized"]
    print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.2f}"))
    return 0
