"""Reward-replacing ``VecEnvWrapper``s for PPO: learned reward, constant reward, clipped true reward.

Each wrapper does one job (STYLE.md rule 7): it swaps the reward PPO sees and never loses the truth. The true
per-step reward is kept in ``info["true_reward"]``; ``info["episode"]`` comes from ``AtariVecEnv``, the monitor
*below* every wrapper, so it always holds the true full-game score (PAPERS.md pitfalls).

The learned reward of a transition is r̂ of the frame stack it reaches. For an env whose episode just ended the
stack returned by ``step`` already belongs to the next episode, so the wrapper scores
``info["terminal_observation"]`` instead. All envs are scored in one batched forward pass (STYLE.md rule 5).

Transforms (``transform=``), each one small piece of ``_reward``:

* ``sigmoid``: σ(r̂), what T-REX/D-REX fed to PPO (their ``custom_reward_wrapper``).
* ``raw``: r̂ itself.
* ``normalized``: r̂ / σ_R, divided by a running standard deviation of the *discounted return*
  R_t = γ·R_{t−1} + r̂_t (reset at every episode end; γ = 0.99) and clipped to ±``clip``; the mean is **not**
  subtracted. This is what Gymnasium's ``NormalizeReward`` wrapper and SB3's ``VecNormalize(norm_reward=True)`` do
  (see openai/baselines#538 for why: subtracting a running mean of r̂ shifts every step's reward, which turns a
  positive survival bonus into a penalty and changes the optimal policy; scaling does not). Agents record
  ``"normalizer": "return-std"`` in their card (an earlier version divided (r̂ − μ) by σ of r̂ itself).
* ``delta``: potential-based reward shaping (Ng, Harada, Russell 1999) with the learned reward as the potential
  Φ = r̂ and γ = 1: F(s, s′) = Φ(s′) − Φ(s). Breakout's learned per-frame reward behaves like a progress
  potential (−0.5 at the start of a game, +0.4 to +0.8 late), so σ(r̂) is mostly a survival bonus of ~0.5 a step
  with a small per-brick term on top; the difference keeps only the progress (an experiment, not the papers' method).
  Terminal convention: the potential of the terminal stack is r̂ of that stack (it is *not* set to 0), so over a
  whole game the shaped rewards sum to Φ(s_T) − Φ(s_0); differences never cross a game boundary: the next game's
  first stack sets the new baseline. (``imitation``'s ``ShapedRewardNet`` uses the opposite convention, Φ(s_T) = 0.)
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from scipy.special import expit
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn
from torch import nn

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import REWARD_TRANSFORMS

__all__ = [
    "TRANSFORMS",
    "Transform",
    "RewardReplacer",
    "LearnedRewardVecEnv",
    "ConstantRewardVecEnv",
    "ClipRewardVecEnv",
]

Transform = Literal["sigmoid", "raw", "normalized", "delta"]
TRANSFORMS: tuple[str, ...] = REWARD_TRANSFORMS


class RewardReplacer(VecEnvWrapper):
    """Base: step the env, put the true reward into ``info["true_reward"]``, return ``self._reward(...)``."""

    def reset(self) -> np.ndarray:
        return self.venv.reset()

    def step_wait(self) -> VecEnvStepReturn:
        obs, true_r, dones, infos = self.venv.step_wait()
        true_r = np.asarray(true_r, dtype=np.float32)
        for i, info in enumerate(infos):
            info["true_reward"] = float(true_r[i])
        return obs, self._reward(obs, true_r, dones, infos), dones, infos

    def _reward(
        self, obs: np.ndarray, true_r: np.ndarray, dones: np.ndarray, infos: list[dict[str, Any]]
    ) -> np.ndarray:
        raise NotImplementedError


class ClipRewardVecEnv(RewardReplacer):
    """PPO on the true reward, clipped to sign(r) as baselines' ``ClipRewardEnv`` (the papers' PPO2 Atari setup).

    >>> from trex_bench.core.envs import make_vec_env
    >>> env = ClipRewardVecEnv(make_vec_env("breakout", 2, training=True))
    >>> _ = env.reset()
    >>> _, r, _, infos = env.step(np.zeros(2, dtype=int))
    >>> set(r.tolist()) <= {-1.0, 0.0, 1.0} and "true_reward" in infos[0]
    True
    """

    def _reward(self, obs, true_r, dones, infos):  # noqa: D102
        return np.sign(true_r).astype(np.float32)


class ConstantRewardVecEnv(RewardReplacer):
    """Every step earns ``value`` (default 1): the survival-bonus control.

    sigmoid(r̂) > 0 everywhere is itself a survival bonus, so a learned reward only counts as learned when it beats
    this control (PAPERS.md pitfalls).
    """

    def __init__(self, venv: VecEnv, value: float = 1.0) -> None:
        super().__init__(venv)
        self.value = float(value)

    def _reward(self, obs, true_r, dones, infos):  # noqa: D102
        return np.full(self.num_envs, self.value, dtype=np.float32)


class LearnedRewardVecEnv(RewardReplacer):
    """Replace the env reward with a reward model's r̂(s'), for all envs in one batched forward pass.

    Args:
        venv: the env below (its ``info["episode"]`` must be the true score, e.g. ``make_vec_env``).
        model: maps uint8 stacks [N, 4, 84, 84] to r̂ [N] (``RewardNet`` / ``RewardEnsemble``); it is moved to
            ``device`` and put in eval mode.
        transform: ``"sigmoid"`` | ``"raw"`` | ``"normalized"`` (r̂ divided by the running std of the discounted
            return, no mean subtracted, clipped to ±``clip``) | ``"delta"`` (potential-based shaping
            r̂(s′) − r̂(s), γ = 1); see the module's docs.
        device: where the forward pass runs.
        norm_state: statistics from ``get_norm_state`` to start from (reloading an agent).
        update_norm: update the running statistics (True while training, False when evaluating a loaded agent).
        clip: bound of the normalized reward (10, as SB3's ``VecNormalize``).
        gamma: discount of the return whose std ``normalized`` divides by (0.99, as ``VecNormalize`` and
            Gymnasium's ``NormalizeReward``).

    ``info["learned_reward"]`` holds the untransformed r̂ of each step.
    """

    def __init__(
        self,
        venv: VecEnv,
        model: nn.Module,
        transform: Transform = "sigmoid",
        device: str | torch.device = "cpu",
        norm_state: dict[str, Any] | None = None,
        update_norm: bool = True,
        clip: float = 10.0,
        gamma: float = 0.99,
    ) -> None:
        if transform not in TRANSFORMS:
            raise ConfigError(f"unknown reward transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
        super().__init__(venv)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        if self.device.type == "cpu":
            # The same NHWC layout as the PPO policy on CPU (``rl.ppo.train_ppo``): mixing layouts in one process
            # cost ~10 % of PPO's steps/s (benchmarks/ppo_reward_speed.py).
            self.model = self.model.to(memory_format=torch.channels_last)
        self.transform = transform
        self.update_norm = update_norm
        self.clip = float(clip)
        self.rms = RunningMeanStd(shape=())  # normalized: statistics of the discounted return
        self.gamma = float(gamma)
        self._returns = np.zeros(self.num_envs, dtype=np.float64)  # normalized: each env's discounted return
        self._last: np.ndarray | None = None  # delta: r̂ of each env's current stack
        if norm_state is not None:
            self.set_norm_state(norm_state)

    def reset(self) -> np.ndarray:  # noqa: D102
        obs = self.venv.reset()
        if self.transform == "delta":
            self._last = self.score(obs)
        return obs

    @torch.no_grad()
    def score(self, stacks: np.ndarray) -> np.ndarray:
        """Untransformed r̂ float32 [N] of uint8 stacks [N, 4, 84, 84], in one forward pass."""
        x = torch.as_tensor(stacks, device=self.device)
        return self.model(x).float().cpu().numpy().reshape(len(stacks))

    def _reward(self, obs, true_r, dones, infos):  # noqa: D102
        reached = obs
        if np.any(dones):
            reached = obs.copy()
            for i in np.flatnonzero(dones):
                reached[i] = infos[i]["terminal_observation"]
        restarted = np.flatnonzero(dones) if self.transform == "delta" else np.empty(0, dtype=int)
        # delta also needs r̂ of each restarted env's first stack: scored in the same forward pass
        scored = self.score(np.concatenate([reached, obs[restarted]]) if len(restarted) else reached)
        r = scored[: self.num_envs]
        for i, info in enumerate(infos):
            info["learned_reward"] = float(r[i])
        if self.transform == "delta":
            return self._potential_shaping(r, scored[self.num_envs :], restarted)
        if self.transform == "sigmoid":
            return expit(r).astype(np.float32)  # σ without overflow warnings for very negative r̂
        if self.transform == "raw":
            return r.astype(np.float32)
        return self._normalize(r, dones)

    def _potential_shaping(self, r: np.ndarray, first: np.ndarray, restarted: np.ndarray) -> np.ndarray:
        """Φ(s′) − Φ(s) with Φ = r̂, γ = 1; a restarted env's first stack (``first``) is its new Φ(s)."""
        if self._last is None:
            raise RuntimeError("reset() the env before stepping it")
        out = (r - self._last).astype(np.float32)
        self._last = r.copy()
        self._last[restarted] = first
        return out

    def _normalize(self, r: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """r̂ / std(discounted return), clipped; the mean is not subtracted (Gymnasium ``NormalizeReward``)."""
        if self.update_norm:
            self._returns = self._returns * self.gamma + r
            self.rms.update(self._returns)
            self._returns[np.asarray(dones, dtype=bool)] = 0.0
        return np.clip(r / np.sqrt(self.rms.var + 1e-8), -self.clip, self.clip).astype(np.float32)

    # -- normalizer statistics (saved with the agent, restored wherever it is loaded) ---------------------------
    def get_norm_state(self) -> dict[str, Any]:
        """The running statistics as plain JSON-able data: ``{"mean": [m], "var": [v], "count": c}``."""
        return {
            "mean": np.atleast_1d(self.rms.mean).astype(float).tolist(),
            "var": np.atleast_1d(self.rms.var).astype(float).tolist(),
            "count": float(self.rms.count),
        }

    def set_norm_state(self, state: dict[str, Any]) -> None:
        """Restore statistics written by ``get_norm_state``; a ValueError names what is wrong."""
        try:
            mean = np.asarray(state["mean"], dtype=np.float64).reshape(())
            var = np.asarray(state["var"], dtype=np.float64).reshape(())
            count = float(state["count"])
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"not a reward-normalizer state (want mean, var, count of one value): {state!r}") from e
        if not (np.isfinite(mean) and np.isfinite(var) and var >= 0 and count > 0):
            raise ConfigError(f"invalid reward-normalizer state: {state!r}")
        self.rms.mean, self.rms.var, self.rms.count = mean, var, count
