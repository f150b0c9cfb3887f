"""Frame cache: replayed frames of a demo set as uint8 single 84×84 frames, stacks built from indices.

One ``.npy`` per episode (memory-mapped when read) under ``<cache>/frames/<game>-<demo-set hash>/``, so no later
stage replays twice and no observation is stored four times over.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from trex_bench._io import atomic_write
from trex_bench.demos.replay import replay_many
from trex_bench.types import DemoSet

__all__ = ["FrameCache", "default_cache_dir", "gather_stacks"]


def default_cache_dir() -> Path:
    """``$TREX_BENCH_CACHE`` or ``~/.cache/trex_bench``."""
    return Path(os.environ.get("TREX_BENCH_CACHE", Path.home() / ".cache" / "trex_bench"))


class FrameCache:
    """Replayed frames of a demo set, one uint8 [T+1, 84, 84] ``.npy`` per episode, keyed by the set's hash.

    ``frames`` is every episode concatenated (one array in memory, ~7 KB per frame), with ``offsets[e]`` the row
    of episode ``e``'s reset observation. ``stacks(ep, t)`` builds the [N, 4, 84, 84] observations from indices,
    zero-filling before the episode start exactly as the env's frame stack does at reset.
    """

    def __init__(self, ds: DemoSet, cache_dir: str | Path | None = None, n_envs: int = 4) -> None:
        from trex_bench.demos.store import DemoError  # store re-exports this module: import late

        self.folder = Path(cache_dir or default_cache_dir()) / "frames" / f"{ds.game}-{ds.content_hash()}"
        paths = [self.folder / f"ep_{i:04d}.npy" for i in range(len(ds.episodes))]
        missing = [i for i, p in enumerate(paths) if not p.exists()]
        if missing:
            todo = [ds.episodes[i] for i in missing]
            for i, (frames, _) in zip(missing, replay_many(todo, ds.game, ds.profile, n_envs)):
                atomic_write(paths[i], lambda p, f=frames: np.save(p, f), suffix=".npy")
        per_ep = [np.load(p, mmap_mode="r") for p in paths]
        for i, (arr, ep) in enumerate(zip(per_ep, ds.episodes)):
            if arr.shape != (ep.length + 1, 84, 84) or arr.dtype != np.uint8:
                raise DemoError(f"{paths[i]}: cached frames have shape {arr.shape}, expected {(ep.length + 1, 84, 84)}")
        self.lengths = np.array([ep.length for ep in ds.episodes], dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.lengths + 1)[:-1]]).astype(np.int64)
        self.frames = np.concatenate(per_ep, axis=0)

    def episode_frames(self, ep: int) -> np.ndarray:
        """uint8 [T+1, 84, 84] of episode ``ep``."""
        o = self.offsets[ep]
        return self.frames[o : o + self.lengths[ep] + 1]

    def stack_index(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Global frame rows [N, 4] of the observations (ep, t); -1 where the stack is zero-filled."""
        ep, t = np.asarray(ep, np.int64), np.asarray(t, np.int64)
        k = t[:, None] + np.arange(-3, 1)[None, :]
        return np.where(k >= 0, self.offsets[ep][:, None] + k, -1)

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        """uint8 [N, 4, 84, 84] observations of episode ``ep[n]`` at step ``t[n]``."""
        return gather_stacks(self.frames, self.stack_index(ep, t))


def gather_stacks(frames: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``frames[index]`` with rows of index -1 filled with zeros; index [N, 4] → uint8 [N, 4, 84, 84]."""
    out = frames[np.maximum(index, 0)]
    out[index < 0] = 0
    return out
