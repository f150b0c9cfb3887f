"""``trex-bench rl train``: SB3 PPO on a learned, true or constant reward."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.options import add_config_options
from trex_bench.cli.util import seed, torch_device


def _nonneg_float(text: str) -> float:
    """A finite float >= 0."""
    v = float(text)
    if not 0.0 <= v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return v


def register(sub: argparse._SubParsersAction) -> None:
    from trex_bench.core.types import REWARD_TRANSFORMS as TRANSFORMS
    from trex_bench.experiment.budgets import BUDGETS  # torch-free: `trex-bench --help` must not load torch

    p = sub.add_parser(
        "rl",
        help="train an RL agent on a learned (or true, or constant) reward",
        description="Reinforcement learning with SB3 PPO (CnnPolicy) on a reward model's output.",
        epilog="Example: trex-bench rl train breakout --reward true --budget quick --seed 0 --out runs/breakout-true",
    )
    rs = p.add_subparsers(dest="rl_command", metavar="SUBCOMMAND", required=True)
    t = rs.add_parser(
        "train",
        help="train PPO and write an agent folder (agent.zip + card.json)",
        description="Train SB3 PPO on GAME with the reward of a reward-model folder, the sign-clipped true reward "
        "('true', as the papers' PPO) or 1 per step ('constant', the survival-bonus control). Writes agent.zip, "
        "card.json, checkpoints/ and TensorBoard logs (tb/) into --out.",
        epilog="Example: trex-bench rl train breakout --reward runs/breakout-trex-0 --budget quick --seed 0 "
        "--out runs/breakout-trex-0-agent (the reward folder of `trex-bench reward train`'s example)",
    )
    t.add_argument("game", help="game id, e.g. breakout (see `trex-bench games`)")
    t.add_argument("--reward", required=True, help="reward-model folder | true | constant")
    t.add_argument(
        "--budget",
        required=True,
        choices=list(BUDGETS),
        help="PPO preset (agent steps; times on 2 CPU cores): smoke (2k, seconds), quick (120k, 4-10 min), "
        "small (500k, about an hour), medium (1M), long (2.5M, 2-4 h: resume with --resume), gpu (700k, 16 envs), "
        "paper (T-REX's baselines PPO2, 12.5M steps), paper-zoo (rl-zoo3 Atari PPO, 10M steps)",
    )
    t.add_argument("--seed", type=seed, required=True, help="seed of PPO and of the env resets")
    t.add_argument("--out", type=Path, required=True, help="agent folder to write")
    t.add_argument(
        "--transform",
        default="sigmoid",
        choices=list(TRANSFORMS),
        help="learned-reward transform: sigmoid (the papers), raw, normalized (divided by a running return std), "
        "delta (r̂(s′) − r̂(s), potential-based shaping; an experiment)",
    )
    t.add_argument("--profile", default="paper", choices=["paper", "machado"], help="env profile (default: paper)")
    t.add_argument(
        "--device",
        type=torch_device,
        default="cpu",
        help="torch device of the policy and the reward model (default: cpu)",
    )
    t.add_argument(
        "--kl-to",
        type=Path,
        default=None,
        metavar="BC_DIR",
        help="BC model folder (trex-bench bc train) = the reference policy pi_0 of an RLHF-style KL "
        "penalty in the reward: r_t - beta*(log pi_theta(a_t|s_t) - log pi_0(a_t|s_t)), the per-step "
        "estimate of beta*KL(pi_theta || pi_0) (Ziegler et al. 2019, Ouyang et al. 2022)",
    )
    t.add_argument(
        "--kl-beta",
        type=_nonneg_float,
        default=0.0,
        metavar="BETA",
        help="KL coefficient beta > 0, with --kl-to (no --kl-to: no penalty)",
    )
    from trex_bench.experiment.options import PipelineConfig

    add_config_options(t, PipelineConfig, only=("precision", "max_seconds"))  # as in `pipeline`, from one source
    t.add_argument(
        "--resume",
        action="store_true",
        help="go on from the newest checkpoint of an unfinished run in --out started with the same settings "
        "(a run cut off by a session's end loses at most one checkpoint interval)",
    )
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)


def run_train(args: argparse.Namespace) -> int:
    from trex_bench.core.errors import ConfigError
    from trex_bench.core.io import read_json
    from trex_bench.experiment.budgets import ppo_config
    from trex_bench.rl.config import KLSpec, PPOJob
    from trex_bench.rl.ppo import train_ppo

    cfg = ppo_config(args.budget)
    if args.max_seconds is not None:
        cfg = cfg.replace(max_seconds=args.max_seconds)
    if args.kl_beta and args.kl_to is None:
        raise ConfigError(f"--kl-beta {args.kl_beta:g} needs --kl-to (a BC model folder)")
    job = PPOJob(
        args.game,
        cfg,
        seed=args.seed,
        reward=args.reward,
        transform=args.transform,
        profile=args.profile,
        kl=KLSpec(args.kl_to, args.kl_beta) if args.kl_to is not None else None,
        precision=args.precision,
        device=args.device,
    )
    out = train_ppo(job, args.out, progress=not args.no_progress, resume=args.resume, log=print)
    card = read_json(out / "card.json")
    print(
        f"trained PPO on {card['game']} ({card['reward']['source']} reward, budget {card['budget']}): "
        f"{card['steps']} steps in {card['wall_s']:.0f} s ({card['steps_per_s']:.0f} steps/s)"
    )
    if card.get("kl_mean"):
        kl = card["kl_mean"]
        print(
            f"KL penalty to {card['kl_to']['path']} (beta {card['kl_beta']:g}): mean per-step KL estimate "
            f"{kl.get('first', float('nan')):.4f} (first rollout) -> {kl.get('last', float('nan')):.4f} (last)"
        )
    print(f"wrote {out / 'agent.zip'} and {out / 'card.json'}; TensorBoard: tensorboard --logdir {out / 'tb'}")
    return 0
