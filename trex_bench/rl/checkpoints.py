"""Writing a PPO run's checkpoints: SB3's grid of ``ppo_N_steps.zip`` and the one a stopped run saves as it stops
(``ppo_N_steps.stop.zip``), each with an online reward's state beside it. ``rl.resume`` reads them back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from trex_bench.core.interrupts import StopRequest
from trex_bench.core.io import atomic_write
from trex_bench.rl.online import OnlineReward, state_folder
from trex_bench.rl.resume import STOP_SUFFIX, list_checkpoints, stop_checkpoint, updated_steps

__all__ = ["GridCheckpoints", "StopWhenAsked", "save_checkpoint"]


class GridCheckpoints(CheckpointCallback):
    """SB3's ``CheckpointCallback`` (its grid of ``ppo_N_steps.zip``), each written by ``save_checkpoint``."""

    def __init__(self, freq: int, folder: Path, online: OnlineReward | None) -> None:
        super().__init__(freq, str(folder), name_prefix="ppo")
        self.folder, self.online = folder, online

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            path = self.folder / f"ppo_{self.model.num_timesteps}_steps.zip"
            save_checkpoint(self.model, path, self.online)
            for steps, stop in list_checkpoints(self.folder, stops=True):  # a stop's before this is superseded
                if steps < self.model.num_timesteps and stop.name.endswith(STOP_SUFFIX):
                    shutil.rmtree(state_folder(stop), ignore_errors=True)
                    stop.unlink(missing_ok=True)
        return True


class StopWhenAsked(BaseCallback):
    """Stops ``learn`` at the first env step after a Ctrl-C or SIGTERM (``core.interrupts.stop_requests``), saving a
    checkpoint there first, so that ``resume`` loses none of the steps run (rl-zoo3 saves the model when training is
    interrupted, for the same reason). Inside a collection the weights, Adam state and an online reward's state are
    all those of the last finished update, so the run goes on from it exactly; a signal during an update waits for the
    update to end. No checkpoint where it would not move the resume point (no update finished since the run (re)started
    or since its newest checkpoint)."""

    def __init__(self, request: StopRequest, folder: Path, online: OnlineReward | None, done: int, rollout: int):
        super().__init__()
        self.request, self.folder, self.online, self.done, self.rollout = request, folder, online, done, rollout
        self.stopped = False

    def _on_step(self) -> bool:
        if self.request.signal is None:
            return True
        self.stopped = True
        steps = self.model.num_timesteps
        have = [updated_steps(s, self.rollout) for s, _ in list_checkpoints(self.folder, stops=True)]
        if updated_steps(steps, self.rollout) > max([self.done, *have]):
            save_checkpoint(self.model, stop_checkpoint(self.folder, steps), self.online)
        return False


def save_checkpoint(model: PPO, path: Path, online: OnlineReward | None) -> None:
    """The model's checkpoint ``path`` (a ``.zip``), written atomically, and an online reward's state beside it first
    (``state_folder``), so that a resumed run goes on with both. Nothing where ``path`` exists: a resumed run reaches
    the checkpoint it resumed from again (it goes on from the update before it), with the same weights; rewriting it
    would only risk tearing it."""
    if path.exists():
        return
    if online is not None:
        online.save(state_folder(path))
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".zip")
