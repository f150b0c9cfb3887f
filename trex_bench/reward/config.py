"""The reward trainer's settings as data, torch-free (the CLI and ``trex_bench.experiment.config`` import it at
start-up)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from trex_bench.core.errors import ConfigError
from trex_bench.core.fields import check_fields, check_range

__all__ = ["TrainConfig"]

# Options that change nothing while at these values: a config's run-folder key leaves them out there, so a default
# config has one key whichever of them the trainer knows.
_KEY_SILENT_DEFAULTS: dict[str, Any] = {"validation": "episodes", "bootstrap": False}


@dataclass(frozen=True)
class TrainConfig:
    """Everything the reward trainer does, as data. ``trex_bench.experiment.budgets.reward_config`` builds the presets.

    Attributes:
        method: ``"trex"`` or ``"drex"`` (net width: 16 or 32 first-conv filters).
        n_pairs: snippet pairs drawn (train + validation).
        min_len, max_len: snippet span in observations, before the stride.
        stride: frame subsampling inside a snippet.
        whole_trajectory: Enduro-style whole-episode pairs instead of snippets.
        lr, weight_decay: Adam settings.
        batch_pairs: pairs per optimiser step.
        passes: epochs over the training pairs.
        max_steps: a cap on optimiser steps (None = none).
        max_seconds: an opt-in wall-time valve, never set by a budget (None = none): a run it stops depends on the
            machine's load, and its metrics say so (``stopped``).
        val_frac: share of *episode pairs* held out for validation (``validation="episodes"``), or of the pairs drawn
            for validation (``validation="latest"``).
        validation: what the kept weights are judged on. ``episodes``: snippet pairs of a ``val_frac`` share of the
            demos' episode pairs, never trained on. ``latest``: the latest demo checkpoint's episode(s) are held out
            of training (training pairs only among the other episodes); validation pairs set a held-out episode
            against a training one, labelled by the ranking (the later-is-better prior of a checkpoint demo set,
            Jacq et al. 2019). Needs every episode's checkpoint number.
        bootstrap: each ensemble member trains on its own bootstrap resample (with replacement) of the training
            pairs, as Christiano et al. 2017 (§2.2.3) train their ensemble of predictors; the model's r(s) is the
            members' mean (``RewardEnsemble``).
        eval_every: steps between validation-accuracy checks.
        patience: checks without improvement before early stopping (0 = never stop early).
        select: which weights are kept: ``val_accuracy`` (the best validation pair accuracy, ties broken by loss),
            ``val_loss`` (the lowest validation loss: keeps training while the margins still grow, after the
            accuracy on easy pairs has saturated) or ``last`` (the final weights, as the released T-REX code).
        bf16: bfloat16 autocast for the forward pass.
        channels_last: NHWC memory format for the convolutions.
        ensemble: number of independently initialised nets.
    """

    method: Literal["trex", "drex"] = "trex"
    n_pairs: int = 6000  # T-REX §5.1: 6000 snippet pairs
    min_len: int = 50  # T-REX §5.1: snippet length 50–100
    max_len: int = 100
    stride: int = 2  # T-REX released code: every 2nd observation
    whole_trajectory: bool = False
    lr: float = 5e-5  # T-REX released code: Adam lr 5e-5, no weight decay
    weight_decay: float = 0.0
    batch_pairs: int = 32  # docs/measurements.md "Reward trainer"; benchmarks/reward_train_speed.py
    passes: float = 5.0  # T-REX released code: 5 passes over the pairs
    max_steps: int | None = None
    max_seconds: float | None = None
    val_frac: float = 0.1
    eval_every: int = 25
    patience: int = 8
    select: Literal["val_accuracy", "val_loss", "last"] = "val_accuracy"
    bf16: bool = False  # slower on CPUs without native bf16 kernels (docs/measurements.md "Reward trainer")
    channels_last: bool = True  # ~2× faster at batch 32 on 2 CPU cores (docs/measurements.md "Reward trainer")
    ensemble: int = 1
    # The default judge and a single net, as the released T-REX code (one net, no bootstrap) and as measured on the
    # eight games' checkpoint splits against "latest" and a 3-net bootstrap ensemble: results/tables/reward-choice.md.
    validation: Literal["episodes", "latest"] = "episodes"
    bootstrap: bool = False

    def __post_init__(self) -> None:
        check_fields(self)  # types first: a config file's "many" or NaN is named, not compared
        for name in ("n_pairs", "min_len", "stride", "batch_pairs", "eval_every", "ensemble", "max_steps"):
            check_range(self, name, 1)
        if self.max_len <= self.min_len:
            raise ConfigError(f"TrainConfig needs min_len < max_len, got {self.min_len}, {self.max_len}")
        for name in ("lr", "passes", "max_seconds"):
            check_range(self, name, 0, open_lo=True)
        check_range(self, "weight_decay", 0)
        check_range(self, "patience", 0)
        if not 0.0 <= self.val_frac < 1.0:  # 0: no validation (the last weights are kept)
            raise ConfigError(f"TrainConfig.val_frac must be in [0, 1), got {self.val_frac!r}")
        if self.validation == "latest" and self.val_frac <= 0:
            raise ConfigError(
                "TrainConfig.validation 'latest' needs val_frac > 0 (the share of pairs drawn to validate)"
            )

    def key(self) -> dict[str, Any]:
        """The config as a run folder's key: every field, less the options of ``_KEY_SILENT_DEFAULTS`` at those values.

        >>> "bootstrap" in TrainConfig().key(), TrainConfig(bootstrap=True).key()["bootstrap"]
        (False, True)
        """
        return {k: v for k, v in asdict(self).items() if k not in _KEY_SILENT_DEFAULTS or v != _KEY_SILENT_DEFAULTS[k]}
