"""Clips of the agent's own play: the recent-rollout store and the bank of queried clips.

A clip is named by the project's one clip id, ``reward.clip_pairs.Clip(seed, reset, start, length)``: observations
``start … start + length − 1`` of the ``reset``-th game after ``reset(seed=seed)`` of one env (``AtariVecEnv``'s
``episode_seed`` / ``episode_reset_index``); with the game's actions (kept in the clip's file) it replays exactly
(``core.envs``). For the agent's clips ``start >= 1``: a clip is the observations that ``length`` transitions reached,
the stacks PPO is paid r̂ of.

Frames are stored once, never as stacks (DESIGN.md "Frame cache"). A game is the frame sequence V = the four frames
of its first stack, then the newest frame of every stack it reaches; observation p is V[p : p + 4] (this holds for
the env's frame stack, which shifts by one frame a step and is not reset by a lost life). A clip keeps
V[start : start + length + 3]: ``length + 3`` frames, whose stack j is observation start + j, ``frames[j : j + 4]``.

* ``RolloutStore``: the last ``capacity`` V-frames of every env's current games (a ring per env), with the true
  reward, the members' r̂ and the reward version of each transition; candidate clips are sliced out of it by index.
* ``ClipBank``: the clips that were queried, under ``clips/`` of the loop's pairs folder: one compressed ``.npz``
  each (frames, true rewards, the game's actions; the loop trains on it, a resumed run reads it) and, when a person
  watches, the looping GIF the labeling page shows (``clip_pairs.render_clip``), each written once, from the frames
  the store holds; and a bounded in-memory cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write
from trex_bench.reward.clip_pairs import CLIPS_DIR, Clip, render_clip

__all__ = ["ClipFrames", "RolloutStore", "ClipBank", "clip_stacks"]

FRAME = (84, 84)
_SLOT_ARRAYS = ("frames", "pos", "true_r", "version", "seed", "reset_index", "rhat")


@dataclass(frozen=True)
class ClipFrames:
    """A clip's data: ``frames`` uint8 [length + 3, 84, 84], the true (unclipped) reward of the transition that
    reached each of its observations, and the game's actions from its first step to the clip's last observation
    (``start + length − 1`` of them, for an exact replay)."""

    clip: Clip
    frames: np.ndarray
    true_rewards: np.ndarray
    actions: np.ndarray

    def __post_init__(self) -> None:
        n, name = self.clip.length, self.clip.name
        if self.clip.start < 1:
            raise DataError(f"clip {name}: an agent's clip starts at an observation a transition reached (start >= 1)")
        if self.frames.dtype != np.uint8 or self.frames.shape != (n + 3, *FRAME):
            raise DataError(
                f"clip {name}: frames must be uint8 [{n + 3}, 84, 84], got {self.frames.dtype} {self.frames.shape}"
            )
        n_actions = self.clip.start + n - 1
        if self.true_rewards.shape != (n,) or self.actions.shape != (n_actions,):
            raise DataError(
                f"clip {name}: want {n} rewards and {n_actions} actions, got "
                f"{self.true_rewards.shape} and {self.actions.shape}"
            )

    @property
    def true_return(self) -> float:
        """The clip's true score: the sum of its unclipped rewards."""
        return float(self.true_rewards.sum())


def clip_stacks(frames: np.ndarray) -> np.ndarray:
    """The reached stacks of clips: frames [..., L + 3, 84, 84] → stacks [..., L, 4, 84, 84] (a strided view)."""
    view = np.lib.stride_tricks.sliding_window_view(frames, 4, axis=-3)  # [..., L, 84, 84, 4]
    return np.moveaxis(view, -1, -3)


