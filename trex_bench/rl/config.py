"""PPO's settings as data, torch-free (the CLI and ``trex_bench.experiment.config`` import them at start-up;
``rl.ppo`` imports torch): the recipe (``PPOConfig``), the KL penalty (``KLSpec``) and one run (``PPOJob``)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.errors import ConfigError
from trex_bench.core.fields import check_fields, check_range
from trex_bench.core.games import get_game
from trex_bench.core.types import PRECISIONS, REWARD_TRANSFORMS

__all__ = ["PPOConfig", "KLSpec", "PPOJob", "linear_schedule_value"]


def linear_schedule_value(value: float, linear: bool, step: int, horizon: int) -> float:
    """A value annealed linearly from ``value`` at step 0 to 0 at ``horizon`` (constant when not ``linear``): what
    SB3's ``LinearSchedule(value, 0, horizon / total_steps)`` returns after ``step`` of ``total_steps`` steps."""
    if not linear:
        return float(value)
    return float(value) * max(0.0, 1.0 - step / horizon)


@dataclass(frozen=True)
class PPOConfig:
    """Every PPO setting of a run (recorded in the agent's card).

    Attributes:
        name: the budget/preset name.
        total_steps: agent steps (one step = 4 frames) summed over envs.
        n_envs: parallel envs.
        n_steps: rollout length per env per update.
        batch_size: minibatch size (SB3 ``batch_size``; baselines' nminibatches = n_envs·n_steps / batch_size).
        n_epochs: passes over each rollout.
        learning_rate: initial Adam learning rate; ``linear_lr`` anneals it to 0 over ``schedule_steps``.
        clip_range: initial PPO clip ε; ``linear_clip`` anneals it to 0 over ``schedule_steps``.
        schedule_steps: the horizon of those linear schedules: the full-length run of the preset this budget is a
            prefix of (rl-zoo3: 10M agent steps). A run of ``total_steps`` < ``schedule_steps`` is the first
            ``total_steps`` of that run, with the same lr and clip at every step (None: ``total_steps``, a run
            annealed over its own length).
        ent_coef, vf_coef, max_grad_norm, gamma, gae_lambda: as in SB3/baselines.
        checkpoint_every: save a checkpoint every this many agent steps (0: none).
        max_seconds: an opt-in safety valve, never set by a budget: stop after this much training wall time
            (None: none). A run it stops depends on the machine's load; the card and the leaderboard row say so.
        source: where the values come from.
    """

    name: str
    total_steps: int
    n_envs: int = 8
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 2.5e-4
    linear_lr: bool = True
    clip_range: float = 0.1
    linear_clip: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    schedule_steps: int | None = None
    checkpoint_every: int = 0
    max_seconds: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_fields(self)  # types first: a config file's "many" or NaN is named, not compared
        for name in ("total_steps", "n_envs", "n_steps", "batch_size", "n_epochs"):
            check_range(self, name, 1)
        for name in ("learning_rate", "clip_range", "max_grad_norm", "max_seconds"):
            check_range(self, name, 0, open_lo=True)
        for name in ("ent_coef", "vf_coef", "checkpoint_every"):
            check_range(self, name, 0)
        check_range(self, "gamma", 0, 1, open_lo=True)
        check_range(self, "gae_lambda", 0, 1)
        if self.batch_size > self.n_envs * self.n_steps:
            raise ConfigError(
                f"PPOConfig {self.name!r}: batch_size {self.batch_size} > rollout {self.n_envs * self.n_steps}"
            )
        if self.schedule_steps is not None and self.schedule_steps < self.total_steps:
            raise ConfigError(
                f"PPOConfig {self.name!r}: schedule_steps {self.schedule_steps} < total_steps "
                f"{self.total_steps} (a budget is a prefix of a longer run, never more)"
            )

    @property
    def horizon(self) -> int:
        """Agent steps over which lr and clip anneal to 0."""
        return self.schedule_steps if self.schedule_steps is not None else self.total_steps

    def lr_at(self, step: int) -> float:
        """The learning rate in force after ``step`` agent steps (what SB3's schedule returns there)."""
        return linear_schedule_value(self.learning_rate, self.linear_lr, step, self.horizon)

    def clip_at(self, step: int) -> float:
        """The clip range in force after ``step`` agent steps."""
        return linear_schedule_value(self.clip_range, self.linear_clip, step, self.horizon)

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class KLSpec:
    """The RLHF penalty r − β·(log π_θ(a|s) − log π_0(a|s)) on PPO's reward (Ziegler et al. 2019; Ouyang et al.
    2022): the reference π_0 (a BC policy folder, or any object with ``log_prob(obs, actions)``) and β > 0.

    No penalty is ``None``, never β = 0.
    """

    to: Any
    beta: float

    def __post_init__(self) -> None:
        if self.to is None:
            raise ConfigError("the KL penalty needs a reference policy (--kl-to, a BC model folder)")
        if isinstance(self.to, str):
            object.__setattr__(self, "to", Path(self.to))
        if not isinstance(self.to, Path) and not callable(getattr(self.to, "log_prob", None)):
            raise ConfigError(f"KLSpec.to must be a BC model folder or a policy with log_prob, got {self.to!r}")
        if isinstance(self.beta, bool) or not (
            isinstance(self.beta, int | float) and math.isfinite(self.beta) and self.beta > 0
        ):
            raise ConfigError(f"--kl-beta must be a finite number > 0 with --kl-to, got {self.beta!r}")


