"""``trex-bench games``: the game registry as a table."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.core.games import GAMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "games",
        help="list the games, their ALE ids, reward-net masks and reference scores",
        description="List the games trex_bench knows. Example: trex-bench games --masks results/plots/masks",
    )
    p.add_argument(
        "--masks",
        metavar="DIR",
        help="also write DIR/<game>.png for the papers' eight games: a real frame with the reward net's score/lives "
        "mask drawn on it (seeded random policy; a few seconds a game)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.masks:  # before the table: a --masks that cannot be a folder fails first, in one line
        from trex_bench.core.errors import DataError
        from trex_bench.core.io import check_path

        if Path(args.masks).exists() and not Path(args.masks).is_dir():
            raise DataError(f"--masks {args.masks} is a file, not a folder")
        check_path(Path(args.masks), into=True)
    print(f"{'id':<18}{'ALE id':<19}{'classic id':<32}{'mask top/bottom':>16}{'random':>10}{'human':>10}  paper")
    for g in GAMES.values():
        rnd = "-" if g.random_score is None else f"{g.random_score:g}"
        hum = "-" if g.human_score is None else f"{g.human_score:g}"
        print(
            f"{g.id:<18}{g.ale_id:<19}{g.gym_v4_id:<32}{f'{g.mask_top}/{g.mask_bottom}':>16}{rnd:>10}{hum:>10}"
            f"  {'yes' if g.in_paper else 'no'}"
        )
    if args.masks:
        from trex_bench.reward.masks import mask_frame, save_mask_png  # loads the emulator: only when asked

        for g in GAMES.values():
            if g.in_paper:
                mf = mask_frame(g)
                path = save_mask_png(mf, f"{args.masks}/{g.id}.png")
                print(f"{path}  (step {mf.step}, score {mf.score:g})")
    return 0
