"""Env profiles and the one env constructor used for collection, replay, training and evaluation.

Both profiles run on ale-py's C++ ``AtariVectorEnv``, which implements the DeepMind Atari preprocessing
(no-op starts, action repeat with max-pool of the last two frames, 84×84 gray, zero-filled frame stack, FIRE on
reset) natively and threaded. That is why collection runs at raw-ALE speed (``benchmarks/collect_speed.py``) and why
replay rebuilds the same frames bit for bit: every stage uses this one implementation.

* ``paper``: NoFrameskip-v4 + ``wrap_deepmind`` as T-REX/D-REX used them: no sticky actions, up to 30 no-ops,
  repeat 4 with max-pool, 84×84 gray, stack 4 zero-filled at reset, FIRE reset, episodes capped at 108 000 frames;
  life-loss episodes only when ``training=True``.
* ``machado``: ALE v5 as recommended by Machado et al. (2018): sticky actions p=0.25, no no-ops, no FIRE reset,
  full episodes.

``make_vec_env`` returns a Stable-Baselines3 ``VecEnv`` whose ``info["episode"]`` is the *true full-game* score
(the monitor sits below every reward wrapper, PAPERS.md pitfalls) and which resets every episode with its own
recorded seed, so any episode can be replayed from ``(seed, actions)``.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from ale_py import Action, ALEInterface, LoggerMode, roms
from ale_py.vector_env import AtariVectorEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvStepReturn

from trex_bench.core.errors import ConfigError
from trex_bench.core.games import Game, get_game

__all__ = [
    "EnvProfile",
    "PROFILES",
    "get_profile",
    "make_env",
    "make_vec_env",
    "make_ale_vector_env",
    "AtariVecEnv",
    "OneObjectVecEnv",
    "OBS_SHAPE",
]

OBS_SHAPE = (4, 84, 84)


@dataclass(frozen=True)
class EnvProfile:
    """Every setting that changes what an agent sees; recorded in every artefact's card."""

    name: str
    repeat_action_probability: float
    noop_max: int
    frameskip: int
    maxpool: bool
    stack: int
    size: int
    use_fire_reset: bool
    max_frames_per_episode: int
    full_action_space: bool = False

    def settings(self) -> dict[str, Any]:
        """The profile as a JSON-able dict (written to manifests and cards)."""
        return dataclasses.asdict(self)


PROFILES: dict[str, EnvProfile] = {
    # T-REX/D-REX: baselines make_atari + wrap_deepmind on NoFrameskip-v4 (PAPERS.md; DESIGN.md caps at 108k frames).
    "paper": EnvProfile("paper", 0.0, 30, 4, True, 4, 84, True, 108_000),
    # Machado et al. 2018, "Revisiting the ALE": sticky actions 0.25, full episodes, no no-op starts.
    "machado": EnvProfile("machado", 0.25, 0, 4, True, 4, 84, False, 108_000),
}


def get_profile(name: str | EnvProfile) -> EnvProfile:
    """Profile by name; a ValueError lists the valid names."""
    if isinstance(name, EnvProfile):
        return name
    if name not in PROFILES:
        raise ConfigError(f"unknown env profile {name!r}; valid: {', '.join(PROFILES)}")
    return PROFILES[name]


@functools.cache
def fire_action(ale_id: str) -> int | None:
    """Index of FIRE in the game's minimal action set (``None`` if it has none); loads the ROM once (~0.2 s)."""
    ale = ALEInterface()
    ale.setLoggerMode(LoggerMode.Error)
    ale.loadROM(roms.get_rom_path(ale_id))
    actions = list(ale.getMinimalActionSet())
    return actions.index(Action.FIRE) if Action.FIRE in actions else None


def make_ale_vector_env(
    game: Game | str, profile: EnvProfile | str, n_envs: int, num_threads: int = 0
) -> AtariVectorEnv:
    """The raw ale-py vector env configured by ``profile`` (no life-loss episodes, no reward clipping)."""
    g = get_game(game) if isinstance(game, str) else game
    p = get_profile(profile)
    return AtariVectorEnv(
        g.ale_id,
        num_envs=n_envs,
        num_threads=num_threads,
        max_num_frames_per_episode=p.max_frames_per_episode,
        repeat_action_probability=p.repeat_action_probability,
        full_action_space=p.full_action_space,
        img_height=p.size,
        img_width=p.size,
        grayscale=True,
        stack_num=p.stack,
        frameskip=p.frameskip,
        maxpool=p.maxpool,
        noop_max=p.noop_max,
        episodic_life=False,
        reward_clipping=False,
        use_fire_reset=p.use_fire_reset,
    )


