"""argparse types shared by the command modules: bad values fail with a one-line message."""

from __future__ import annotations

import argparse


def positive_int(text: str) -> int:
    """An int >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """An int >= 0."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def unit_float(text: str) -> float:
    """A float in [0, 1]."""
    v = float(text)
    if not 0.0 <= v <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {v}")
    return v


def ppo_demonstrator_command(args: argparse.Namespace) -> int:
    """``demos collect --demonstrator ppo``: train PPO on the true reward and record one episode per checkpoint."""
    try:
        from trex_bench.rl.checkpoints import collect_from_ppo_checkpoints
    except ModuleNotFoundError as e:
        raise ValueError("the ppo demonstrator needs trex_bench.rl.checkpoints, which this build does not have") from e
    return collect_from_ppo_checkpoints(args)
