"""Frame cache: replayed frames of a demo set as uint8 single 84×84 frames, stacks built from indices.

One ``.npy`` per episode (memory-mapped when read) under ``<cache>/frames/<game>-<demo-set hash>/``, so no later
stage replays twice and no observation is stored four times over.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trex_bench.core.errors import DemoError
from trex_bench.core.io import atomic_write
from trex_bench.core.types import DemoSet
from trex_bench.demos.replay import replay_many, replays_as_recorded

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
        self.folder = cache_folder(ds, cache_dir)
        paths = [self.folder / f"ep_{i:04d}.npy" for i in range(len(ds.episodes))]
        cached = [_read_cached(p, ep.length) for p, ep in zip(paths, ds.episodes)]
        missing = [i for i, arr in enumerate(cached) if arr is None]  # absent, torn or not this episode's: rebuilt
        if missing:
            todo = [ds.episodes[i] for i in missing]
            for i, (frames, _) in zip(missing, replay_many(todo, ds.game, ds.profile, n_envs)):
                if not replays_as_recorded(ds.episodes[i], frames):  # cached, they would be trained on from now on
                    raise DemoError(
                        f"episode {i} of the {ds.game} demo set does not replay to its recorded frames (another "
                        "ale-py? see `trex-bench demos verify`); nothing of it is cached"
                    )
                atomic_write(paths[i], lambda p, f=frames: np.save(p, f), suffix=".npy")
                cached[i] = _read_cached(paths[i], ds.episodes[i].length)
                if cached[i] is None:
                    raise DemoError(f"{paths[i]}: the frame cache file just written does not read back")
        per_ep = [arr for arr in cached if arr is not None]
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


def cache_folder(ds: DemoSet, cache_dir: str | Path | None = None) -> Path:
    """Where ``FrameCache`` keeps the replayed frames of ``ds`` (one ``ep_NNNN.npy`` per episode)."""
    return Path(cache_dir or default_cache_dir()) / "frames" / f"{ds.game}-{ds.content_hash()}"


def keep_frames(ds: DemoSet, cache_dir: str | Path | None = None) -> Callable[[int, np.ndarray], None]:
    """A sink for frames replayed elsewhere (``replay.verify_demos``): episode ``i``'s frames go into the cache
    ``FrameCache`` reads, so the set is replayed once, not once to verify and again to train or score."""
    folder = cache_folder(ds, cache_dir)

    def keep(i: int, frames: np.ndarray) -> None:
        path = folder / f"ep_{i:04d}.npy"
        if _read_cached(path, ds.episodes[i].length) is None:
            folder.mkdir(parents=True, exist_ok=True)
            atomic_write(path, lambda p: np.save(p, frames), suffix=".npy")

    return keep


def _read_cached(path: Path, length: int) -> np.ndarray | None:
    """The cached uint8 [length + 1, 84, 84] frames at ``path`` (memory-mapped), or None when the file is missing,
    torn, not an ``.npy`` or of another shape or dtype: a cache file is rebuilt, never trusted or fatal."""
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    return arr if arr.shape == (length + 1, 84, 84) and arr.dtype == np.uint8 else None


def gather_stacks(frames: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``frames[index]`` with rows of index -1 filled with zeros; index [N, 4] → uint8 [N, 4, 84, 84]."""
    out = frames[np.maximum(index, 0)]
    out[index < 0] = 0
    return out