class OneObjectVecEnv(VecEnv):
    """SB3's attribute plumbing for a ``VecEnv`` that is one object rather than a list of envs: every index answers
    from the object itself (``AtariVecEnv``, and the tests' scripted fakes)."""

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        if attr_name == "render_mode":
            return [None] * len(self._get_indices(indices))
        return [getattr(self, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list[Any]:
        return [getattr(self, method_name)(*args, **kwargs) for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        return [False] * len(self._get_indices(indices))


class AtariVecEnv(OneObjectVecEnv):
    """SB3 ``VecEnv`` over ale-py's ``AtariVectorEnv`` with replayable episode starts and true-score bookkeeping.

    Episode starts: each env begins with ``reset(seed=s)`` (``s`` from ``seed`` or the ``episode_seeds``
    callback). Later games in that env start by ale-py's *unseeded* reset, which draws the next no-op count from the
    env's own generator; with no sticky actions that generator is touched by nothing but resets, so game ``r`` of
    the chain is fully identified by ``(s, r)`` and replays without replaying games ``0..r-1`` (checked by frame
    hashes in ``demos verify``). This matters for speed: a seeded reset reloads the ROM (~0.18 s), an unseeded one
    takes ~0.015 s. With sticky actions (``machado``) play consumes the same generator, so every game gets its own
    seeded reset and ``r`` is always 0. ``info["episode_seed"]``/``info["episode_reset_index"]`` name a finished
    game; ``current_starts()`` names the games in progress.

    With ``training=True`` the loss of a life ends an *episode* for the learner (``done``) but not the game, as
    baselines' ``EpisodicLifeEnv`` does; ``info["game_over"]`` says which. Where the profile uses FIRE reset, the
    first action of the episode after a lost life is FIRE, whatever the learner chose, as baselines'
    ``FireResetEnv`` fires on every reset of the learner's episode (it wraps ``EpisodicLifeEnv``). Without it a
    learned reward that is positive everywhere (sigmoid: a survival bonus) teaches the agent never to relaunch the
    ball: measured on Breakout, a 500k-step agent had P(FIRE) ≈ 3·10⁻⁵ and its games ran to the frame cap.
    ``info["forced_fire"]`` marks the step whose action was replaced. ``info["episode"] = {"r", "l", "t"}``
    appears only when a whole game ends and holds its true unclipped score and length in agent steps.
    """

    def __init__(
        self,
        game: Game | str,
        profile: EnvProfile | str = "paper",
        n_envs: int = 1,
        seed: int = 0,
        training: bool = False,
        num_threads: int = 0,
        episode_seeds: Callable[[int], int] | None = None,
    ) -> None:
        self.game = get_game(game) if isinstance(game, str) else game
        self.profile = get_profile(profile)
        self.training = training
        self.chained = self.profile.repeat_action_probability == 0.0
        self._ale = make_ale_vector_env(self.game, self.profile, n_envs, num_threads)
        n_actions = int(self._ale.single_action_space.n)
        p = self.profile
        obs_space = gym.spaces.Box(0, 255, (p.stack, p.size, p.size), np.uint8)
        super().__init__(n_envs, obs_space, gym.spaces.Discrete(n_actions))
        self._seed_rng = np.random.default_rng(seed)
        self._episode_seeds = episode_seeds
        self._seed_count = 0
        self._actions = np.zeros(n_envs, dtype=np.int64)
        self._seeds = np.zeros(n_envs, dtype=np.int64)
        self._reset_index = np.zeros(n_envs, dtype=np.int64)
        self._lives = np.zeros(n_envs, dtype=np.int64)
        self._fire = (
            fire_action(self.game.ale_id) if training and p.use_fire_reset and not p.full_action_space else None
        )
        self._pending_fire = np.zeros(n_envs, dtype=bool)
        self._forced = np.zeros(n_envs, dtype=bool)
        self._ret = np.zeros(n_envs)
        self._len = np.zeros(n_envs, dtype=np.int64)
        self._t0 = time.perf_counter()

    # -- episode starts ------------------------------------------------------------------------------------------
    def _next_seeds(self, k: int) -> np.ndarray:
        out = []
        for _ in range(k):
            if self._episode_seeds is not None:
                out.append(int(self._episode_seeds(self._seed_count)))
            else:
                out.append(int(self._seed_rng.integers(0, 2**31 - 1)))
            self._seed_count += 1
        return np.asarray(out, dtype=np.int64)

    def _new_games(self, mask: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """Start the next game in the envs of ``mask`` (see the class docstring); bookkeeping reset."""
        idx = np.flatnonzero(mask)
        if self.chained:
            obs, info = self._ale.reset(seed=None, options={"reset_mask": mask})
            self._reset_index[idx] += 1
        else:
            new_seeds = self._next_seeds(len(idx))
            obs, info = self._ale.reset(seed=new_seeds, options={"reset_mask": mask})
            self._seeds[idx] = new_seeds
            self._reset_index[idx] = 0
        self._lives[idx] = np.asarray(info["lives"])[idx]
        self._pending_fire[idx] = False
        self._ret[idx] = 0.0
        self._len[idx] = 0
        return obs, info

    def seed(self, seed: int | None = None) -> list[None]:  # SB3 API
        self._seed_rng = np.random.default_rng(seed)
        return [None] * self.num_envs

    def current_starts(self) -> tuple[np.ndarray, np.ndarray]:
        """``(seeds, reset_indices)`` of the games now in progress, one per env."""
        return self._seeds.copy(), self._reset_index.copy()

    @property
    def current_seeds(self) -> np.ndarray:
        """The seed of each env's current chain of games."""
        return self._seeds.copy()

    # -- VecEnv API ----------------------------------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        self._seeds = self._next_seeds(self.num_envs)
        self._reset_index[:] = 0
        obs, info = self._ale.reset(seed=self._seeds.copy())
        self._lives = np.asarray(info["lives"], dtype=np.int64).copy()
        self._pending_fire[:] = False
        self._ret[:] = 0.0
        self._len[:] = 0
        self.reset_infos = [{"episode_seed": int(s), "episode_reset_index": 0} for s in self._seeds]
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs).copy()
        self._forced = self._pending_fire.copy()
        if self._forced.any():
            self._actions[self._forced] = self._fire
            self._pending_fire[:] = False

    def step_wait(self) -> VecEnvStepReturn:
        obs, reward, terminated, truncated, info = self._ale.step(self._actions)
        reward = np.asarray(reward, dtype=np.float32)
        lives = np.asarray(info["lives"], dtype=np.int64)
        self._ret += reward
        self._len += 1
        game_over = terminated | truncated
        life_lost = (lives < self._lives) & ~game_over
        dones = game_over | (life_lost if self.training else False)
        self._lives = lives.copy()
        if self._fire is not None:
            self._pending_fire = life_lost.copy()
        infos: list[dict[str, Any]] = [
            {"lives": int(lives[i]), "game_over": bool(game_over[i])} for i in range(self.num_envs)
        ]
        for i in np.flatnonzero(self._forced):
            infos[i]["forced_fire"] = True
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = obs[i].copy()
            # SB3 bootstraps only on a time limit; a lost life or game over is a true terminal.
            infos[i]["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
        if game_over.any():
            elapsed = round(time.perf_counter() - self._t0, 6)
            for i in np.flatnonzero(game_over):
                infos[i]["episode"] = {"r": float(self._ret[i]), "l": int(self._len[i]), "t": elapsed}
                infos[i]["episode_seed"] = int(self._seeds[i])
                infos[i]["episode_reset_index"] = int(self._reset_index[i])
            new_obs, _ = self._new_games(game_over)
            obs = np.where(game_over[:, None, None, None], new_obs, obs)
        return obs, reward, dones, infos

    def restart(self, mask: np.ndarray) -> np.ndarray:
        """End the games of the envs in ``mask`` early and start their next ones; returns all observations."""
        obs, _ = self._new_games(np.asarray(mask, bool))
        return obs

    def close(self) -> None:
        self._ale.close()

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        # The true-score bookkeeping is built in: report "monitored" so SB3's evaluate_policy trusts info["episode"].
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor] * len(self._get_indices(indices))

    def get_images(self) -> list[np.ndarray]:  # pragma: no cover - rendering is not part of the benchmark
        return []


def make_vec_env(
    game: Game | str,
    n_envs: int = 1,
    profile: EnvProfile | str = "paper",
    seed: int = 0,
    training: bool = False,
    num_threads: int = 0,
    episode_seeds: Callable[[int], int] | None = None,
) -> AtariVecEnv:
    """The vectorised env for every stage. See ``AtariVecEnv``."""
    return AtariVecEnv(game, profile, n_envs, seed, training, num_threads, episode_seeds)


class _SingleEnv(gym.Env):
    """A gymnasium view of a one-env ``AtariVecEnv`` (same frames as the vectorised path)."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, game: Game | str, profile: EnvProfile | str, seed: int, training: bool) -> None:
        self._venv = AtariVecEnv(game, profile, 1, seed, training, num_threads=1)
        self.observation_space = self._venv.observation_space
        self.action_space = self._venv.action_space
        self.profile = self._venv.profile
        self.game = self._venv.game
        self._forced_seed: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        if seed is not None:
            self._venv.seed(seed)
            self._venv._episode_seeds = lambda _i, s=seed: s
            obs = self._venv.reset()
            self._venv._episode_seeds = None
        else:
            obs = self._venv.reset()
        return obs[0], {"episode_seed": int(self._venv.current_seeds[0])}

    def step(self, action: int) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, rew, done, infos = self._venv.step(np.array([action]))
        info = infos[0]
        if done[0]:
            # Gymnasium semantics: return the terminal observation; the caller resets.
            truncated = info.get("TimeLimit.truncated", False)
            return info["terminal_observation"], float(rew[0]), not truncated, truncated, info
        return obs[0], float(rew[0]), False, False, info

    def close(self) -> None:
        self._venv.close()


def make_env(game: Game | str, profile: EnvProfile | str = "paper", seed: int = 0, training: bool = False) -> gym.Env:
    """One env (a gymnasium ``Env``) with exactly the frames of ``make_vec_env``.

    >>> env = make_env("breakout", profile="paper", seed=0)
    >>> obs, info = env.reset(seed=0)
    >>> obs.shape, obs.dtype.name
    ((4, 84, 84), 'uint8')
    """
    return _SingleEnv(game, profile, seed, training)
