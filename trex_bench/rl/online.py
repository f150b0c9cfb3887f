"""The seam for rewards that learn while PPO runs: GAIL's discriminator, the online preference loop.

A reward fitted once before PPO (T-REX, D-REX) is a frozen net behind ``LearnedRewardVecEnv``. An *online* reward
changes between rollouts: it pays PPO through a ``VecEnvWrapper`` (the same seam as every other reward, so the true
score stays in ``info``) and learns in an SB3 callback that runs at the end of each rollout, on the states the agent
just visited. imitation's ``AdversarialTrainer`` and ``PreferenceComparisons`` have the same two parts (a reward
wrapper and a trainer between rollouts); here ``train_ppo`` takes one object that supplies both, saves its state
beside each PPO checkpoint so that a resumed run goes on with the reward it had, and adds its facts to the card.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

__all__ = ["OnlineReward", "state_folder"]


@runtime_checkable
class OnlineReward(Protocol):
    """A reward that learns during PPO.

    ``train_ppo`` calls ``wrap`` once on the training env, adds ``callback()`` to PPO's callbacks, calls ``save``
    next to every checkpoint and at the end, ``load`` before it goes on from a checkpoint, and merges ``card()``
    into the agent's card under ``"online_reward"``.
    """

    name: str

    def wrap(self, venv: VecEnv) -> VecEnv:
        """The env PPO trains on: ``venv`` with its reward replaced by the current learned reward."""
        ...

    def callback(self) -> BaseCallback:
        """What learns between rollouts (``_on_rollout_end``); it may log to SB3's logger (TensorBoard)."""
        ...

    def save(self, folder: Path) -> None:
        """Write everything a resumed run needs (nets, optimiser state, data indices, counters) into ``folder``."""
        ...

    def load(self, folder: Path) -> None:
        """Restore what ``save`` wrote; raise ``DataError`` naming ``folder`` when it is missing or corrupt."""
        ...

    def card(self) -> dict[str, Any]:
        """JSON-able facts for the agent card (e.g. discriminator accuracy, labels used)."""
        ...


def state_folder(checkpoint_zip: Path) -> Path:
    """Where the online reward's state of a PPO checkpoint lives: ``<run>/checkpoints/ppo_N_steps.online/``.

    >>> state_folder(Path("agent/checkpoints/ppo_2048_steps.zip")).as_posix()
    'agent/checkpoints/ppo_2048_steps.online'
    """
    return checkpoint_zip.with_suffix(".online")
