"""GAIL's settings as data, torch-free (the CLI and ``trex_bench.experiment.config`` import them at start-up;
``rl.gail`` imports torch)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from trex_bench.core.errors import ConfigError

__all__ = ["GAILConfig"]


@dataclass(frozen=True)
class GAILConfig:
    """The discriminator's settings of a GAIL run (Ho & Ermon 2016; ``trex_bench.rl.gail``), recorded in its card.

    Attributes:
        epochs: passes over each PPO rollout's policy (s, a) pairs, each paired with as many fresh demo pairs.
        batch_size: (s, a) pairs per discriminator step, half demo (label 1), half policy (label 0).
        learning_rate: Adam's learning rate.
        label_smoothing: ε of two-sided label smoothing: targets 1 − ε (demo) and ε (policy), so the logit of an
            obvious policy pair stops near log(ε / (1 − ε)) instead of running to −∞ and the reward of every
            policy step to 0: the cure for a collapsing discriminator (``gail/reward_policy_vanished`` in TensorBoard
            rising towards 1). 0: plain binary cross-entropy, which did not collapse on Breakout (docs/gail.md).
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
