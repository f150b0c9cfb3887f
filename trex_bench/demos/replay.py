"""Replay and verify: rebuild a demo set's frames from ``(seed, reset_index, actions)`` and check them.

``replay_many`` replays episodes on one ale-py vector env exactly as ``AtariVecEnv`` started them during
collection; ``replay`` is one episode's frames; ``verify_demos`` replays every episode and compares each recorded
frame hash (``frame_hash``, written by collection every ``store.HASH_EVERY`` steps and at the end), the return and
the length. The format itself (save, load, manifest checks) is ``demos.store``; the frame cache that keeps replayed
frames is ``demos.frames``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from trex_bench.core.envs import make_ale_vector_env
from trex_bench.core.errors import DemoError
from trex_bench.core.types import DemoSet, Episode

__all__ = ["frame_hash", "replays_as_recorded", "replay_many", "replay", "VerifyResult", "verify_demos"]


def frame_hash(frame: np.ndarray) -> np.uint64:
    """64-bit BLAKE2b of one uint8 84×84 frame."""
    return np.frombuffer(hashlib.blake2b(np.ascontiguousarray(frame).tobytes(), digest_size=8).digest(), np.uint64)[0]


def replays_as_recorded(episode: Episode, frames: np.ndarray) -> bool:
    """Whether ``frames`` (``episode`` replayed) hash as the frames it was recorded with (its ``hash_steps``)."""
    got = np.array([frame_hash(frames[s]) for s in episode.hash_steps], dtype=np.uint64)
    return bool(np.array_equal(got, episode.frame_hashes))


def replay_many(
    episodes: list[Episode] | tuple[Episode, ...], game: str, profile: str = "paper", n_envs: int = 4
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Replay episodes, ``n_envs`` at a time, from their starts ``(seed, reset_index)`` and actions.

    Each episode starts as ``AtariVecEnv`` started it: ``reset(seed)`` then ``reset_index`` unseeded resets
    (an env already on that chain only moves forward). An episode whose game ends early, or not at all, simply
    replays to different frames, which ``verify_demos`` reports.

    Returns:
        For each episode ``(frames, rewards)``: frames uint8 [T+1, 84, 84] (the newest frame of every observation,
        the reset observation first), rewards float32 [T].

    Raises:
        ValueError: an episode plays an action outside the game's action set.
    """
    episodes = list(episodes)
    n_envs = max(1, min(n_envs, len(episodes)))
    ale = make_ale_vector_env(game, profile, n_envs, num_threads=min(n_envs, 2))
    try:
        _check_actions(episodes, game, int(ale.single_action_space.n))
        return _Replay(ale, episodes, n_envs).run()
    finally:
        ale.close()


