"""Frozen, validated dataclasses at the stage boundaries (STYLE.md rule 1).

Bad data fails here, with a message that says what is wrong, not three stages later.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from trex_bench.core.errors import ConfigError

__all__ = [
    "Episode",
    "DemoSet",
    "Ranking",
    "SnippetPairs",
    "NOOP_NOISE",
    "PRECISIONS",
    "REWARD_TRANSFORMS",
    "valid_noise",
]
# The PPO policy trunk's numerics (trex_bench.rl.precision): "auto" lets a per-machine probe choose.
PRECISIONS = ("auto", "fp32", "bf16")
# The env profiles' names (``envs.PROFILES``, which imports the emulator); a test keeps the two equal.
ENV_PROFILES = ("paper", "machado")


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


NOOP_NOISE = 2.0
"""``Episode.noise`` of D-REX's no-op bin (released LearnAtariSyntheticRankingsBinning.py): rollouts that only press
NOOP, ranked below every ε-greedy level, ε = 1 included. Not an ε: degradation curves leave it out."""

# How PPO sees a learned reward (``rl.wrappers.LearnedRewardVecEnv``); here so configs validate without torch.
REWARD_TRANSFORMS: tuple[str, ...] = ("sigmoid", "raw", "normalized", "delta")


def valid_noise(noise: float) -> bool:
    """An ε in [0, 1] or the no-op bin's ``NOOP_NOISE``: what ``Episode.noise`` and ``CollectConfig.noise`` accept."""
    return 0.0 <= noise <= 1.0 or noise == NOOP_NOISE


@dataclass(frozen=True, eq=False)
class Episode:
    """One recorded episode: enough to replay it exactly, plus what the rankers need.

    Attributes:
        seed: the seed of the env's chain of games (see ``envs.AtariVecEnv``); with ``reset_index`` and
            ``actions`` it rebuilds every frame.
        actions: uint8 [T], one per agent step (index into the game's minimal action set).
        rewards: float32 [T], the true unclipped game reward of each agent step.
        hash_steps: int64 [H], observation indices (0 = the reset observation, T = the last) that are hashed.
        frame_hashes: uint64 [H], 64-bit BLAKE2b of the newest frame of the observation at each hash step.
        noise: ε of the ε-greedy noise around the demonstrator (0 = none, 1 = uniform random; ``NOOP_NOISE``: the
            D-REX no-op bin).
        checkpoint: index of the demonstrator checkpoint (-1 when not from a checkpoint series).
        truncated: the episode hit the frame cap instead of ending by game over.
        reset_index: how many unseeded resets after ``reset(seed)`` started this game (0 = the seeded reset).
    """

    seed: int
    actions: np.ndarray
    rewards: np.ndarray
    hash_steps: np.ndarray
    frame_hashes: np.ndarray
    noise: float = 0.0
    checkpoint: int = -1
    truncated: bool = False
    reset_index: int = 0

    def __post_init__(self) -> None:
        _check(self.actions.ndim == 1 and self.actions.dtype == np.uint8, "Episode.actions must be uint8 [T]")
        _check(len(self.actions) > 0, "Episode has no steps")
        _check(
            self.rewards.shape == self.actions.shape and self.rewards.dtype == np.float32,
            f"Episode.rewards must be float32 [{len(self.actions)}], got {self.rewards.dtype} {self.rewards.shape}",
        )
        _check(
            self.hash_steps.shape == self.frame_hashes.shape and self.frame_hashes.dtype == np.uint64,
            "Episode.frame_hashes must be uint64 with one entry per hash step",
        )
        _check(bool(np.all((self.hash_steps >= 0) & (self.hash_steps <= len(self.actions)))), "hash step out of range")
        _check(
            valid_noise(self.noise), f"Episode.noise must be in [0, 1] (or NOOP_NOISE = {NOOP_NOISE}), got {self.noise}"
        )
        _check(self.reset_index >= 0, "Episode.reset_index must be >= 0")

    @property
    def length(self) -> int:
        """Number of agent steps."""
        return int(len(self.actions))

    @property
    def ret(self) -> float:
        """True (unclipped) return."""
        return float(self.rewards.sum(dtype=np.float64))

    @property
    def clipped_return(self) -> float:
        """Return with each step's reward clipped to {-1, 0, 1}, as PPO sees it on the true reward."""
        return float(np.sign(self.rewards).sum(dtype=np.float64))


