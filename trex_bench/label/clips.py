"""Clip pairs for a person to label, over any demo set: sampled by index, rendered once from exact replay.

A demo set's episodes are cut into non-overlapping clips of ``length`` observations (``start = 0, L, 2L, …``); a
pair is two different clips, drawn uniformly without replacement among all such pairs, on random sides. A clip is
named by the project's one clip id (``reward.clip_pairs.Clip``: its episode's seed and reset index, start, length)
and the pairs folder records the set's content hash. Each clip is rendered once, when the pairs are made, to a
looping animated GIF of the 84×84 grey frames the reward net sees (``clip_pairs.render_clip``: upscaled
``SCALE``×, nearest neighbour), played at the game's speed: one frame per agent step, an agent step being
``frameskip`` emulator frames at 60 Hz. The frames come from ``demos.replay``, checked against the episode's
recorded frame hashes, so a person labels exactly what was recorded.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from trex_bench.core.errors import ConfigError, DataError, DemoError
from trex_bench.core.io import new_mode
from trex_bench.core.types import DemoSet
from trex_bench.reward.clip_pairs import CLIPS_DIR, Clip, ClipPair, PairSet, frame_ms, render_clip, write_pairs
from trex_bench.reward.labels import episode_index

__all__ = ["CLIP_LENGTH", "clip_grid", "sample_clip_pairs", "make_pairs"]

CLIP_LENGTH = 25  # DESIGN.md "prefs": Christiano et al. 2017's 25-step segments (the online loop asks the same)


def clip_grid(lengths: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(episode, start)`` of every non-overlapping clip of ``length`` observations (an episode of T agent steps
    has T + 1 observations), in episode order.

    >>> clip_grid(np.array([49, 10, 75]), 25)
    (array([0, 0, 2, 2, 2]), array([ 0, 25,  0, 25, 50]))
    """
    if length < 1:
        raise ConfigError(f"clip length must be >= 1, got {length}")
    per_episode = (np.asarray(lengths, dtype=np.int64) + 1) // length
    episode = np.repeat(np.arange(len(per_episode)), per_episode)
    first = np.repeat(np.cumsum(per_episode) - per_episode, per_episode)
    return episode, (np.arange(len(episode)) - first) * length


def sample_clip_pairs(
    lengths: np.ndarray, n: int, length: int, rng: np.random.Generator
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``n`` distinct pairs of distinct clips (``clip_grid``), uniformly without replacement, on random sides, as
    ``((episode, start), (episode, start))`` of the left and the right clip.

    Raises:
        ConfigError: ``n`` < 1, or more pairs than the grid has (the message says how many it has).
    """
    episode, start = clip_grid(lengths, length)
    m = len(episode)
    possible = m * (m - 1) // 2
    if n < 1:
        raise ConfigError(f"--n must be >= 1, got {n}")
    if n > possible:
        raise ConfigError(
            f"--n {n} is more than the {possible} distinct pairs of the {m} clips of {length} observations this "
            f"demo set has; ask for at most {possible}, or pass a shorter --length"
        )
    k = rng.choice(possible, size=n, replace=False)
    # k ↦ (i, j), i < j, with k = j(j − 1)/2 + i: invert the triangular number, then correct float rounding
    j = np.floor((1 + np.sqrt(1 + 8 * k.astype(np.float64))) / 2).astype(np.int64)
    j -= j * (j - 1) // 2 > k
    j += (j + 1) * j // 2 <= k
    i = k - j * (j - 1) // 2
    swap = rng.random(n) < 0.5
    left, right = np.where(swap, j, i), np.where(swap, i, j)
    return [((int(episode[a]), int(start[a])), (int(episode[b]), int(start[b]))) for a, b in zip(left, right)]


def make_pairs(
    game: str,
    demos_dir: str | Path,
    out: str | Path,
    n: int,
    rng: np.random.Generator,
    length: int = CLIP_LENGTH,
    created_by: str = "",
    on_clip: Callable[[int, int], None] | None = None,
) -> PairSet:
    """Sample ``n`` clip pairs over the demo set ``demos_dir`` and write the pairs folder ``out``: ``pairs.json``
    (the game, the demo set's path and content hash, the pairs as clip ids) and ``clips/`` (one GIF per clip).

    The folder is built beside ``out`` and moved into place in one step; ``out`` must not exist or be empty, so
    a folder that holds answers is never written over. ``on_clip(done, total)`` reports rendering progress.

    Raises:
        ConfigError: ``n`` out of range for the set (see ``sample_clip_pairs``).
        DataError: ``out`` is a file, a non-empty folder, or cannot be written; two episodes of the set are one game
            (one seed and reset index), so a clip id could not tell them apart.
        DemoError: a demo set of another game, or an episode that does not replay to its recorded frames.
    """
    from trex_bench.core.envs import get_profile
    from trex_bench.core.games import get_game
    from trex_bench.demos.store import load_demos

    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} exists and is not empty (a pairs folder is never written over); choose another --out")
    ds = load_demos(demos_dir, game=get_game(game).id)
    index = episode_index(ds, demos_dir)  # (seed, reset) → episode: what a clip id names
    drawn = sample_clip_pairs(ds.lengths, n, length, rng)

    def clip(episode: int, start: int) -> Clip:
        ep = ds.episodes[episode]
        return Clip(ep.seed, ep.reset_index, start, length)

    chosen = [(clip(*a), clip(*b)) for a, b in drawn]
    try:  # before the replay: an unwritable --out fails in a second, not after minutes
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    except OSError as e:
        raise DataError(f"cannot write {out}: {e.strerror or e}") from e
    clips = sorted({c for pair in chosen for c in pair})
    ms = frame_ms(get_profile(ds.profile).frameskip)
    try:
        frames = _replayed(ds, demos_dir, sorted({index[c.seed, c.reset] for c in clips}))
        (tmp / CLIPS_DIR).mkdir()
        for k, c in enumerate(clips):
            render_clip(frames[index[c.seed, c.reset]][c.start : c.start + c.length], tmp / c.gif(), ms)
            if on_clip is not None:
                on_clip(k + 1, len(clips))
        source = dict(kind="demos", path=str(demos_dir), content_hash=ds.content_hash())
        body = tuple(ClipPair(a, b, a.gif(), b.gif()) for a, b in chosen)
        pairs = PairSet(ds.game, source, body, created_by)
        write_pairs(tmp, pairs)
        os.chmod(tmp, new_mode(directory=True))  # mkdtemp made it 0700
        os.replace(tmp, out)  # onto a missing or empty folder: readers see no folder or the whole one
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return pairs


def _replayed(ds: DemoSet, demos_dir: str | Path, episodes: list[int]) -> dict[int, np.ndarray]:
    """Frames uint8 [T+1, 84, 84] of the given episodes, each checked against its recorded frame hashes."""
    from trex_bench.demos.replay import replay_many, replays_as_recorded

    frames = {}
    for e, (f, _) in zip(episodes, replay_many([ds.episodes[e] for e in episodes], ds.game, ds.profile)):
        if not replays_as_recorded(ds.episodes[e], f):
            raise DemoError(f"episode {e} of {demos_dir} does not replay to its recorded frames (`demos verify`)")
        frames[e] = f
    return frames
