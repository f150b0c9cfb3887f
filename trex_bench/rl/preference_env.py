"""How SB3's PPO meets the online preference loop (``trex_bench.rl.preference_loop``): the env wrapper that records
each step in the loop's clip store and pays its reward, and the callback that runs the loop at each rollout's end.

Both see the loop through :class:`PayingLoop`, the part of it they use, so a test can drive them with a fake loop.
"""

from __future__ import annotations

from collections import deque
from typing import Protocol

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from trex_bench.core.envs import fire_action
from trex_bench.core.errors import ConfigError
from trex_bench.core.games import Game
from trex_bench.reward.pref_ensemble import EnsembleNormalizer, PreferenceEnsemble
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.reward.segments import RolloutStore
from trex_bench.rl.wrappers import RewardReplacer

__all__ = ["PayingLoop", "PreferenceRewardVecEnv", "PreferenceCallback"]


class PayingLoop(Protocol):
    """What the wrapper and the callback use of ``PreferenceReward``."""

    game: Game
    cfg: PrefsConfig
    store: RolloutStore
    ensemble: PreferenceEnsemble
    normalizer: EnsembleNormalizer
    version: int
    deferred: bool  # True under PPO: each rollout is scored at its end, in one batch

    def grow(self, capacity: int) -> None: ...

    def update(
        self,
        step: int,
        rollout: RolloutBuffer | None = None,
        last_values: torch.Tensor | None = None,
        dones: np.ndarray | None = None,
    ) -> dict[str, float]: ...


class PreferenceRewardVecEnv(RewardReplacer):
    """Pays the normalised ensemble mean r̂(s′) and records each step in the loop's store (see the module)."""

    def __init__(self, venv: VecEnv, loop: PayingLoop) -> None:
        super().__init__(venv)
        self.loop = loop
        self._actions = np.zeros(self.num_envs, dtype=np.int64)
        self._games = np.zeros(self.num_envs, dtype=np.int64)  # game counters of an env that names no games
        self._started = False
        self.step_log: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=loop.store.capacity)

    def _starts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(seed, reset)`` of each env's game: ``AtariVecEnv.current_starts``, else (env index, game count)."""
        if hasattr(self.venv, "current_starts"):
            return self.venv.current_starts()
        return np.arange(self.num_envs), self._games.copy()

    def reset(self) -> np.ndarray:  # noqa: D102
        obs = self.venv.reset()
        self._games += int(self._started)
        self._started = True
        self.loop.store.start_games(np.ones(self.num_envs, dtype=bool), obs, *self._starts())
        return obs

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102
        self._actions = np.asarray(actions).reshape(self.num_envs).copy()
        self.venv.step_async(actions)

    def _reward(self, obs, true_r, dones, infos):  # noqa: D102
        loop = self.loop
        reached = obs
        if np.any(dones):
            reached = obs.copy()
            for i in np.flatnonzero(dones):
                reached[i] = infos[i]["terminal_observation"]
        if loop.deferred:  # scored at the rollout's end, in one batch, and written into PPO's buffer then
            rhat = np.full((loop.cfg.ensemble_size, self.num_envs), np.nan, dtype=np.float32)
            paid, version = np.zeros(self.num_envs, dtype=np.float32), -1
        else:
            rhat = loop.ensemble.score(reached)
            paid, version = loop.normalizer(rhat), loop.version
        acts = self._actions.copy()
        forced = [i for i, info in enumerate(infos) if info.get("forced_fire")]
        if forced:  # the action the game played (FIRE after a lost life), so the clip replays on the raw ALE
            acts[forced] = fire_action(loop.game.ale_id)
        heads = loop.store.record(reached[:, -1], true_r, rhat, acts, version)
        over = np.array([bool(info.get("game_over", d)) for info, d in zip(infos, dones, strict=True)])
        if over.any():  # a lost life (training env) ends the learner's episode, not the game or its clip
            self._games[over] += 1
            loop.store.start_games(over, obs, *self._starts())
        self.step_log.append((heads, paid))
        if not loop.deferred:
            for i, info in enumerate(infos):
                info["learned_reward"] = float(paid[i])
        return paid


class PreferenceCallback(BaseCallback):
    """Runs ``PreferenceReward.update`` at the end of every rollout and logs its metrics under ``prefs/``."""

    def __init__(self, loop: PayingLoop) -> None:
        super().__init__()
        self.loop = loop

    def _on_training_start(self) -> None:
        n_steps = getattr(self.model, "n_steps", None)
        if n_steps is not None:
            if n_steps < self.loop.cfg.segment_length:
                raise ConfigError(
                    f"PPO n_steps {n_steps} < segment_length {self.loop.cfg.segment_length}: no clip fits in a rollout"
                )
            # the rollout, the one before and the first stacks of the games begun in them
            self.loop.grow(4 * n_steps + self.loop.cfg.segment_length + 16)
            self.loop.deferred = True

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = getattr(self.model, "rollout_buffer", None)
        metrics = self.loop.update(
            self.model.num_timesteps, buffer, self.locals.get("values"), self.locals.get("dones")
        )
        for key, value in metrics.items():
            self.logger.record(f"prefs/{key}", value)
