"""The papers' demonstrator: checkpoints of one PPO run on the true reward, and episodes recorded from them.

T-REX (§5, PAPERS.md) trained PPO on the true reward and recorded one stochastic episode from each of 12 early
checkpoints (50…600); ranked by return (or by checkpoint order: "learning from a learner", Jacq et al. 2019) they
are the demonstrations. The *later* checkpoints of the same run (650…1450, three episodes each,
hiwonjoon/ICML2019-TREX ``VisualizeAtariLearnedReward.py``) are the unseen, better behaviour the learned reward
must extrapolate to.
Every episode is tagged with its checkpoint's index in the whole run, so both sets share one numbering.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trex_bench.bc.folder import load_bc
from trex_bench.core.errors import ConfigError
from trex_bench.core.games import Game
from trex_bench.core.types import DemoSet
from trex_bench.demos.collect import CollectConfig, collect
from trex_bench.demos.policies import SCRIPTED, Demonstrator, NoopPolicy, RandomPolicy
from trex_bench.demos.store import merge_demo_sets
from trex_bench.rl.agent_io import SB3Policy
from trex_bench.rl.resume import list_checkpoints

if TYPE_CHECKING:
    from trex_bench.rl.config import PPOConfig

__all__ = [
    "Checkpoint",
    "list_checkpoints",
    "select_checkpoints",
    "demonstrator_config",
    "train_demonstrator",
    "collect_from_checkpoints",
    "make_demonstrator",
]

FINAL_AGENT = "agent.zip"


@dataclass(frozen=True)
class Checkpoint:
    """One policy of a demonstrator run: its index in the run (0 = first checkpoint), agent steps and file."""

    index: int
    steps: int
    path: Path


def select_checkpoints(ppo_dir: str | Path, count: int | None, skip: int = 0, final: bool = False) -> list[Checkpoint]:
    """The checkpoints ``skip`` … ``skip + count − 1`` of a run (``count`` None: all after ``skip``), and with
    ``final`` the run's final agent as one more (index = number of checkpoints).

    Raises:
        ValueError: the run has fewer checkpoints than asked, or no final agent when ``final``.
    """
    ppo_dir = Path(ppo_dir)
    have = list_checkpoints(ppo_dir / "checkpoints")
    stop = len(have) if count is None else skip + count
    if stop > len(have) or skip >= stop:
        raise ConfigError(f"{ppo_dir} has {len(have)} checkpoints; asked for {count or 'all'} after the first {skip}")
    chosen = [Checkpoint(i, steps, path) for i, (steps, path) in enumerate(have) if skip <= i < stop]
    if final:
        agent = ppo_dir / FINAL_AGENT
        if not agent.exists():
            raise ConfigError(f"{ppo_dir} has no final agent ({FINAL_AGENT}): the run did not finish")
        from trex_bench.core.io import read_json

        chosen.append(Checkpoint(len(have), int(read_json(ppo_dir / "card.json")["steps"]), agent))
    return chosen


def demonstrator_config(budget: str, checkpoints: int, checkpoint_every: int | None = None) -> PPOConfig:
    """The PPO config of a demonstrator run: ``budget``'s, a checkpoint every ``checkpoint_every`` steps (default:
    the budget split in checkpoints + 1), run on along its schedule where the checkpoints need more steps.

    A run on to the length of another named budget with the same schedule takes that budget's name (its card's and
    leaderboard row's ``budget``): Enduro's ``medium`` run on to 2.5M steps is a ``long`` run.
    """
    from trex_bench.experiment.budgets import BUDGETS, ppo_config

    cfg = ppo_config(budget)
    every = checkpoint_every or max(cfg.total_steps // (checkpoints + 1), cfg.n_envs * cfg.n_steps)
    total = every * checkpoints
    if total > cfg.total_steps:  # more checkpoints than the budget holds: the run goes on along its schedule
        cfg = cfg.replace(total_steps=total)
        mine = {"name": cfg.name, "source": cfg.source, "checkpoint_every": cfg.checkpoint_every}
        named = next((b.ppo for b in BUDGETS.values() if b.ppo.replace(**mine) == cfg), None)
        cfg = named or cfg.replace(source=f"{cfg.source}, run on to {total:,} steps for {checkpoints} checkpoints")
    return cfg.replace(checkpoint_every=every)


def train_demonstrator(
    game: str,
    ppo_dir: str | Path,
    budget: str,
    seed: int,
    checkpoints: int,
    checkpoint_every: int | None = None,
    profile: str = "paper",
    device: str = "cpu",
    progress: bool = True,
    precision: str = "fp32",
) -> Path:
    """Train PPO on the true reward into ``ppo_dir`` with at least ``checkpoints`` checkpoints (reused when the
    folder already holds a finished run, continued from its newest checkpoint when it holds an unfinished one);
    ``checkpoint_every`` defaults to the budget split in checkpoints + 1."""
    from trex_bench.rl.config import PPOJob
    from trex_bench.rl.ppo import train_ppo

    ppo_dir = Path(ppo_dir)
    if (ppo_dir / "card.json").exists():
        return ppo_dir
    cfg = demonstrator_config(budget, checkpoints, checkpoint_every)
    # A run cut off before its end (a session's end) goes on from its newest checkpoint (trex_bench.rl.resume).
    job = PPOJob(game, cfg, seed=seed, reward="true", profile=profile, precision=precision, device=device)
    return train_ppo(job, ppo_dir, progress=progress, resume=True)


def collect_from_checkpoints(
    game: str,
    checkpoints: list[Path] | list[Checkpoint],
    episodes_per_checkpoint: int,
    seed: int,
    profile: str = "paper",
    n_envs: int = 1,
    progress: bool = True,
    created_by: str = "",
    device: str = "cpu",
) -> DemoSet:
    """Record ``episodes_per_checkpoint`` stochastic episodes from each checkpoint; an episode's ``checkpoint`` is
    its policy's index in the run (a plain path list counts from 0); checkpoint ``i`` resets from ``seed + i``."""
    if not checkpoints:
        raise ConfigError("no checkpoints to collect from")
    items = [c if isinstance(c, Checkpoint) else Checkpoint(i, -1, Path(c)) for i, c in enumerate(checkpoints)]
    parts = []
    for c in items:
        cfg = CollectConfig(
            episodes=episodes_per_checkpoint,
            seed=seed + c.index,
            profile=profile,
            n_envs=min(n_envs, episodes_per_checkpoint),
            checkpoint=c.index,
        )
        parts.append(
            collect(game, SB3Policy(c.path, device=device, game=game), cfg, progress=progress, created_by=created_by)
        )
    return merge_demo_sets(parts)


