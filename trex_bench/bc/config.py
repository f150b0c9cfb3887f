"""The behaviour-cloning recipe (D-REX's BC, Brown, Goo, Niekum 2019), as data."""

from __future__ import annotations

from dataclasses import dataclass

from trex_bench.core.errors import ConfigError
from trex_bench.core.fields import check_fields, check_range

__all__ = ["BCConfig"]


@dataclass(frozen=True)
class BCConfig:
    """The BC training recipe, as data (``trex_bench.experiment.budgets.bc_config`` builds the presets).

    Attributes:
        lr: Adam learning rate.
        batch_size: (observation, action) pairs per step.
        max_steps: cap on optimiser steps.
        eval_every: steps between validation checks.
        patience: checks without a lower validation loss before stopping (0 = never stop early).
        val_frac: share of *episodes* held out (at least one episode).
        max_val_samples: cap on held-out pairs scored per check (a fixed random subset, for speed).
        max_seconds: wall-clock cap (None = none).
        weight_decay: Adam weight decay.
        channels_last: NHWC memory format for the convolutions while training.
    """

    lr: float = 1e-4  # D-REX (Brown et al. 2019) BC: Adam, lr 1e-4
    batch_size: int = 32  # D-REX BC: batch 32
    max_steps: int = 100_000
    eval_every: int = 1000
    patience: int = 5
    val_frac: float = 0.2
    max_val_samples: int = 5000
    max_seconds: float | None = None
    weight_decay: float = 0.0
    # Measured on 2 shared CPU cores (torch 2.13, batch 32, Adam step incl. backward): 86 ms NCHW vs 40 ms
    # channels_last on 1 thread, 108 vs 23 ms on 2 threads.
    channels_last: bool = True

    def __post_init__(self) -> None:
        check_fields(self)  # types first: a config file's "many" or NaN is named, not compared
        for name in ("batch_size", "max_steps", "eval_every", "max_val_samples"):
            check_range(self, name, 1)
        for name in ("lr", "max_seconds"):
            check_range(self, name, 0, open_lo=True)
        if not 0.0 < self.val_frac < 1.0:
            raise ConfigError(f"BCConfig.val_frac must be in (0, 1), got {self.val_frac!r}")
        check_range(self, "patience", 0)
        check_range(self, "weight_decay", 0)
