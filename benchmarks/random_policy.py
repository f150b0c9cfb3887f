"""The ``random`` method through the evaluation harness, next to the registry's published random score.

    python benchmarks/random_policy.py [--games beamrider,breakout,...] [--episodes 30] [--seed 0] [--out DIR]

Each game: ``write_random_policy`` + ``evaluate_agent`` (30 full games, the ``paper`` profile, seeded), exactly as
every agent is evaluated; printed beside ``Game.random_score`` (Mnih et al. 2015, as the T-REX/D-REX papers quote
it). The protocols differ: Mnih et al.'s evaluation games lasted at most 5 minutes (18 000 frames) and their random
agent chose actions at 10 Hz (their Methods); ours picks a uniform action every agent step (4 frames) for games of up
to 108 000 frames, with up to 30 no-op starts.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from trex_bench.core.games import GAMES, get_game
from trex_bench.evaluation.evaluate import evaluate_agent, write_random_policy


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--games", default=",".join(g for g, v in GAMES.items() if v.in_paper))
    ap.add_argument("--episodes", type=int, default=30)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="keep each game's eval.json here")
    args = ap.parse_args()
    print("| game | random (ours, mean ± std) | min | max | mean length | random (registry) | wall s |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        root = args.out or Path(tmp)
        for name in args.games.split(","):
            game = get_game(name)
            folder = write_random_policy(root / game.id, game.id)
            r = evaluate_agent(folder, episodes=args.episodes, seed=args.seed, overwrite=True)
            mean_len = sum(r["lengths"]) / len(r["lengths"])
            print(f"| {game.id} | {r['mean']:.1f} ± {r['std']:.1f} | {r['min']:g} | {r['max']:g} | {mean_len:.0f} "
                  f"| {game.random_score} | {r['wall_s']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
