"""Writing a PPO run's checkpoints: SB3's grid of ``ppo_N_steps.zip`` and the interim ones between them
(``ppo_N_steps.interim.zip``: every few minutes, and where a stopped run stops), each with the state of what learns
beside the policy (an online reward, the KL history) in its ``state_folder``. ``rl.resume`` reads them back.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback

from trex_bench.core.interrupts import StopRequest
from trex_bench.core.io import atomic_write
from trex_bench.rl.online import state_folder
from trex_bench.rl.resume import INTERIM_SUFFIX, checkpoint_path, list_checkpoints, updated_steps

__all__ = [
    "INTERIM_EVERY_S",
    "CheckpointState",
    "GridCheckpoints",
    "InterimCheckpoints",
    "drop_interim",
    "save_checkpoint",
]

# A kill without warning (SIGKILL) costs at most this much training, plus the rollout being collected. A save takes
# well under a second (a 20 MB zip for the Nature CNN and its Adam state).
INTERIM_EVERY_S = 300.0


class CheckpointState(Protocol):
    """What a run keeps besides its policy and a resumed run needs back (an ``OnlineReward``, the KL history of
    ``rl.kl.KLToReferenceCallback``): saved into a checkpoint's ``state_folder`` before the checkpoint itself, loaded
    from there before the run goes on from it. Each writes only its own files in the folder."""

    def save(self, folder: Path) -> None: ...

    def load(self, folder: Path) -> None: ...


class GridCheckpoints(CheckpointCallback):
    """SB3's ``CheckpointCallback`` (its grid of ``ppo_N_steps.zip``), each written by ``save_checkpoint``; an
    interim checkpoint before it is then superseded and deleted."""

    def __init__(self, freq: int, folder: Path, states: Sequence[CheckpointState] = ()) -> None:
        super().__init__(freq, str(folder), name_prefix="ppo")
        self.folder, self.states = folder, states

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            save_checkpoint(self.model, checkpoint_path(self.folder, self.model.num_timesteps), self.states)
            drop_interim(self.folder, before=self.model.num_timesteps)
        return True


class InterimCheckpoints(BaseCallback):
    """Saves a checkpoint between the grid's ones, at an env step inside a collection, where the weights, Adam state
    and an online reward's state are all those of the last finished update (the run goes on from it exactly):

    - every ``every_s`` seconds of training, so that a kill without warning loses little (the grid's interval at
      ``long``, 250k steps, is ~20 minutes of one CPU core);
    - at the first step after a Ctrl-C or SIGTERM (``core.interrupts.stop_requests``), where it then stops ``learn``
      (rl-zoo3 saves the model when training is interrupted, for the same reason); a signal during an update waits
      for the update to end.

    Nothing where a checkpoint would not move the resume point (no update finished since the run (re)started or
    since its newest checkpoint). An interim checkpoint deletes the ones before it once written."""

    def __init__(
        self,
        request: StopRequest,
        folder: Path,
        states: Sequence[CheckpointState],
        done: int,
        rollout: int,
        every_s: float = INTERIM_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.request, self.folder, self.states, self.done, self.rollout = request, folder, states, done, rollout
        self.every_s, self.clock = every_s, clock
        self.last = clock()
        self.stopped = False

    def _on_step(self) -> bool:
        self.stopped = self.request.signal is not None
        if self.stopped or self.clock() - self.last >= self.every_s:
            self._save()
            self.last = self.clock()
        return not self.stopped

    def _save(self) -> None:
        steps = self.model.num_timesteps
        have = [updated_steps(s, self.rollout) for s, _ in list_checkpoints(self.folder, interim=True)]
        if updated_steps(steps, self.rollout) > max([self.done, *have]):
            save_checkpoint(self.model, checkpoint_path(self.folder, steps, interim=True), self.states)
            drop_interim(self.folder, before=steps)


def drop_interim(folder: Path, before: int | None = None) -> None:
    """Delete the interim checkpoints in ``folder`` (those before agent step ``before``; None: all) with their state
    folders."""
    for steps, path in list_checkpoints(folder, interim=True):
        if path.name.endswith(INTERIM_SUFFIX) and (before is None or steps < before):
            shutil.rmtree(state_folder(path), ignore_errors=True)
            path.unlink(missing_ok=True)


def save_checkpoint(model: PPO, path: Path, states: Sequence[CheckpointState] = ()) -> None:
    """The model's checkpoint ``path`` (a ``.zip``), written atomically, and the ``states`` beside it first
    (``state_folder``), so that a resumed run goes on with all of them. Nothing where ``path`` exists: a resumed run
    reaches the checkpoint it resumed from again (it goes on from the update before it), with the same weights;
    rewriting it would only risk tearing it."""
    if path.exists():
        return
    for state in states:
        state.save(state_folder(path))
    atomic_write(path, lambda tmp: model.save(tmp), suffix=".zip")