def make_demonstrator(
    spec: str, game: Game, n_actions: int, rng: np.random.Generator, device: str = "cpu", trust_pickle: bool = False
) -> Demonstrator:
    """Build a demonstrator from its CLI spelling: ``random``, ``noop``, ``scripted``, ``sb3:PATH``, ``bc:DIR``.

    ``bc:DIR`` is a behaviour-cloned policy (``trex_bench.bc``), sampling from its softmax with ``rng``: the
    D-REX noise-injection demonstrator. ``trust_pickle`` lets ``sb3:PATH`` load a foreign zip (``SB3Policy``).

    Raises:
        ValueError: unknown spelling, no scripted policy for this game, an unloadable SB3 file or one of another
            game or action-set size, or a BC model of another game or action-set size.
    """
    if spec == "random":
        return RandomPolicy(n_actions, rng)
    if spec == "noop":
        return NoopPolicy()
    if spec == "scripted":
        if game.id not in SCRIPTED:
            raise ConfigError(f"no scripted demonstrator for {game.id}; scripted games: {', '.join(SCRIPTED)}")
        return SCRIPTED[game.id]()
    if spec.startswith("sb3:"):
        policy = SB3Policy(spec[4:], device=device, game=game.id, trust_pickle=trust_pickle)
        if policy.n_actions != n_actions:
            raise ConfigError(f"{spec[4:]}: an agent with {policy.n_actions} actions; {game.id} has {n_actions}")
        return policy
    if spec.startswith("bc:"):
        return load_bc(spec[3:], game=game.id, n_actions=n_actions, rng=rng, device=device)
    raise ConfigError(f"unknown demonstrator {spec!r}; use random, noop, scripted, sb3:PATH, bc:DIR or ppo")
