"""The project's one preference format, part 1: clips and ``pairs.json``, what was asked. The answers, part 2, are
``labels.csv`` (``trex_bench.reward.labels``).

A *clip* is ``Clip(seed, reset, start, length)``: observations ``start … start + length − 1`` (0 is the reset
observation) of one game, the ``reset``-th game after ``reset(seed=seed)`` of one env (``AtariVecEnv``'s
``episode_seed`` and ``episode_reset_index``). A game replays exactly from its seed, reset index and actions
(``core.envs``), so the id names frames without copying them. Both sources of clips use it:

* a demo set (``trex-bench label pairs``): every episode carries its ``seed`` and ``reset_index``
  (``core.types.Episode``), so a clip names the episode of the set with that seed and reset index; ``pairs.json``
  records the set's content hash, and labels are only ever read against that very set;
* the online preference loop (``rl.preference_loop``): clips of the agent's own recent games; the loop keeps each
  queried clip's frames and game actions in ``clips/<name>.npz`` (``reward.segments.ClipBank``).

A *pairs folder* holds ``pairs.json``, the rendered clips under ``clips/`` and the answers, ``labels.csv``::

    {"schema": 2, "game": "breakout", "created_by": "<command line>",
     "source": {"kind": "demos", "path": "<demo set>", "content_hash": "<DemoSet.content_hash()>"}
            or {"kind": "online", "run": "<the loop's folder>"},
     "pairs": [{"left": {"seed", "reset", "start", "length", "file"}, "right": {…},
                "step": 4096, "p_right": 0.42, "disagreement": 0.01}, …]}

A pair's index is its position in the list, which only ever grows (the online loop appends its queries; the
labeling page reads the file again when it changes). ``file`` is the clip's looping GIF, relative to the folder
(``render_clip``), rendered once when the pair is made; ``null`` when nobody watches the clips (the synthetic
oracle's queries). ``step``, ``p_right`` and ``disagreement`` are the online loop's: the agent step it asked at,
the ensemble's mean P̂(right ≻ left) and the variance of its members' P̂ (``null`` when unknown or for demo pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import atomic_write, read_json, write_json

__all__ = [
    "SCHEMA",
    "PAIRS_FILE",
    "CLIPS_DIR",
    "SOURCES",
    "SCALE",
    "Clip",
    "ClipPair",
    "PairSet",
    "read_pairs",
    "write_pairs",
    "render_clip",
    "frame_ms",
]

SCHEMA = 2
PAIRS_FILE = "pairs.json"
CLIPS_DIR = "clips"
SOURCES = ("demos", "online")
SCALE = 3  # 84 → 252 pixels: the net's own input, large enough to judge on a laptop screen
ATARI_HZ = 60  # emulator frames per second
_CLIP_FIELDS = ("seed", "reset", "start", "length")


def _int(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{what} must be an integer, got {value!r}")
    return int(value)


@dataclass(frozen=True, order=True)
class Clip:
    """Observations ``start … start + length − 1`` of game ``reset`` after ``reset(seed=seed)`` (see the module).

    >>> Clip(7, 2, 100, 25).name
    's7_r2_t100_l25'
    """

    seed: int
    reset: int
    start: int
    length: int

    def __post_init__(self) -> None:
        for name in _CLIP_FIELDS:
            object.__setattr__(self, name, _int(getattr(self, name), f"Clip.{name}"))
        if self.seed < 0 or self.reset < 0 or self.start < 0 or self.length < 1:
            raise ConfigError(f"a clip needs seed, reset, start >= 0 and length >= 1, got {self.as_tuple()}")

    def as_tuple(self) -> tuple[int, int, int, int]:
        """``(seed, reset, start, length)``."""
        return (self.seed, self.reset, self.start, self.length)

    @property
    def name(self) -> str:
        """The stem of the clip's files."""
        return f"s{self.seed}_r{self.reset}_t{self.start}_l{self.length}"

    def gif(self) -> str:
        """Where the clip's animation goes, relative to the pairs folder."""
        return f"{CLIPS_DIR}/{self.name}.gif"