class RolloutStore:
    """A ring of the last ``capacity`` V-frames per env (see the module's docs), filled step by step by the reward
    wrapper and sliced into clips by index.

    Each slot holds one frame and, for a transition, its game position p ≥ 1 (p ≤ 0 marks the first stack's
    frames), true reward, the reward nets' r̂ of the stack it reached and the reward ``version`` they had.
    """

    def __init__(self, n_envs: int, capacity: int, n_members: int) -> None:
        self.n_envs, self.capacity, self.n_members = n_envs, capacity, n_members
        self._allocate()
        self.head = np.zeros(n_envs, dtype=np.int64)  # slots ever written per env; the next goes to head % capacity
        self._game = np.zeros((n_envs, 3), dtype=np.int64)  # (seed, reset, steps so far) of each env's game
        self._actions: list[list[tuple[tuple[int, int], bytearray]]] = [[] for _ in range(n_envs)]

    def _allocate(self) -> None:
        e, c = self.n_envs, self.capacity
        self.frames = np.zeros((e, c, *FRAME), dtype=np.uint8)
        self.pos = np.full((e, c), -9, dtype=np.int64)  # game position; < -3: never written
        self.true_r = np.zeros((e, c), dtype=np.float32)
        self.version = np.full((e, c), -1, dtype=np.int64)
        self.seed = np.zeros((e, c), dtype=np.int64)
        self.reset_index = np.zeros((e, c), dtype=np.int64)
        self.rhat = np.full((self.n_members, e, c), np.nan, dtype=np.float32)

    # -- writing ------------------------------------------------------------------------------------------------
    def start_games(self, mask: np.ndarray, stacks: np.ndarray, seeds: np.ndarray, resets: np.ndarray) -> None:
        """New games began in the envs of ``mask``: their first stacks and ``(seed, reset)`` ids, arrays over all
        envs ([E, 4, 84, 84], [E], [E]; rows outside ``mask`` are not read)."""
        for i in np.flatnonzero(mask):
            self._game[i] = (seeds[i], resets[i], 0)
            for k in range(4):
                self._push(i, stacks[i, k], pos=k - 3)
            log = self._actions[i]
            log.append(((int(seeds[i]), int(resets[i])), bytearray()))
            oldest = self._oldest_game(i)
            while len(log) > 1 and log[0][0] != oldest:  # a game none of whose frames is stored any more
                log.pop(0)

    def record(
        self, frames: np.ndarray, true_r: np.ndarray, rhat: np.ndarray, actions: np.ndarray, version: int
    ) -> np.ndarray:
        """One transition in every env: newest frames [E, 84, 84] of the reached stacks, true rewards [E],
        the members' r̂ [K, E] and the actions [E] taken. Returns the slots' heads [E] (``stacks``, ``update``)."""
        heads = self.head.copy()
        slot = heads % self.capacity
        env = np.arange(self.n_envs)
        self._game[:, 2] += 1
        self.frames[env, slot] = frames
        self.pos[env, slot] = self._game[:, 2]
        self.true_r[env, slot] = true_r
        self.rhat[:, env, slot] = rhat
        self.version[env, slot] = version
        self.seed[env, slot], self.reset_index[env, slot] = self._game[:, 0], self._game[:, 1]
        self.head += 1
        for i in range(self.n_envs):
            self._actions[i][-1][1].append(int(actions[i]))
        return heads

    def _push(self, i: int, frame: np.ndarray, pos: int) -> None:
        s = self.head[i] % self.capacity
        self.frames[i, s], self.pos[i, s], self.true_r[i, s] = frame, pos, 0.0
        self.rhat[:, i, s], self.version[i, s] = np.nan, -1
        self.seed[i, s], self.reset_index[i, s] = self._game[i, 0], self._game[i, 1]
        self.head[i] += 1

    def _oldest_game(self, i: int) -> tuple[int, int]:
        s = max(self.head[i] - self.capacity, 0) % self.capacity
        return int(self.seed[i, s]), int(self.reset_index[i, s])

    def stored(self, env: np.ndarray, head: np.ndarray) -> np.ndarray:
        """Whether the stacks of slots ``(env, head)`` (the slot and the 3 before it) are still all stored."""
        return (head - 3 >= self.head[env] - self.capacity) & (head < self.head[env]) & (head >= 3)

    def update(self, env: np.ndarray, head: np.ndarray, rhat: np.ndarray, version: int) -> None:
        """Overwrite the members' r̂ [K, N] of stored transition slots (after the nets changed)."""
        self.rhat[:, env, head % self.capacity] = rhat
        self.version[env, head % self.capacity] = version

    # -- reading ------------------------------------------------------------------------------------------------
    def stacks(self, env: np.ndarray, head: np.ndarray) -> np.ndarray:
        """The reached stacks uint8 [N, 4, 84, 84] of stored transition slots."""
        idx = (head[:, None] + np.arange(-3, 1)) % self.capacity
        return self.frames[env[:, None], idx]

    def candidates(self, length: int, version: int) -> tuple[np.ndarray, np.ndarray]:
        """Every clip of ``length`` transitions that is stored whole (its 3 earlier frames too) and whose r̂ all
        come from reward ``version``: ``(env, end head)`` arrays, one entry per clip."""
        envs, ends = [], []
        for i in range(self.n_envs):
            lo = max(self.head[i] - self.capacity + length + 2, 0)  # the clip's first frame must still be stored
            h = np.arange(lo, self.head[i])
            s = h % self.capacity
            first = (h - length + 1) % self.capacity
            ok = (self.pos[i, s] >= length) & (self.version[i, first] == version) & (self.version[i, s] == version)
            envs.append(np.full(int(ok.sum()), i))
            ends.append(h[ok])
        return np.concatenate(envs).astype(np.int64), np.concatenate(ends).astype(np.int64)

    def returns(self, env: np.ndarray, end: np.ndarray, length: int) -> np.ndarray:
        """Each member's Σ r̂ over the clips ending at ``(env, end)``: float [K, N]."""
        idx = (end[:, None] + np.arange(-length + 1, 1)) % self.capacity
        return self.rhat[:, env[:, None], idx].sum(-1)

    def clip_id(self, env: int, end: int, length: int) -> Clip:
        """The id of the clip of the ``length`` observations that the transitions ending at ``(env, end)`` reached."""
        s = end % self.capacity
        start = int(self.pos[env, s]) - length + 1
        return Clip(int(self.seed[env, s]), int(self.reset_index[env, s]), start, length)

    def clip(self, env: int, end: int, length: int) -> ClipFrames:
        """The frames, true rewards and game actions of the clip ending at ``(env, end)``."""
        clip = self.clip_id(env, end, length)
        idx = np.arange(end - length - 2, end + 1) % self.capacity
        game = (clip.seed, clip.reset)
        n_actions = clip.start + length - 1
        log = next((a for g, a in reversed(self._actions[env]) if g == game), None)
        if log is None or len(log) < n_actions:
            raise DataError(f"the actions of clip {clip.name} are no longer stored")
        actions = np.frombuffer(bytes(log[:n_actions]), dtype=np.uint8).copy()
        return ClipFrames(clip, self.frames[env, idx].copy(), self.true_r[env, idx[3:]].copy(), actions)

    def ensure_capacity(self, capacity: int) -> None:
        """Grow the ring to at least ``capacity`` slots per env, keeping what is stored."""
        if capacity <= self.capacity:
            return
        old_capacity = self.capacity
        old = {name: getattr(self, name) for name in _SLOT_ARRAYS}
        self.capacity = capacity
        self._allocate()
        for i in range(self.n_envs):
            h = np.arange(max(self.head[i] - old_capacity, 0), self.head[i])
            for name, arr in old.items():
                if name == "rhat":  # [K, E, C]
                    self.rhat[:, i, h % capacity] = arr[:, i, h % old_capacity]
                else:  # [E, C, ...]
                    getattr(self, name)[i, h % capacity] = arr[i, h % old_capacity]


