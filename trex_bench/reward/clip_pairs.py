"""Clip pairs to be labelled: ``pairs.json`` of a pairs folder (the answers are ``trex_bench.reward.labels``).

A *clip* is ``(episode, start, length)``: observations ``start … start + length − 1`` of an episode of the source
(0 is the reset observation), indices only, no frames. A *pairs folder* holds ``pairs.json``, the clip pairs with the
file each clip was rendered to, the rendered clips, and ``labels.csv``, the answers. ``trex-bench label pairs``
writes pairs over a demo set; the online preference loop writes its own pairs folder in the same schema (its
``source`` names what its episode indices index), and the labeling page (``trex_bench.label``) serves either.

``pairs.json``: ``{"schema": 1, "game", "source": {"kind": "demos", "path", "content_hash"}, "created_by",
"pairs": [{"left": {"episode", "start", "length", "file"}, "right": {…}}, …]}``; a pair's index is its position
in the list, which only ever grows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import read_json, write_json

__all__ = ["SCHEMA", "PAIRS_FILE", "Clip", "ClipPair", "PairSet", "read_pairs", "write_pairs"]

SCHEMA = 1
PAIRS_FILE = "pairs.json"


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Clip:
    """Observations ``start … start + length − 1`` of episode ``episode`` of a pairs folder's source."""

    episode: int
    start: int
    length: int

    def __post_init__(self) -> None:
        for name in ("episode", "start", "length"):
            _int(getattr(self, name), f"Clip.{name}")
        if self.episode < 0 or self.start < 0 or self.length < 1:
            raise ConfigError(f"a clip needs episode >= 0, start >= 0 and length >= 1, got {self.as_tuple()}")

    def as_tuple(self) -> tuple[int, int, int]:
        return (self.episode, self.start, self.length)


@dataclass(frozen=True)
class ClipPair:
    """Two clips shown side by side, and the files (relative to the pairs folder) they were rendered to."""

    left: Clip
    right: Clip
    left_file: str
    right_file: str

    def __post_init__(self) -> None:
        for f in (self.left_file, self.right_file):
            p = PurePosixPath(f)
            if not f or p.is_absolute() or ".." in p.parts or "\\" in f:
                raise ConfigError(f"a clip file must be a relative path inside the pairs folder, got {f!r}")


@dataclass(frozen=True)
class PairSet:
    """What ``pairs.json`` holds: the game, what the clips' episode indices index, and the pairs in order."""

    game: str
    source: dict[str, Any]
    pairs: tuple[ClipPair, ...]
    created_by: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.source, dict) or not isinstance(self.source.get("kind"), str):
            raise ConfigError(f"PairSet.source must be a dict with a 'kind', got {self.source!r}")
        if not all(isinstance(p, ClipPair) for p in self.pairs):
            raise ConfigError("PairSet.pairs must hold ClipPair objects")


def write_pairs(folder: str | Path, pairs: PairSet) -> Path:
    """Write ``folder/pairs.json`` atomically (a page serving the folder reads either the old or the new file)."""

    def side(c: Clip, f: str) -> dict[str, Any]:
        return dict(episode=c.episode, start=c.start, length=c.length, file=f)

    path = Path(folder) / PAIRS_FILE
    body = [dict(left=side(p.left, p.left_file), right=side(p.right, p.right_file)) for p in pairs.pairs]
    write_json(path, dict(schema=SCHEMA, game=pairs.game, source=pairs.source, created_by=pairs.created_by, pairs=body))
    return path


def read_pairs(folder: str | Path) -> PairSet:
    """Read ``folder/pairs.json``.

    Raises:
        DataError: no such file (not a pairs folder), another schema, or a malformed entry, naming the file.
    """
    path = Path(folder) / PAIRS_FILE
    if not path.is_file():
        raise DataError(f"{folder} is not a pairs folder (no {PAIRS_FILE}); make one with `trex-bench label pairs`")
    d = read_json(path)
    if not isinstance(d, dict) or d.get("schema") != SCHEMA:
        got = d.get("schema") if isinstance(d, dict) else type(d).__name__
        raise DataError(f"{path}: not a pairs file of schema {SCHEMA} (schema {got!r})")
    try:
        pairs = tuple(
            ClipPair(
                Clip(p["left"]["episode"], p["left"]["start"], p["left"]["length"]),
                Clip(p["right"]["episode"], p["right"]["start"], p["right"]["length"]),
                p["left"]["file"],
                p["right"]["file"],
            )
            for p in d["pairs"]
        )
        return PairSet(str(d["game"]), d["source"], pairs, str(d.get("created_by", "")))
    except (KeyError, TypeError, ConfigError) as e:
        raise DataError(f"{path}: malformed pairs file ({type(e).__name__}: {e})") from e
