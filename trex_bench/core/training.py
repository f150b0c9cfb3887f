"""Training helpers shared by the reward-net and BC trainers: seeded default init and the stop rule."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn


def default_init_(net: nn.Module, generator: torch.Generator) -> nn.Module:
    """Re-initialise every conv/linear layer as PyTorch's default does (Kaiming-uniform, a=√5; bias uniform in
    ±1/√fan_in), but drawing from ``generator`` instead of the global RNG; returns ``net``."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                bound = 1.0 / math.sqrt(m.weight[0].numel())
                m.bias.uniform_(-bound, bound, generator=generator)
    return net


class StopRule:
    """Counts checks since the last improvement and says when (and why) a training loop should stop.

    >>> rule = StopRule(eval_every=2, patience=1, max_seconds=None, no_gain="validation gain")
    >>> rule.record(improved=True)
    >>> rule.after_step(1, check=lambda step: rule.record(improved=False)) is None
    True
    >>> rule.after_step(2, check=lambda step: rule.record(improved=False))
    'early stop at step 2: no validation gain for 1 checks'
    """

    def __init__(self, eval_every: int, patience: int, max_seconds: float | None, no_gain: str) -> None:
        self.eval_every, self.patience, self.max_seconds, self.no_gain = eval_every, patience, max_seconds, no_gain
        self.since_best = 0
        self.t0 = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def record(self, improved: bool) -> None:
        """Called by the check after each validation."""
        self.since_best = 0 if improved else self.since_best + 1

    def after_step(self, step: int, check: Callable[[int], None]) -> str | None:
        """Run ``check(step)`` when a validation is due; the reason to stop now, or None."""
        if step % self.eval_every == 0:
            check(step)
            if self.patience and self.since_best >= self.patience:
                return f"early stop at step {step}: no {self.no_gain} for {self.patience} checks"
        if self.max_seconds is not None and self.elapsed() > self.max_seconds:
            return f"time cap {self.max_seconds:g} s at step {step}"
        return None
