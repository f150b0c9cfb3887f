"""Progress bars for long work: live on a terminal, one line every ``LOG_INTERVAL_S`` seconds in a log file.

Plain ``tqdm`` (a core dependency), never SB3's ``progress_bar=True``: that one imports ``tqdm.rich`` and ``rich``,
which SB3 only brings with its ``[extra]`` and which a fresh install of this package did not have (the quickstart
died at the PPO stage). ``PPOProgress`` is the SB3 callback that drives the same bar.
"""

from __future__ import annotations

import sys
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from tqdm.auto import tqdm

__all__ = ["progress_bar", "PPOProgress", "LOG_INTERVAL_S"]

LOG_INTERVAL_S = 30.0  # a redirected bar writes a line at most this often (tqdm writes on every update otherwise)


def progress_bar(total: int | None, desc: str, unit: str, enabled: bool = True) -> Any:
    """A tqdm bar on stderr: refreshed twice a second on a terminal, every ``LOG_INTERVAL_S`` s when redirected."""
    tty = sys.stderr.isatty()
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        disable=not enabled,
        mininterval=0.5 if tty else LOG_INTERVAL_S,
        dynamic_ncols=tty,
    )


class PPOProgress(BaseCallback):
    """SB3 callback: a ``progress_bar`` of agent steps over one ``learn`` call."""

    def __init__(self, total_steps: int, desc: str = "ppo") -> None:
        super().__init__()
        self.total_steps, self.desc = total_steps, desc
        self._bar: Any = None

    def _on_training_start(self) -> None:
        self._bar = progress_bar(self.total_steps, self.desc, "step")

    def _on_step(self) -> bool:
        self._bar.update(self.training_env.num_envs)
        return True

    def _on_training_end(self) -> None:
        self._bar.close()
