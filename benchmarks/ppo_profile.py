"""Where one PPO run's time goes, per phase (issue: PPO throughput, "profile first").

    python benchmarks/ppo_profile.py [--game breakout] [--steps 8192] [--precision fp32] [--reward true|learned]
        [--threads N]

Runs ``train_ppo`` (the ``quick`` budget's rl-zoo3 settings, shortened to ``--steps``) with timers wrapped around
SB3's seams: the vectorised env step (ale-py's C++ vector env + our reward wrapper), the policy forward in rollouts,
GAE, and inside the update the forward pass (``evaluate_actions``), the optimiser step, and the rest (backward,
gradient clipping, minibatch gathering, logging). Prints seconds and shares of the learning time.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.buffers import RolloutBuffer

from trex_bench.experiment.budgets import ppo_config
from trex_bench.reward.net import RewardNet, save_model
from trex_bench.rl.config import PPOJob
from trex_bench.rl.ppo import train_ppo
from trex_bench.rl.wrappers import ClipRewardVecEnv, LearnedRewardVecEnv

TIMES: dict[str, float] = defaultdict(float)


def timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*a: Any, **kw: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return fn(*a, **kw)
        finally:
            TIMES[name] += time.perf_counter() - t0

    return wrapper


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--steps", type=int, default=8192)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "auto"])
    ap.add_argument("--reward", default="true", choices=["true", "learned"])
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    # Class-level wrappers: every instance train_ppo builds is timed.
    PPO.collect_rollouts = timed("rollouts (total)", PPO.collect_rollouts)  # type: ignore[method-assign]
    PPO.train = timed("update (total)", PPO.train)  # type: ignore[method-assign]
    for wrapper in (ClipRewardVecEnv, LearnedRewardVecEnv):  # the outermost env PPO steps
        wrapper.step_wait = timed("  env step + reward wrapper", wrapper.step_wait)  # type: ignore[method-assign]
    RolloutBuffer.compute_returns_and_advantage = timed(  # type: ignore[method-assign]
        "  GAE", RolloutBuffer.compute_returns_and_advantage)
    from stable_baselines3.common.policies import ActorCriticPolicy

    ActorCriticPolicy.forward = timed("  policy forward (rollouts)", ActorCriticPolicy.forward)  # type: ignore[method-assign]
    ActorCriticPolicy.evaluate_actions = timed(  # type: ignore[method-assign]
        "  policy forward (update)", ActorCriticPolicy.evaluate_actions)
    torch.optim.Adam.step = timed("  Adam step", torch.optim.Adam.step)  # type: ignore[method-assign]

    cfg = ppo_config("quick").replace(name="profile", total_steps=args.steps, checkpoint_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        reward: Any = "true"
        if args.reward == "learned":
            torch.manual_seed(0)
            reward = save_model(RewardNet(args.game), Path(tmp) / "reward", {"profile": "paper", "method": "random-init"})
        t0 = time.perf_counter()
        train_ppo(PPOJob(args.game, cfg, seed=0, reward=reward, precision=args.precision), Path(tmp) / "agent", progress=False)
        total = time.perf_counter() - t0
    learn = TIMES["rollouts (total)"] + TIMES["update (total)"]
    TIMES["  backward, clipping, other (update)"] = (TIMES["update (total)"] - TIMES["  policy forward (update)"]
                                                    - TIMES["  Adam step"])
    TIMES["  other (rollouts)"] = (TIMES["rollouts (total)"] - TIMES["  env step + reward wrapper"]
                                   - TIMES["  policy forward (rollouts)"] - TIMES["  GAE"])
    print(f"PPO profile: {args.game}, {args.steps} agent steps, reward {args.reward}, precision {args.precision}, "
          f"{torch.get_num_threads()} torch threads; {args.steps / learn:.0f} agent steps/s while learning "
          f"(setup incl.: {total:.1f} s)")
    # "other (update)" holds the backward pass, gradient clipping, the minibatch gather and SB3's bookkeeping.
    order = ["rollouts (total)", "  env step + reward wrapper", "  policy forward (rollouts)", "  GAE",
             "  other (rollouts)", "update (total)", "  policy forward (update)", "  backward, clipping, other (update)",
             "  Adam step"]
    print(f"  {'phase':40} {'s':>7} {'share':>6}")
    for k in order:
        print(f"  {k:40} {TIMES[k]:7.2f} {TIMES[k] / learn:6.1%}")


if __name__ == "__main__":
    main()
