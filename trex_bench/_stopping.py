"""The stop rules shared by the reward-net and BC trainers: validate every ``eval_every`` steps, stop after
``patience`` checks without improvement, or once ``max_seconds`` of wall time have passed."""

from __future__ import annotations

import time
from collections.abc import Callable


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