@dataclass(frozen=True)
class ClipPair:
    """Two clips shown side by side, their animations' files (relative to the pairs folder; None: not rendered)
    and, for the online loop's queries, the agent step it asked at, the ensemble's mean P̂(right ≻ left) and the
    variance of its members' P̂ (-1 / NaN when unknown)."""

    left: Clip
    right: Clip
    left_file: str | None
    right_file: str | None
    step: int = -1
    p_right: float = math.nan
    disagreement: float = math.nan

    def __post_init__(self) -> None:
        if not isinstance(self.left, Clip) or not isinstance(self.right, Clip):
            raise ConfigError("ClipPair.left and .right must be Clip ids")
        for f in (self.left_file, self.right_file):
            if f is None:
                continue
            p = PurePosixPath(f) if isinstance(f, str) else None
            if p is None or not f or p.is_absolute() or ".." in p.parts or "\\" in f:
                raise ConfigError(f"a clip file must be a relative path inside the pairs folder, got {f!r}")
        _int(self.step, "ClipPair.step")


@dataclass(frozen=True)
class PairSet:
    """What ``pairs.json`` holds: the game, where the clips come from, the pairs in order."""

    game: str
    source: dict[str, Any]
    pairs: tuple[ClipPair, ...]
    created_by: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.source, dict) or self.source.get("kind") not in SOURCES:
            raise ConfigError(f"PairSet.source must be a dict whose 'kind' is one of {SOURCES}, got {self.source!r}")
        if not all(isinstance(p, ClipPair) for p in self.pairs):
            raise ConfigError("PairSet.pairs must hold ClipPair objects")

    @property
    def kind(self) -> str:
        """``"demos"`` or ``"online"``."""
        return str(self.source["kind"])


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


def write_pairs(folder: str | Path, pairs: PairSet) -> Path:
    """Write ``folder/pairs.json`` atomically (a page serving the folder reads either the old or the new file)."""

    def side(c: Clip, f: str | None) -> dict[str, Any]:
        return {**dict(zip(_CLIP_FIELDS, c.as_tuple())), "file": f}

    def entry(p: ClipPair) -> dict[str, Any]:
        out = dict(left=side(p.left, p.left_file), right=side(p.right, p.right_file))
        if p.step >= 0:
            out.update(step=p.step, p_right=_num(p.p_right), disagreement=_num(p.disagreement))
        return out

    path = Path(folder) / PAIRS_FILE
    body = [entry(p) for p in pairs.pairs]
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

    def clip(s: dict[str, Any]) -> Clip:
        return Clip(*(s[f] for f in _CLIP_FIELDS))

    def nan(x: Any) -> float:
        return math.nan if x is None else float(x)

    try:
        pairs = tuple(
            ClipPair(
                clip(p["left"]),
                clip(p["right"]),
                p["left"]["file"],
                p["right"]["file"],
                p.get("step", -1),
                nan(p.get("p_right")),
                nan(p.get("disagreement")),
            )
            for p in d["pairs"]
        )
        return PairSet(str(d["game"]), d["source"], pairs, str(d.get("created_by", "")))
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise DataError(f"{path}: malformed pairs file ({type(e).__name__}: {e})") from e


def frame_ms(frameskip: int) -> int:
    """How long one agent step lasts at the game's speed (``frameskip`` emulator frames at 60 Hz), in the 10 ms
    steps a GIF's frame delay has.

    >>> frame_ms(4)
    70
    """
    return round(100 * frameskip / ATARI_HZ) * 10


def render_clip(frames: np.ndarray, path: str | Path, frame_ms: float, scale: int = SCALE) -> None:
    """Write uint8 grey frames [L, H, W] as a looping animated GIF, each frame ``frame_ms`` long (atomically: a page
    never serves half a file)."""
    from PIL import Image

    frames = np.asarray(frames)
    if frames.ndim != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise ConfigError(f"render_clip needs uint8 frames [L, H, W], got {frames.dtype} {frames.shape}")
    big = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f, mode="L") for f in big]

    def save(p: Path) -> None:
        images[0].save(p, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0, disposal=1)

    atomic_write(path, save, suffix=".gif")
