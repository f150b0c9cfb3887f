"""Collection and replay speed vs a raw ale-py vector env, side by side in one run (foundation issue).

    python benchmarks/collect_speed.py [--game breakout] [--envs 4] [--episodes 32]

Raw: ``ale_py.vector_env.AtariVectorEnv`` with the same game, env count and threads, random actions, its own
(unseeded) autoreset, for the same number of agent steps; both timings include env construction and first reset. Ours: ``trex_bench.demos.collect.collect`` with a uniform random policy (so both do the same work per
step; collection also hashes frames, records actions and reseeds every episode for replay) and
``replay_many`` of the collected episodes. Prints agent steps/s and frames/s (×4 frameskip) and the ratios.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from ale_py.vector_env import AtariVectorEnv

from trex_bench.core.games import get_game
from trex_bench.demos.collect import CollectConfig, collect
from trex_bench.demos.policies import RandomPolicy, ScriptedBreakout
from trex_bench.demos.replay import replay_many


def raw_speed(game: str, n_envs: int, steps: int) -> float:
    """Agent steps/s of a bare AtariVectorEnv, construction and first reset included (as they are for ours)."""
    t0 = time.perf_counter()
    env = AtariVectorEnv(get_game(game).ale_id, num_envs=n_envs, num_threads=min(n_envs, 2), reward_clipping=False)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    n_actions = int(env.single_action_space.n)
    for _ in range(steps // n_envs):
        env.step(rng.integers(0, n_actions, n_envs))
    dt = time.perf_counter() - t0
    env.close()
    return (steps // n_envs) * n_envs / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--envs", type=int, default=4)
    ap.add_argument("--episodes", type=int, default=32)
    args = ap.parse_args()
    n_actions = 4 if args.game == "breakout" else 18
    rows = []
    for name, policy in [("random", RandomPolicy(n_actions, np.random.default_rng(0))), ("scripted", ScriptedBreakout())]:
        if name == "scripted" and args.game != "breakout":
            continue
        t0 = time.perf_counter()
        ds = collect(args.game, policy, CollectConfig(args.episodes, seed=0, n_envs=args.envs), progress=False)
        t_collect = time.perf_counter() - t0
        steps = int(ds.lengths.sum())
        raw = raw_speed(args.game, args.envs, steps)
        t0 = time.perf_counter()
        replay_many(ds.episodes, args.game, ds.profile, n_envs=args.envs)
        t_replay = time.perf_counter() - t0
        rows.append((name, steps, raw, steps / t_collect, steps / t_replay))
    print(f"game {args.game}, {args.envs} envs, {args.episodes} episodes per policy; agent steps/s (frames/s = 4x)")
    print(f"{'policy':<10}{'steps':>8}{'raw ALE':>10}{'collect':>10}{'ratio':>7}{'replay':>10}{'ratio':>7}")
    for name, steps, raw, col, rep in rows:
        print(f"{name:<10}{steps:>8}{raw:>10.0f}{col:>10.0f}{col / raw:>7.2f}{rep:>10.0f}{rep / raw:>7.2f}")


if __name__ == "__main__":
    main()