@dataclass(frozen=True, eq=False)
class DemoSet:
    """A set of episodes of one game under one env profile.

    Attributes:
        game: canonical game id (``trex_bench.core.games``).
        profile: env profile name, and ``profile_settings`` its full settings (recorded with every artefact).
        demonstrator: human-readable description of what produced the episodes.
        episodes: the episodes, in file order (episode ``i`` is file ``ep_{i:04d}.npz``).
        versions: ale-py / gymnasium / trex_bench versions at recording time.
        created_by: the command line that produced the set.
    """

    game: str
    profile: str
    profile_settings: dict[str, Any]
    demonstrator: str
    episodes: tuple[Episode, ...]
    versions: dict[str, str] = field(default_factory=dict)
    created_by: str = ""

    def __post_init__(self) -> None:
        _check(len(self.episodes) > 0, "a DemoSet needs at least one episode")
        _check(all(isinstance(e, Episode) for e in self.episodes), "DemoSet.episodes must hold Episode objects")

    @property
    def returns(self) -> np.ndarray:
        """float64 [E] true returns."""
        return np.array([e.ret for e in self.episodes])

    @property
    def lengths(self) -> np.ndarray:
        """int64 [E] lengths in agent steps."""
        return np.array([e.length for e in self.episodes], dtype=np.int64)

    def content_hash(self) -> str:
        """SHA-256 (hex, 16 chars) over game, profile and every episode's seed, actions and hashes.

        Two sets with the same hash replay to the same frames; used to key the frame cache and in cards.
        """
        h = hashlib.sha256()
        h.update(json.dumps([self.game, self.profile, self.profile_settings], sort_keys=True).encode())
        for e in self.episodes:
            h.update(np.int64(e.seed).tobytes())
            h.update(np.int64(e.reset_index).tobytes())
            h.update(e.actions.tobytes())
            h.update(e.frame_hashes.tobytes())
        return h.hexdigest()[:16]


@dataclass(frozen=True, eq=False)
class Ranking:
    """A partial order over the episodes of a demo set, as strict preferences (ties simply have no pair).

    Attributes:
        n_episodes: number of episodes ranked.
        pairs: int64 [M, 2]; row ``(i, j)`` means episode ``i`` is worse than episode ``j`` (τ_i ≺ τ_j).
        source: which ranker made it (``"return"``, ``"checkpoint"``, ``"noise"``, ``"human"``, ``"synthetic"``).
        levels: float [n_episodes], each episode's bin (D-REX's noise level), or None. With bins, a sampler draws a
            pair of bins uniformly, then an episode of each (D-REX's released ``create_training_data_from_bins``),
            so that a bin of many episodes (the demos) does not fill most pairs; without, a preference uniformly.
    """

    n_episodes: int
    pairs: np.ndarray
    source: str
    levels: np.ndarray | None = None

    def __post_init__(self) -> None:
        p = self.pairs
        _check(
            p.ndim == 2 and p.shape[1] == 2 and np.issubdtype(p.dtype, np.integer), "Ranking.pairs must be int [M, 2]"
        )
        _check(len(p) > 0, f"ranking by {self.source} has no strict preference (all episodes tie)")
        _check(bool(np.all((p >= 0) & (p < self.n_episodes))), "Ranking.pairs index outside the demo set")
        _check(bool(np.all(p[:, 0] != p[:, 1])), "Ranking.pairs prefers an episode to itself")
        if self.levels is not None:
            _check(self.levels.shape == (self.n_episodes,), "Ranking.levels must have one value per episode")


@dataclass(frozen=True, eq=False)
class SnippetPairs:
    """Index-only snippet pairs for Bradley-Terry training: no frames are copied.

    Snippet ``k`` of side a covers observations ``start_a[k] + stride * t`` for ``t < length[k]`` of episode
    ``ep_a[k]`` (likewise side b). ``label[k] = 1`` when b is preferred (a ≺ b), else 0.
    """

    ep_a: np.ndarray
    start_a: np.ndarray
    ep_b: np.ndarray
    start_b: np.ndarray
    length: np.ndarray
    stride: int
    label: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ep_a)
        for name in ("start_a", "ep_b", "start_b", "length", "label"):
            _check(len(getattr(self, name)) == n, f"SnippetPairs.{name} has {len(getattr(self, name))} rows, not {n}")
        _check(self.stride >= 1, "SnippetPairs.stride must be >= 1")
        _check(bool(np.all(self.length >= 1)), "SnippetPairs.length must be >= 1")

    def __len__(self) -> int:
        return len(self.ep_a)

    def subset(self, idx: np.ndarray) -> SnippetPairs:
        """The pairs at ``idx`` (an index array or boolean mask)."""
        return SnippetPairs(
            self.ep_a[idx],
            self.start_a[idx],
            self.ep_b[idx],
            self.start_b[idx],
            self.length[idx],
            self.stride,
            self.label[idx],
        )
