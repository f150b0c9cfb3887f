"""Does *stock* SB3 PPO leave a score of 0 on a game within N agent steps? (issue #15, Enduro)

SB3 as rl-zoo3 runs Atari: ``make_atari_env(<Game>NoFrameskip-v4, 8)`` + ``VecFrameStack(4)`` + ``CnnPolicy``, n_steps
128, batch 256, 4 epochs, lr 2.5e-4 and clip 0.1 annealed linearly over 10M steps (this run is their first N), ent
0.01, vf 0.5. Prints, every ~10k steps, the finished training episodes' full-game scores (SB3's Monitor) and the
policy's entropy. None of trex_bench's code is used: it tells a difference in our set-up from plain exploration.

    OMP_NUM_THREADS=1 python tools/stock_ppo_probe.py enduro --steps 300000 --seed 0
"""

from __future__ import annotations

import argparse
import time

import ale_py
import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_atari_env
from stable_baselines3.common.vec_env import VecFrameStack

ZOO_HORIZON = 10_000_000


class _Log(BaseCallback):
    """One line per ~10k agent steps: episodes finished so far (last 100), their mean and max score, the entropy."""

    def __init__(self, every: int = 10_000) -> None:
        super().__init__()
        self.every, self.last, self.t0 = every, 0, time.perf_counter()

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        if self.num_timesteps - self.last < self.every:
            return
        self.last = self.num_timesteps
        scores = [e["r"] for e in self.model.ep_info_buffer]
        entropy = -self.logger.name_to_value.get("train/entropy_loss", float("nan"))
        mean, top = (float(np.mean(scores)), float(max(scores))) if scores else (float("nan"), float("nan"))
        print(f"{self.num_timesteps:>8} steps {time.perf_counter() - self.t0:6.0f} s  episodes {len(scores):3d}  "
              f"mean {mean:7.2f}  max {top:6.1f}  entropy {entropy:.3f}", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("game", help="game id, e.g. enduro")
    ap.add_argument("--steps", type=int, default=300_000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    gym.register_envs(ale_py)
    env_id = next(k for k in gym.registry if k.lower() == f"{args.game}noframeskip-v4")
    env = VecFrameStack(make_atari_env(env_id, n_envs=8, seed=args.seed), n_stack=4)
    share = args.steps / ZOO_HORIZON  # SB3's progress p runs 1 -> 0 over this run: value * (1 - (1 - p) * share)
    model = PPO("CnnPolicy", env, n_steps=128, batch_size=256, n_epochs=4, ent_coef=0.01, vf_coef=0.5,
                learning_rate=lambda p: 2.5e-4 * (1 - (1 - p) * share), clip_range=lambda p: 0.1 * (1 - (1 - p) * share),
                seed=args.seed, device="cpu", verbose=0)
    model.learn(args.steps, callback=_Log())
    print(f"done: {model.num_timesteps} agent steps", flush=True)


if __name__ == "__main__":
    main()
