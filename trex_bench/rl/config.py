"""PPO's and GAIL's settings as data, torch-free (the CLI and ``trex_bench.experiment.config`` import them at start-up;
``rl.ppo`` imports torch)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from trex_bench.core.errors import ConfigError

__all__ = ["PPOConfig", "GAILConfig", "linear_schedule_value"]


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
        if min(self.total_steps, self.n_envs, self.n_steps, self.batch_size, self.n_epochs) < 1:
            raise ConfigError(f"PPOConfig {self.name!r}: steps, envs, batch size and epochs must be >= 1")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ConfigError(
                f"PPOConfig {self.name!r}: batch_size {self.batch_size} > rollout {self.n_envs * self.n_steps}"
            )
        if self.schedule_steps is not None and self.schedule_steps < self.total_steps:
            raise ConfigError(
                f"PPOConfig {self.name!r}: schedule_steps {self.schedule_steps} < total_steps "
                f"{self.total_steps} (a budget is a prefix of a longer run, never more)"
            )
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"PPOConfig {self.name!r}: max_seconds must be > 0, got {self.max_seconds}")

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
class GAILConfig:
    """The discriminator's settings of a GAIL run (Ho & Ermon 2016; ``trex_bench.rl.gail``), recorded in its card.

    Attributes:
        epochs: passes over each PPO rollout's policy (s, a) pairs, each paired with as many fresh demo pairs.
        batch_size: (s, a) pairs per discriminator step, half demo (label 1), half policy (label 0).
        learning_rate: Adam's learning rate.
        label_smoothing: ε of two-sided label smoothing: targets 1 − ε (demo) and ε (policy), so the logit of an
            obvious policy pair stops near log(ε / (1 − ε)) instead of running to −∞ and the reward of every policy
            step to 0: the cure for a collapsing discriminator (``gail/reward_policy_vanished`` in TensorBoard rising
            towards 1). 0: plain binary cross-entropy, which did not collapse on Breakout (docs/gail.md).
        arch: the reward net's trunk under the discriminator (``"trex"``: 16 first-conv filters, ``"drex"``: 32).
        state_only: D(s) without the action: the observation-only variant (T-REX and D-REX learn from
            observations alone); False is Ho & Ermon's D(s, a).
        heldout_fraction: share of the demo pairs held out of training, in whole chunks of ``heldout_chunk``
            consecutive steps (neighbouring frames are near copies: a held-out frame next to a trained one would
            flatter the accuracy).
        heldout_chunk: steps per held-out chunk.
        heldout_size: demo pairs and newest-rollout pairs scored for the held-out accuracy (each side at most).
    """

    epochs: int = 2  # imitation's AdversarialTrainer: n_disc_updates_per_round = 2 over the newest round's samples
    batch_size: int = 256  # our choice (= the rl-zoo3 PPO minibatch); balanced halves as imitation's demo_batch_size
    learning_rate: float = 1e-4  # our choice: D-REX's BC classifier (Adam 1e-4) on the same stacks; imitation: 1e-3
    label_smoothing: float = 0.0  # Ho & Ermon, imitation: plain BCE; no collapse measured without it (docs/gail.md)
    arch: str = "trex"  # T-REX's reward net (PAPERS.md "Reward net"): the trunk the learned rewards use
    state_only: bool = False  # Ho & Ermon 2016: D(s, a)
    heldout_fraction: float = 0.1  # our choice
    heldout_chunk: int = 50  # our choice: T-REX's shortest snippet (PAPERS.md, L in [50, 100))
    heldout_size: int = 512  # our choice: ±2.2 % standard error of an accuracy near 50 %

    def __post_init__(self) -> None:
        if min(self.epochs, self.heldout_chunk, self.heldout_size) < 1:
            raise ConfigError("GAILConfig: epochs, heldout_chunk and heldout_size must be >= 1")
        if self.batch_size < 2 or self.batch_size % 2:
            raise ConfigError(
                f"GAILConfig: batch_size must be even and >= 2 (half demo, half policy), got {self.batch_size}"
            )
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ConfigError(f"GAILConfig: learning_rate must be a finite number > 0, got {self.learning_rate}")
        if not 0.0 <= self.label_smoothing < 0.5:
            raise ConfigError(f"GAILConfig: label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        if self.arch not in ("trex", "drex"):
            raise ConfigError(f"GAILConfig: arch must be 'trex' or 'drex', got {self.arch!r}")
        if not 0.0 < self.heldout_fraction < 1.0:
            raise ConfigError(f"GAILConfig: heldout_fraction must be in (0, 1), got {self.heldout_fraction}")

    def replace(self, **changes: Any) -> GAILConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
