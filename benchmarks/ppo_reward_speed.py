"""PPO env-steps/s with the learned-reward wrapper vs the same PPO on the true reward, side by side in one run.

    python benchmarks/ppo_reward_speed.py [--game breakout] [--steps 4096] [--repeats 2] [--device cpu] [--threads N]

Both arms run ``trex_bench.rl.ppo.train_ppo`` with the same config (the ``quick`` budget's rl-zoo3 settings:
8 envs, n_steps 128, batch 256, 4 epochs) shortened to ``--steps`` agent steps; the learned arm uses a freshly
initialised T-REX reward net (its speed does not depend on its weights) with the sigmoid transform. The arms
alternate ``--repeats`` times so background load hits both alike. Prints agent steps/s of each (learning time,
i.e. rollouts + updates) and the ratio learned / true (target ≥ 0.90, issue 4).

``--arms memory-format`` instead compares the policy's convolutions in NCHW against channels_last (NHWC), both on
the true reward: ``train_ppo(channels_last=…)``, whose default is channels_last on CPU.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import torch

from trex_bench.core.io import read_json
from trex_bench.experiment.budgets import ppo_config
from trex_bench.reward.net import RewardNet, save_model
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import train_ppo


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--steps", type=int, default=4096, help="agent steps per arm and repeat")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch's default)")
    ap.add_argument("--arms", choices=["reward", "memory-format"], default="reward",
                    help="reward: true vs learned reward (default); memory-format: NCHW vs channels_last policy")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.arms == "memory-format":
        return compare_memory_format(args)

    cfg = ppo_config("quick").replace(name="bench", total_steps=args.steps, checkpoint_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = Path(tmp) / "reward"
        torch.manual_seed(0)  # a benchmark script, not library code: a fixed random net
        save_model(RewardNet(args.game), model_dir, {"profile": "paper", "method": "random-init"})
        sps = run_arms(args, cfg, {"true": {"reward": "true"}, "learned": {"reward": model_dir}}, Path(tmp))
    print(f"PPO ({cfg.n_envs} envs, n_steps {cfg.n_steps}, batch {cfg.batch_size}, {cfg.n_epochs} epochs, "
          f"{torch.get_num_threads()} torch threads, device {args.device}) on {args.game}:")
    print(f"  true reward     {sps['true']:8.1f} agent steps/s")
    print(f"  learned reward  {sps['learned']:8.1f} agent steps/s")
    # The wrapper's own cost, which background load on a shared machine cannot hide: one batched forward pass.
    import time

    import numpy as np

    net = RewardNet(args.game).to(args.device).eval()
    stacks = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (cfg.n_envs, 4, 84, 84), dtype=np.uint8), device=args.device)
    with torch.no_grad():
        net(stacks)
        t0 = time.perf_counter()
        for _ in range(200):
            net(stacks)
        ms = (time.perf_counter() - t0) / 200 * 1e3
    print(f"  reward forward pass: {ms:.2f} ms per vectorised step of {cfg.n_envs} envs "
          f"(vs {cfg.n_envs / sps['true'] * 1e3:.1f} ms per PPO step on the true reward)")
    ratio = sps["learned"] / sps["true"]
    print(f"  ratio learned/true = {ratio:.3f} (target >= 0.90: {'ok' if ratio >= 0.9 else 'MISSED'})")


def run_arms(args: argparse.Namespace, cfg: PPOConfig, arms: dict[str, dict[str, Any]], tmp: Path) -> dict[str, float]:
    """``train_ppo`` once per arm (its keyword arguments) and repeat, alternating so that background load hits every
    arm alike; returns agent steps/s per arm over all repeats."""
    totals = {arm: [0, 0.0] for arm in arms}
    for rep in range(args.repeats):
        for arm, kwargs in arms.items():
            out = train_ppo(PPOJob(args.game, cfg, seed=rep, device=args.device, **kwargs), tmp / f"{arm}-{rep}", progress=False)
            card = read_json(out / "card.json")
            totals[arm][0] += card["steps"]
            totals[arm][1] += card["wall_s"]
            print(f"  repeat {rep} {arm:13s} {card['steps']:6d} steps  {card['steps_per_s']:7.1f} steps/s")
    return {arm: s / w for arm, (s, w) in totals.items()}


def compare_memory_format(args: argparse.Namespace) -> None:
    """PPO on the true reward with the policy in NCHW vs channels_last, alternating, one table."""
    cfg = ppo_config("quick").replace(name="bench", total_steps=args.steps, checkpoint_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        sps = run_arms(args, cfg, {"nchw": {"reward": "true", "channels_last": False},
                                   "channels_last": {"reward": "true", "channels_last": True}}, Path(tmp))
    print(f"PPO ({cfg.n_envs} envs, n_steps {cfg.n_steps}, batch {cfg.batch_size}, {cfg.n_epochs} epochs, "
          f"{torch.get_num_threads()} torch threads, device {args.device}) on {args.game}, true reward:")
    for arm, v in sps.items():
        print(f"  {arm:13s} {v:8.1f} agent steps/s")
    print(f"  ratio channels_last/nchw = {sps['channels_last'] / sps['nchw']:.3f}")


if __name__ == "__main__":
    main()
