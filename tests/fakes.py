"""Small scripted fakes for wrapper tests (STYLE.md rule 15; SB3's ``common/envs/identity_env.py`` is the model)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn

from trex_bench.core.envs import OneObjectVecEnv


def stack(value: int) -> np.ndarray:
    """A uint8 [4, 84, 84] frame stack whose every pixel is ``value``."""
    return np.full((4, 84, 84), value, dtype=np.uint8)


class ScriptedVecEnv(OneObjectVecEnv):
    """A VecEnv that plays a script: step t returns stacks filled with ``values[t]`` (one per env).

    ``game_over[t][i]`` ends env i's game at step t, as ``AtariVecEnv`` does: ``done``, the reached stack in
    ``info["terminal_observation"]`` (filled with ``terminal[t][i]``) and the *next* game's first stack as the
    observation (filled with ``values[t][i]``), so the two differ. The true reward of every step is 1.
    """

    def __init__(self, values: list[list[int]], game_over: list[list[bool]] | None = None,
                 terminal: list[list[int]] | None = None, reset_value: int = 0) -> None:
        n = len(values[0])
        super().__init__(n, gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(4))
        self.values, self.reset_value = values, reset_value
        self.game_over = game_over or [[False] * n for _ in values]
        self.terminal = terminal or values
        self.t = 0

    def reset(self) -> np.ndarray:
        self.t = 0
        return np.stack([stack(self.reset_value)] * self.num_envs)

    def step_async(self, actions: np.ndarray) -> None:
        pass

    def step_wait(self) -> VecEnvStepReturn:
        t = self.t
        self.t += 1
        obs = np.stack([stack(v) for v in self.values[t]])
        dones = np.asarray(self.game_over[t], dtype=bool)
        infos: list[dict[str, Any]] = [{"game_over": bool(d)} for d in dones]
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = stack(self.terminal[t][i])
            infos[i]["episode"] = {"r": float(t + 1), "l": t + 1, "t": 0.0}
        return obs, np.ones(self.num_envs, dtype=np.float32), dones, infos

    def close(self) -> None:
        pass



class PixelValue(nn.Module):
    """A "reward model" whose r̂ of a stack is its first pixel's value (0–255), so a test can script r̂."""

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        return stacks[:, 0, 0, 0].float()


class BrightnessFrames:
    """A frame source (``reward.train.FrameSource``) where episode e shows a patch of brightness ∝ ``quality[e]``.

    The patch sits in rows no game masks, so a reward net can learn "brighter is better" in a few steps.
    """

    def __init__(self, quality: np.ndarray, length: int = 30, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.lengths = np.full(len(quality), length, dtype=np.int64)
        self.offsets = np.arange(len(quality), dtype=np.int64) * (length + 1)
        frames = rng.integers(0, 60, size=(len(quality) * (length + 1), 84, 84), dtype=np.uint8)
        level = np.repeat(np.asarray(quality), length + 1) * 180 + rng.uniform(-15, 15, size=len(frames))
        frames[:, 30:50, 30:50] = np.clip(level, 0, 255).astype(np.uint8)[:, None, None]
        self.frames = frames

    def stack_index(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        k = np.asarray(t)[:, None] + np.arange(-3, 1)[None, :]
        return np.where(k >= 0, self.offsets[np.asarray(ep)][:, None] + k, -1)
