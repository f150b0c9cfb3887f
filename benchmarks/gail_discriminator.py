"""Does GAIL's discriminator collapse on Atari, and does label smoothing keep the policy's reward alive?

    python benchmarks/gail_discriminator.py [--game breakout] [--demos DIR] [--rounds 12] [--smoothing 0,0.1]
                                            [--threads 1] [--seed 0]

Expert: the game's committed PPO-checkpoint demos. Policy: a uniform-random policy in the training env (PPO's
starting point, and a policy that never catches up: the worst case for a saturating discriminator). Each round is
one rollout of 8 envs x 128 steps (the rl-zoo3 PPO rollout) scored by D, then ``GAILReward.update`` on it, exactly
as the PPO callback does. Printed per smoothing ε and round: D's held-out accuracy (measured before the update),
the mean reward paid to the expert's held-out pairs and to the policy's pairs, the spread (std) of the policy's
rewards, and the share of policy steps paid under 0.01 (a vanished reward); D's accuracy on its training batches of
the round (``train acc``).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from trex_bench.core.envs import make_vec_env
from trex_bench.core.games import get_game
from trex_bench.demos.frames import FrameCache
from trex_bench.demos.store import load_demos
from trex_bench.rl.discriminator import gail_reward
from trex_bench.rl.gail import GAILReward
from trex_bench.rl.gail_config import GAILConfig


def random_rollout(env, obs: np.ndarray, rng: np.random.Generator, n_steps: int) -> tuple:
    """(stacks [n_steps·n_envs, 4, 84, 84], actions, the last obs): the (s_t, a_t) pairs of a random policy."""
    stacks, actions = [], []
    for _ in range(n_steps):
        a = rng.integers(0, env.action_space.n, env.num_envs)
        stacks.append(obs)
        actions.append(a)
        obs, _, _, _ = env.step(a)
    return np.concatenate(stacks), np.concatenate(actions).astype(np.int64), obs


def run(game: str, demos_dir: Path, cfg: GAILConfig, rounds: int, seed: int) -> Iterator[dict[str, float]]:
    demos = load_demos(demos_dir, game=game)
    gail = GAILReward(game, demos, FrameCache(demos), cfg, np.random.default_rng(seed), "cpu")
    env = make_vec_env(game, 8, "paper", seed=seed, training=True)
    rng = np.random.default_rng(seed + 1)
    obs = env.reset()
    for k in range(rounds):
        stacks, actions, obs = random_rollout(env, obs, rng, 128)
        with torch.no_grad():
            r = gail_reward(gail.disc(torch.as_tensor(stacks), torch.as_tensor(actions))).numpy()
        t0 = time.perf_counter()
        stats = gail.update(stacks, actions)
        yield {"round": k + 1, **stats, "policy_std": float(r.std()), "vanished": float((r < 0.01).mean()),
               "update_s": time.perf_counter() - t0}
    env.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--demos", type=Path, default=None)
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--smoothing", default="0,0.1")
    ap.add_argument("--lr", type=float, default=GAILConfig.learning_rate, help="a stress test: D learns faster")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    game = get_game(args.game).id
    demos_dir = args.demos or Path(__file__).resolve().parents[1] / "demos" / game / "ppo-checkpoints"
    print(f"{game}: expert {demos_dir}, policy uniform random, 1024 steps per round, D's lr {args.lr:g}, "
          f"{args.threads} torch thread(s)")
    print("| ε | round | held-out acc | acc expert | acc policy | train acc | reward expert | reward policy "
          "| policy std | policy < 0.01 | update s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for eps in (float(x) for x in args.smoothing.split(",")):
        cfg = GAILConfig(label_smoothing=eps, learning_rate=args.lr)
        for row in run(game, demos_dir, cfg, args.rounds, args.seed):
            print(f"| {eps:g} | {row['round']} | {row['heldout_acc']:.3f} | {row['heldout_acc_expert']:.3f} "
                  f"| {row['heldout_acc_policy']:.3f} | {row['disc_acc']:.3f} | {row['reward_expert']:.3f} "
                  f"| {row['reward_policy']:.4f} "
                  f"| {row['policy_std']:.4f} | {row['vanished']:.3f} | {row['update_s']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