class ClipBank:
    """The queried clips under ``folder/clips/``: ``<name>.npz`` (compressed frames, true rewards, actions) and,
    when asked, ``<name>.gif`` (what the labeling page shows), each written once; cached in memory.

    ``retain`` drops from memory every clip not named, so memory holds only the clips of the labels being trained
    on; the files stay for the labeling page and for a resumed run.

    Args:
        folder: the pairs folder.
        frame_ms: how long a GIF shows each observation (``clip_pairs.frame_ms`` of the env's frameskip).
    """

    def __init__(self, folder: str | Path, frame_ms: int = 70) -> None:
        self.root = Path(folder)
        self.folder = self.root / CLIPS_DIR
        self.frame_ms = frame_ms
        self._cache: dict[Clip, ClipFrames] = {}

    def path(self, clip: Clip) -> Path:
        """The clip's data file."""
        return self.folder / f"{clip.name}.npz"

    def put(self, data: ClipFrames, animate: bool) -> str | None:
        """Keep ``data`` in memory and write its file (once); with ``animate``, its GIF too (once), from the frames
        in hand. Returns the GIF's path relative to the pairs folder (``pairs.json``'s ``file``), None without one."""
        self._cache[data.clip] = data
        path = self.path(data.clip)
        if not path.exists():
            arrays = dict(frames=data.frames, true_rewards=data.true_rewards, actions=data.actions)
            atomic_write(path, lambda p: np.savez_compressed(p, **arrays), suffix=".npz")
        if not animate:
            return None
        gif = data.clip.gif()
        if not (self.root / gif).exists():
            render_clip(data.frames[3:], self.root / gif, self.frame_ms)  # the newest frame of each observation
        return gif

    def get(self, clip: Clip) -> ClipFrames:
        """The clip's data, from memory or its file (DataError naming the file when it is missing or broken)."""
        if clip in self._cache:
            return self._cache[clip]
        path = self.path(clip)
        try:
            with np.load(path, allow_pickle=False) as z:
                data = ClipFrames(clip, z["frames"], z["true_rewards"], z["actions"])
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{path}: cannot read clip {clip.name} ({e})") from e
        self._cache[clip] = data
        return data

    def retain(self, keep: set[Clip]) -> None:
        """Forget the in-memory copies of clips not in ``keep``."""
        self._cache = {c: d for c, d in self._cache.items() if c in keep}

    def __len__(self) -> int:
        return len(self._cache)