# The rewards ``train_ppo`` knows by name; anything else is a reward-model folder.
NAMED_REWARDS = ("true", "constant", "online")


@dataclass(frozen=True)
class PPOJob:
    """One PPO run as data, validated once: what it plays, what it is paid, the recipe, the seed and the numerics.

    Attributes:
        game: game id (made canonical here).
        cfg: the PPO recipe (``trex_bench.experiment.budgets.ppo_config`` builds a budget's).
        seed: seeds SB3 (policy init, action sampling) and the env's per-episode reset seeds.
        reward: ``"true"`` (the sign-clipped score, as the papers' PPO), ``"constant"`` (1 per step: the survival
            control), ``"online"`` (a reward that learns during PPO, passed to ``train_ppo`` as an object), or a
            reward-model folder.
        transform: how PPO sees a reward model's r̂ (``trex_bench.rl.wrappers``): ``sigmoid`` (the papers), ``raw``,
            ``normalized``, ``delta``.
        profile: env profile (a name of ``core.envs.PROFILES`` or an ``EnvProfile``, checked by ``train_ppo``); a
            reward model must have been trained under it.
        kl: the KL penalty to a reference policy, or None.
        precision: the policy trunk's numerics: ``fp32``, ``bf16`` or ``auto`` (``trex_bench.rl.precision``).
        device: torch device of the policy and the reward model.
        channels_last: NHWC convolutions; None: on for a CPU device, off elsewhere.

    >>> PPOJob("Breakout", PPOConfig("t", total_steps=64, n_envs=2, n_steps=16, batch_size=16)).game
    'breakout'
    """

    game: str
    cfg: PPOConfig
    seed: int = 0
    reward: str | Path = "true"
    transform: str = "sigmoid"
    profile: Any = "paper"  # a profile name, or a ``core.envs.EnvProfile``
    kl: KLSpec | None = None
    precision: str = "fp32"
    device: str = "cpu"
    channels_last: bool | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "game", get_game(self.game).id)
        if not isinstance(self.reward, Path) and self.reward not in NAMED_REWARDS:
            object.__setattr__(self, "reward", Path(self.reward))
        if self.transform not in REWARD_TRANSFORMS:
            raise ConfigError(f"unknown reward transform {self.transform!r}; valid: {', '.join(REWARD_TRANSFORMS)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")

    @property
    def learned(self) -> bool:
        """Whether PPO is paid by a reward-model folder (the transforms apply to it alone)."""
        return isinstance(self.reward, Path)

    def replace(self, **changes: Any) -> PPOJob:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