class _Replay:
    """One replay of ``episodes`` on an ale-py vector env of ``n_envs``: which env plays which episode, and where."""

    def __init__(self, ale: Any, episodes: list[Episode], n_envs: int) -> None:
        self.ale, self.episodes, self.n = ale, episodes, n_envs
        self.queue = sorted(range(len(episodes)), key=lambda k: (episodes[k].seed, episodes[k].reset_index))
        self.frames = [np.zeros((e.length + 1, 84, 84), np.uint8) for e in episodes]
        self.rewards = [np.zeros(e.length, np.float32) for e in episodes]
        self.playing = np.full(n_envs, -1)  # episode index each env plays, -1 = idle
        self.chain = np.full(n_envs, -1, dtype=np.int64)  # the chain seed each env is on
        self.index = np.full(n_envs, -1, dtype=np.int64)  # the reset index of its current game
        self.t = np.zeros(n_envs, np.int64)

    def run(self) -> list[tuple[np.ndarray, np.ndarray]]:
        eps = self.episodes
        distinct = list(dict.fromkeys(eps[k].seed for k in self.queue))
        first = (distinct + [eps[self.queue[0]].seed] * self.n)[: self.n]
        obs, _ = self.ale.reset(seed=np.array(first, dtype=np.int64))  # ale-py needs one full reset before partial ones
        self.chain[:], self.index[:] = first, 0
        self.start(list(range(self.n)), obs)
        while np.any(self.playing >= 0):
            acts = np.array([eps[k].actions[self.t[i]] if k >= 0 else 0 for i, k in enumerate(self.playing)], np.int64)
            obs, rew, term, trunc, _ = self.ale.step(acts)
            finished = []
            for i, k in enumerate(self.playing):
                if k < 0:
                    continue
                self.rewards[k][self.t[i]] = rew[i]
                self.t[i] += 1
                self.frames[k][self.t[i]] = obs[i, -1]
                if self.t[i] >= eps[k].length or term[i] or trunc[i]:
                    finished.append(i)
            if finished:
                # The next start resets these envs explicitly (seeded, or unseeded along the chain), exactly as
                # collection did; ale-py's own autoreset never runs on an env that plays a recorded episode.
                self.start(finished)
        return list(zip(self.frames, self.rewards))

    def pick(self, i: int) -> int:
        """Position in the queue for env ``i``: its own chain's next game, else a chain no env is on."""
        eps, q = self.episodes, self.queue
        same = [p for p, k in enumerate(q) if eps[k].seed == self.chain[i] and eps[k].reset_index > self.index[i]]
        if same:
            return same[0]
        busy = {self.chain[j] for j in range(self.n) if self.playing[j] >= 0}
        free = [p for p, k in enumerate(q) if eps[k].seed not in busy]
        return free[0] if free else 0

    def start(self, envs: list[int], obs: np.ndarray | None = None) -> None:
        """Start the next queued episodes on ``envs`` (``obs``: the observations if no reset is needed)."""
        for i in envs:
            if not self.queue:
                self.playing[i] = -1
                continue
            k = self.queue.pop(self.pick(i))
            ep = self.episodes[k]
            mask = np.zeros(self.n, bool)
            mask[i] = True
            if self.chain[i] != ep.seed or self.index[i] > ep.reset_index:
                obs, _ = self.ale.reset(seed=np.array([ep.seed], np.int64), options={"reset_mask": mask})
                self.chain[i], self.index[i] = ep.seed, 0
            while self.index[i] < ep.reset_index:
                obs, _ = self.ale.reset(seed=None, options={"reset_mask": mask})
                self.index[i] += 1
            self.playing[i], self.t[i] = k, 0
            assert obs is not None
            self.frames[k][0] = obs[i, -1]


def _check_actions(episodes: list[Episode], game: str, n_actions: int) -> None:
    """Refuse an action outside the env's action set: ale-py's vector env would wait forever on it."""
    for ep in episodes:
        bad = np.flatnonzero(ep.actions >= n_actions)
        if len(bad):
            raise DemoError(
                f"an episode (seed {ep.seed}, reset index {ep.reset_index}) plays action {int(ep.actions[bad[0]])} "
                f"at step {int(bad[0])}, but {game} has {n_actions} actions: a corrupt or foreign episode file"
            )


def replay(episode: Episode, game: str, profile: str = "paper") -> np.ndarray:
    """Frames uint8 [T+1, 84, 84] of one episode, rebuilt from its seed and actions."""
    return replay_many([episode], game, profile, n_envs=1)[0][0]


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of replaying one episode against its record."""

    index: int
    ok: bool
    ret: float
    replayed_ret: float
    length: int
    message: str


def verify_demos(
    ds: DemoSet, n_envs: int = 4, keep: Callable[[int, np.ndarray], None] | None = None
) -> list[VerifyResult]:
    """Replay every episode and compare frame hashes, return and length with the record; ``keep(i, frames)`` receives
    each replayed episode that matched (``demos.frames.keep_frames`` puts them in the frame cache)."""
    out = []
    for i, (ep, (frames, rew)) in enumerate(zip(ds.episodes, replay_many(ds.episodes, ds.game, ds.profile, n_envs))):
        got = np.array([frame_hash(frames[s]) for s in ep.hash_steps], dtype=np.uint64)
        bad = np.flatnonzero(got != ep.frame_hashes)
        r = float(rew.sum(dtype=np.float64))
        if len(bad):
            msg = f"frame hash mismatch at step {int(ep.hash_steps[bad[0]])} ({len(bad)} of {len(got)} hashes differ)"
        elif abs(r - ep.ret) > 1e-6:
            msg = f"return mismatch: recorded {ep.ret}, replayed {r}"
        else:
            msg = "ok"
        out.append(VerifyResult(i, msg == "ok", ep.ret, r, ep.length, msg))
        if keep is not None and msg == "ok":
            keep(i, frames)
    return out
