"""Clips of the agent's own play as indices: the ``Segment`` id, the recent-rollout store, the clip bank.

A ``Segment`` names a clip by the game it comes from and where in it: ``(seed, reset, start, length)``. ``seed`` and
``reset`` are ``AtariVecEnv``'s ``episode_seed`` / ``episode_reset_index``: the game is the ``reset``-th game after a
``reset(seed=seed)`` of one env, and with the game's actions (kept in the clip file) it replays exactly
(``core.envs``). ``start`` counts the agent steps of that game before the clip's first action, and the clip is the
``length`` transitions after it: what PPO is paid for them is r̂ of the stacks they reach, s_{start+1} …
s_{start+length}.

Frames are stored once, never as stacks (DESIGN.md "Frame cache"). A game is the frame sequence V = the four frames
of its first stack, then the newest frame of every stack it reaches; stack s_p is V[p : p + 4] (this holds for the
env's frame stack, which shifts by one frame a step and is not reset by a lost life). A clip keeps
V[start + 1 : start + length + 4]: ``length + 3`` frames, whose stack j is ``frames[j : j + 4]``.

* ``RolloutStore``: the last ``capacity`` V-frames of every env's current games (a ring per env), with the true
  reward, the members' r̂ and the reward version of each transition; candidate clips are sliced out of it by index.
* ``ClipBank``: the frames of the clips that were queried, one compressed ``.npz`` per clip under ``clips/`` of the
  run folder (written once; the labeling page and a resumed run read them) and a bounded in-memory cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write

__all__ = ["Segment", "Clip", "RolloutStore", "ClipBank", "clip_stacks"]

FRAME = (84, 84)
_SLOT_ARRAYS = ("frames", "pos", "true_r", "version", "seed", "reset_index", "rhat")


@dataclass(frozen=True, order=True)
class Segment:
    """A clip of one game: ``length`` agent steps after the first ``start`` steps of game ``reset`` of ``seed``.

    >>> Segment(7, 2, 100, 25).name
    's7_r2_t100_l25'
    """

    seed: int
    reset: int
    start: int
    length: int

    def __post_init__(self) -> None:
        for name in ("seed", "reset", "start", "length"):
            value = getattr(self, name)
            if not isinstance(value, int | np.integer) or isinstance(value, bool):
                raise DataError(f"Segment.{name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        if self.seed < 0 or self.reset < 0 or self.start < 0 or self.length < 1:
            raise DataError(f"invalid segment {self}: seed, reset, start must be >= 0 and length >= 1")

    @property
    def name(self) -> str:
        """The clip's file stem."""
        return f"s{self.seed}_r{self.reset}_t{self.start}_l{self.length}"


@dataclass(frozen=True)
class Clip:
    """A clip's data: ``frames`` uint8 [length + 3, 84, 84], the true (unclipped) reward of each of its transitions,
    and the game's actions from its first step to the clip's end (for an exact replay)."""

    segment: Segment
    frames: np.ndarray
    true_rewards: np.ndarray
    actions: np.ndarray

    def __post_init__(self) -> None:
        n = self.segment.length
        if self.frames.dtype != np.uint8 or self.frames.shape != (n + 3, *FRAME):
            raise DataError(
                f"clip {self.segment.name}: frames must be uint8 [{n + 3}, 84, 84], "
                f"got {self.frames.dtype} {self.frames.shape}"
            )
        if self.true_rewards.shape != (n,) or self.actions.shape != (self.segment.start + n,):
            raise DataError(
                f"clip {self.segment.name}: want {n} rewards and {self.segment.start + n} actions, got "
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

    def segment(self, env: int, end: int, length: int) -> Segment:
        """The id of the clip of ``length`` transitions ending at slot ``(env, end)``."""
        s = end % self.capacity
        return Segment(int(self.seed[env, s]), int(self.reset_index[env, s]), int(self.pos[env, s]) - length, length)

    def clip(self, env: int, end: int, length: int) -> Clip:
        """The frames, true rewards and game actions of the clip ending at ``(env, end)``."""
        seg = self.segment(env, end, length)
        idx = np.arange(end - length - 2, end + 1) % self.capacity
        game = (seg.seed, seg.reset)
        log = next((a for g, a in reversed(self._actions[env]) if g == game), None)
        if log is None or len(log) < seg.start + length:
            raise DataError(f"the actions of clip {seg.name} are no longer stored")
        actions = np.frombuffer(bytes(log[: seg.start + length]), dtype=np.uint8).copy()
        return Clip(seg, self.frames[env, idx].copy(), self.true_r[env, idx[3:]].copy(), actions)

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
    """The queried clips: written once to ``folder/clips/<name>.npz`` (compressed), cached in memory.

    ``retain`` drops from memory every clip not named, so memory holds only the clips of the labels being trained
    on; the files stay for the labeling page and for a resumed run.
    """

    def __init__(self, folder: str | Path, game: str) -> None:
        self.folder = Path(folder) / "clips"
        self.game = game
        self._cache: dict[Segment, Clip] = {}

    def path(self, seg: Segment) -> Path:
        """The clip's file."""
        return self.folder / f"{seg.name}.npz"

    def put(self, clip: Clip) -> None:
        """Keep ``clip`` in memory and write its file (once)."""
        self._cache[clip.segment] = clip
        path = self.path(clip.segment)
        if not path.exists():
            arrays = dict(frames=clip.frames, true_rewards=clip.true_rewards, actions=clip.actions)
            atomic_write(path, lambda p: np.savez_compressed(p, **arrays), suffix=".npz")

    def get(self, seg: Segment) -> Clip:
        """The clip, from memory or its file (DataError naming the file when it is missing or broken)."""
        if seg in self._cache:
            return self._cache[seg]
        path = self.path(seg)
        try:
            with np.load(path, allow_pickle=False) as z:
                clip = Clip(seg, z["frames"], z["true_rewards"], z["actions"])
        except (OSError, KeyError, ValueError) as e:
            raise DataError(f"{path}: cannot read clip {seg.name} ({e})") from e
        self._cache[seg] = clip
        return clip

    def retain(self, keep: set[Segment]) -> None:
        """Forget the in-memory copies of clips not in ``keep``."""
        self._cache = {s: c for s, c in self._cache.items() if s in keep}

    def __len__(self) -> int:
        return len(self._cache)
