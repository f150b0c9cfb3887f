"""The online preference loop's settings and its label schedule, torch-free (Christiano et al. 2017).

Christiano, Leike, Brown, Martic, Legg, Amodei, "Deep RL from Human Preferences" (NeurIPS 2017, arXiv 1706.03741)
is cited by section: §2.2.3 (fitting r̂), §2.2.4 (queries), §3.1.2 (Atari), App. A (all tasks), A.2 (Atari).
One agent step is 4 frames here (frameskip 4, ``core.envs``); the paper states its Atari schedule in frames.

The schedule (``labels_due``): a first batch of labels from the untrained policy, then labels at a rate
∝ T₀ / (T + T₀) over agent steps T (A.2: "roughly proportional to 5·10⁶ / (T + 5·10⁶)" frames; App. A:
"after twice as many timesteps have elapsed, we answer about half as many queries per unit time"). Integrated, the count
due by step T is  n₀ + (N − n₀) · ln(1 + T/T₀) / ln(1 + H/T₀), which spends the budget N exactly at the run's
horizon H.

>>> cfg = PrefsConfig(horizon_steps=1_000_000, total_labels=1000, initial_share=0.1)
>>> cfg.labels_due(0), cfg.labels_due(1_000_000)
(100, 1000)
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from trex_bench.core.errors import ConfigError

__all__ = ["PrefsConfig", "labels_due"]


def labels_due(step: int, total: int, initial: int, t0: float, horizon: int) -> int:
    """How many labels should have been asked for by agent step ``step``.

    Args:
        step: agent steps taken so far (T ≥ 0).
        total: the run's label budget N.
        initial: labels asked before PPO's first update (n₀ ≤ N), from the untrained policy.
        t0: T₀ of the rate T₀ / (T + T₀), in agent steps.
        horizon: the run's length H in agent steps; the whole budget is due by then.

    Returns:
        n₀ + ⌊(N − n₀) · ln(1 + T/T₀) / ln(1 + H/T₀)⌋, capped at N (T ≥ H gives N).

    >>> [labels_due(t, 100, 10, 50, 100) for t in (0, 50, 100, 200)]
    [10, 66, 100, 100]
    """
    if not 0 <= initial <= total or t0 <= 0 or horizon < 1:
        raise ConfigError(
            f"labels_due: need 0 <= initial <= total, t0 > 0, horizon >= 1 (got {initial}, {total}, {t0}, {horizon})"
        )
    if step >= horizon:
        return total
    share = math.log1p(max(step, 0) / t0) / math.log1p(horizon / t0)
    # a hair of slack so a share that is an integer in exact arithmetic is not floored one below by rounding
    return min(total, initial + math.floor((total - initial) * share + 1e-9))


@dataclass(frozen=True)
class PrefsConfig:
    """Everything the online preference loop does, as data (recorded in the agent's card).

    Attributes:
        horizon_steps: the PPO run's total agent steps: the label budget is spent by then (set it from
            ``PPOConfig.total_steps``).
        segment_length: agent steps per clip.
        ensemble_size: reward nets, each fitted on its own bootstrap of the labels.
        candidates_factor: candidate pairs sampled per query asked; the most disputed ones are asked.
        total_labels: the run's label budget.
        initial_share: share of ``total_labels`` asked at the first rollout's end, before PPO's first update.
        t0_steps: T₀ of the label rate T₀ / (T + T₀), in agent steps.
        label_noise: the synthetic oracle's error rate: a strict preference is flipped with this probability.
        random_response: the preference model's chance that a labeler answers at random:
            P̂ = (1 − ε)·softmax + ε/2.
        pretrain_epochs: passes over the first labels before PPO's first update.
        train_pairs_per_step: pairs each net trains on per agent step after that (the predictor's fixed rate).
        label_buffer: only the newest this many labels are trained on.
        lr, weight_decay, batch_pairs: Adam and minibatch settings of each net.
        reward_std: the standard deviation of the normalised reward PPO is paid (its mean is 0).
        recent_steps: frames per env kept in memory for clips (grown to hold the last rollouts PPO collects).
        accuracy_window: answered queries over which the held-out accuracy is reported.
        arch: the reward net (``trex``: Christiano et al.'s Atari predictor without batch norm and dropout).
    """

    horizon_steps: int
    segment_length: int = 25  # A.2: "trajectory segments of 25 timesteps"
    ensemble_size: int = 3  # App. A: "an ensemble of 3 predictors"
    candidates_factor: int = 10  # App. A: "a factor 10 more clip pair candidates than we ultimately present"
    total_labels: int = 5500  # §3.1.2: 5,500 queries to a human rater on Atari
    initial_share: float = 500 / 5500  # A.2: "500 comparisons from a randomly initialized policy network"
    t0_steps: float = 1_250_000  # A.2: rate ∝ 5·10⁶/(T + 5·10⁶) frames; 4 frames per agent step
    label_noise: float = 0.0  # §3.1: the synthetic oracle prefers the clip with the higher true reward
    random_response: float = 0.1  # §2.2.3: "a 10% chance that the human responds uniformly at random"
    pretrain_epochs: float = 200  # App. A: Atari "pretrain the reward predictor for 200 epochs"
    train_pairs_per_step: float = 0.1  # A.2: the predictor "typically processes 1 label per 10 RL timesteps"
    label_buffer: int = 3000  # A.2: "a buffer of only the last 3,000 labels"
    lr: float = 1e-3  # imitation's CrossEntropyRewardTrainer (the paper gives none)
    weight_decay: float = 0.0  # T-REX / imitation default (the paper's adaptive L2 is not implemented)
    batch_pairs: int = 32  # imitation's CrossEntropyRewardTrainer batch_size
    reward_std: float = 0.05  # A.2: "we normalize it to have a standard deviation of 0.05"
    recent_steps: int = 256  # ours: two rl-zoo3 rollouts (n_steps 128) per env
    accuracy_window: int = 500  # ours
    arch: str = "trex"  # A.2's predictor is the T-REX conv stack (PAPERS.md "Reward net")

    def __post_init__(self) -> None:
        positive_ints = (
            "horizon_steps",
            "segment_length",
            "ensemble_size",
            "candidates_factor",
            "total_labels",
            "label_buffer",
            "batch_pairs",
            "accuracy_window",
        )
        for name in positive_ints:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"PrefsConfig.{name} must be an integer >= 1, got {value!r}")
        checks = [
            ("initial_share", 0 <= self.initial_share <= 1, "in [0, 1]"),
            ("t0_steps", self.t0_steps > 0, "> 0"),
            ("label_noise", 0 <= self.label_noise <= 0.5, "in [0, 0.5]"),
            ("random_response", 0 <= self.random_response < 1, "in [0, 1)"),
            ("pretrain_epochs", self.pretrain_epochs >= 0, ">= 0"),
            ("train_pairs_per_step", self.train_pairs_per_step >= 0, ">= 0"),
            ("lr", self.lr > 0, "> 0"),
            ("weight_decay", self.weight_decay >= 0, ">= 0"),
            ("reward_std", self.reward_std > 0, "> 0"),
            ("recent_steps", self.recent_steps >= self.segment_length + 4, ">= segment_length + 4"),
        ]
        for name, ok, want in checks:
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and ok):
                raise ConfigError(f"PrefsConfig.{name} must be {want}, got {value!r}")
        if self.arch not in ("trex", "drex"):
            raise ConfigError(f"PrefsConfig.arch must be 'trex' or 'drex', got {self.arch!r}")

    @property
    def initial_labels(self) -> int:
        """Labels asked at the first rollout's end (from the untrained policy)."""
        return round(self.total_labels * self.initial_share)

    def labels_due(self, step: int) -> int:
        """Labels that should have been asked for by agent step ``step`` (``labels_due``)."""
        return labels_due(step, self.total_labels, self.initial_labels, self.t0_steps, self.horizon_steps)

    def replace(self, **changes: Any) -> PrefsConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)
