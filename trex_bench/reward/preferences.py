"""Preference queries and their answers: ``labels.csv``, the query registry ``pairs.json`` and the labelers.

A query asks which of two clips (``Segment`` a, shown left, and b, shown right) is better; the answer is ``left``,
``right``, ``equal`` (both alike: a uniform target, Christiano et al. 2017 §2.2.2) or ``skip`` ("can't tell":
dropped, §2.2.2). Every answer is one row of ``labels.csv`` in the run folder, whoever gave it:

    pair,a_seed,a_reset,a_start,a_length,b_seed,b_reset,b_start,b_length,labeler,answer,time

``pair`` is the query's index in ``pairs.json``; ``a_*``/``b_*`` are the two ``Segment`` ids (seed, reset, start,
length); ``labeler`` names who answered (``synthetic``, a person's name); ``time`` is unix seconds. Rows are
appended whole under a file lock (write, flush, fsync), so a killed writer leaves at most an incomplete last line,
which readers ignore and the next append removes; the first row of a pair wins (a double submit changes nothing).

``pairs.json`` (written by the loop, atomically) lists every query asked, with the clips' files under ``clips/``
(``reward.segments.ClipBank``), so a labeling page can show them and a resumed run knows what it asked.

Labelers share one seam (``Labeler``): ``ask`` poses queries; the answers arrive in ``labels.csv``.
``SyntheticLabeler`` answers at once from the true score (§3.1's synthetic oracle); ``HumanLabeler`` leaves the
answering to a person on the labeling page and, for the first batch, waits for them.
"""

from __future__ import annotations

import csv
import io
import math
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from filelock import FileLock

from trex_bench.core.errors import DataError
from trex_bench.core.io import read_json, write_json
from trex_bench.reward.segments import ClipBank, Segment

__all__ = [
    "ANSWERS",
    "COLUMNS",
    "Query",
    "Label",
    "LabelLog",
    "Labeler",
    "SyntheticLabeler",
    "HumanLabeler",
    "write_pairs",
    "read_pairs",
]

ANSWERS = ("left", "right", "equal", "skip")
TARGET = {"left": 0.0, "right": 1.0, "equal": 0.5}  # the share of preference on b (μ(2) of §2.2.2)
_SEGMENT_FIELDS = ("seed", "reset", "start", "length")
COLUMNS = (
    "pair",
    *(f"a_{f}" for f in _SEGMENT_FIELDS),
    *(f"b_{f}" for f in _SEGMENT_FIELDS),
    "labeler",
    "answer",
    "time",
)
PAIRS_SCHEMA = 1
_LOCK_TIMEOUT_S = 60


@dataclass(frozen=True)
class Query:
    """Query ``pair``: is clip ``a`` (left) or ``b`` (right) better? With the ensemble's mean P̂(b ≻ a) and the
    variance of its members' P̂ when it was asked (NaN when unknown)."""

    pair: int
    a: Segment
    b: Segment
    p_right: float = math.nan
    disagreement: float = math.nan
    step: int = -1


@dataclass(frozen=True)
class Label:
    """One answered query (one row of ``labels.csv``)."""

    pair: int
    a: Segment
    b: Segment
    labeler: str
    answer: str
    time: float

    def __post_init__(self) -> None:
        if self.answer not in ANSWERS:
            raise DataError(f"answer must be one of {', '.join(ANSWERS)}, got {self.answer!r}")
        if not self.labeler or any(c in self.labeler for c in "\r\n"):
            raise DataError(f"labeler must be a non-empty one-line name, got {self.labeler!r}")
        if self.pair < 0 or not math.isfinite(self.time):
            raise DataError(f"label of pair {self.pair}: pair must be >= 0 and time finite")

    @property
    def target(self) -> float | None:
        """P(b ≻ a) to fit: 0, 1, ½ for an equal answer, None for a skipped one."""
        return TARGET.get(self.answer)

    def row(self) -> list[str]:
        """The CSV row."""
        seg = [str(getattr(s, f)) for s in (self.a, self.b) for f in _SEGMENT_FIELDS]
        return [str(self.pair), *seg, self.labeler, self.answer, f"{self.time:.3f}"]


class LabelLog:
    """``labels.csv`` of a run folder: atomic appends under a file lock, validated reads."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / "labels.csv"

    def append(self, labels: Sequence[Label]) -> None:
        """Append ``labels`` as whole lines (header first in a new file), flushed and fsynced under the lock."""
        if not labels:
            return
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(lab.row() for lab in labels)
        self.folder.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.path) + ".lock", timeout=_LOCK_TIMEOUT_S), open(self.path, "ab+") as f:
            _drop_partial_line(f)
            if f.tell() == 0:
                buf = io.StringIO(",".join(COLUMNS) + "\n" + buf.getvalue())
            f.write(buf.getvalue().encode())
            f.flush()
            os.fsync(f.fileno())

    def read(self) -> list[Label]:
        """Every complete row, validated (DataError naming the file and line); a pair's first row wins."""
        out: dict[int, Label] = {}
        for label in self.read_from(0)[0]:
            out.setdefault(label.pair, label)
        return list(out.values())

    def read_from(self, offset: int) -> tuple[list[Label], int]:
        """The complete rows from byte ``offset`` on (0: the whole file, header checked) and the offset after them.

        A cut-off last line (an append that was killed) is never acknowledged and is left for later.
        """
        if not self.path.exists():
            return [], 0
        with open(self.path, "rb") as f:
            f.seek(offset)
            data = f.read()
        data = data[: data.rfind(b"\n") + 1]
        rows = list(csv.reader(io.StringIO(data.decode("utf-8", errors="replace"))))
        first_line = 1
        if offset == 0 and rows:
            if tuple(rows[0]) != COLUMNS:
                raise DataError(f"{self.path}: header must be {','.join(COLUMNS)}, got {','.join(rows[0])[:200]}")
            rows, first_line = rows[1:], 2
        where = f"{self.path} line" if offset == 0 else f"{self.path} (from byte {offset}) line"
        labels = [_parse_row(row, f"{where} {n}") for n, row in enumerate(rows, start=first_line)]
        return labels, offset + len(data)


def _drop_partial_line(f: Any) -> None:
    """Cut an incomplete last line (a killed append) so the next line starts clean; leaves ``f`` at its end."""
    size = f.seek(0, os.SEEK_END)
    if size == 0:
        return
    f.seek(size - 1)
    if f.read(1) == b"\n":
        return
    tail = min(size, 1 << 16)
    f.seek(size - tail)
    chunk = f.read(tail)
    cut = size - tail + chunk.rfind(b"\n") + 1 if b"\n" in chunk else 0
    f.truncate(cut)
    f.seek(cut)


def _parse_row(row: list[str], where: str) -> Label:
    if len(row) != len(COLUMNS):
        raise DataError(f"{where}: {len(row)} fields, want {len(COLUMNS)} ({','.join(COLUMNS)})")
    try:
        ints = [int(v) for v in row[:9]]
        t = float(row[11])
        return Label(ints[0], Segment(*ints[1:5]), Segment(*ints[5:9]), row[9], row[10], t)
    except (ValueError, DataError) as e:
        raise DataError(f"{where}: {e}") from e


def write_pairs(folder: str | Path, game: str, queries: Sequence[Query], clips: ClipBank) -> None:
    """Write the query registry ``pairs.json`` (every query asked so far) atomically."""

    def clip(seg: Segment) -> dict[str, Any]:
        return {**{f: getattr(seg, f) for f in _SEGMENT_FIELDS}, "clip": clips.path(seg).relative_to(folder).as_posix()}

    pairs = [
        dict(
            pair=q.pair,
            a=clip(q.a),
            b=clip(q.b),
            p_right=_num(q.p_right),
            disagreement=_num(q.disagreement),
            step=q.step,
        )
        for q in queries
    ]
    write_json(
        Path(folder) / "pairs.json",
        dict(
            schema_version=PAIRS_SCHEMA,
            kind="online-queries",
            game=game,
            labels="labels.csv",
            clip_format="npz: frames uint8 [length + 3, 84, 84] (stack j = frames[j:j+4]), true_rewards float32 "
            "[length], actions uint8 [start + length] of the game from its first step",
            answers=list(ANSWERS),
            pairs=pairs,
        ),
    )


def read_pairs(folder: str | Path) -> list[Query]:
    """The queries of ``pairs.json`` ([] when there is none); DataError naming the file when it is malformed."""
    path = Path(folder) / "pairs.json"
    if not path.exists():
        return []
    data = read_json(path)
    try:
        if data["schema_version"] != PAIRS_SCHEMA:
            raise DataError(f"schema_version {data['schema_version']}, want {PAIRS_SCHEMA}")
        seg = lambda d: Segment(*(int(d[f]) for f in _SEGMENT_FIELDS))  # noqa: E731
        return [
            Query(
                int(p["pair"]),
                seg(p["a"]),
                seg(p["b"]),
                _unnum(p.get("p_right")),
                _unnum(p.get("disagreement")),
                int(p.get("step", -1)),
            )
            for p in data["pairs"]
        ]
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{path}: not a query registry ({e})") from e


def _num(x: float) -> float | None:
    return None if math.isnan(x) else round(float(x), 6)


def _unnum(x: Any) -> float:
    return math.nan if x is None else float(x)


@runtime_checkable
class Labeler(Protocol):
    """Who answers queries. ``ask`` poses them; the answers arrive as rows of ``log`` (now or later)."""

    name: str

    def ask(self, queries: Sequence[Query], clips: ClipBank, log: LabelLog, initial: bool = False) -> None:
        """Pose ``queries`` (their clips are in ``clips``); ``initial``: the batch asked before PPO's first update."""
        ...

    def state(self) -> dict[str, Any]:
        """JSON-able state a resumed run restores (e.g. a random generator)."""
        ...

    def restore(self, state: dict[str, Any]) -> None:
        """Restore what ``state`` returned."""
        ...


class SyntheticLabeler:
    """Christiano et al.'s synthetic oracle (§3.1): prefers the clip with the higher true game score (the sum of its
    unclipped rewards); equal scores are ``equal`` (footnote 4: the oracle "outputs indifference"). With
    ``label_noise`` p a strict preference is flipped with probability p, one draw per query.
    """

    def __init__(
        self, label_noise: float = 0.0, rng: np.random.Generator | None = None, name: str = "synthetic"
    ) -> None:
        if not 0 <= label_noise <= 1:
            raise DataError(f"label_noise must be in [0, 1], got {label_noise}")
        if label_noise > 0 and rng is None:
            raise DataError("a noisy synthetic labeler needs an rng")
        self.label_noise, self.rng, self.name = float(label_noise), rng, name

    def answer(self, score_a: float, score_b: float, u: float) -> str:
        """The answer for true scores (a, b) and a uniform draw ``u`` in [0, 1)."""
        if score_a == score_b:
            return "equal"
        better_b = score_b > score_a
        if u < self.label_noise:
            better_b = not better_b
        return "right" if better_b else "left"

    def ask(self, queries: Sequence[Query], clips: ClipBank, log: LabelLog, initial: bool = False) -> None:  # noqa: D102
        draws = self.rng.random(len(queries)) if self.rng is not None else np.ones(len(queries))
        now = time.time()
        log.append(
            [
                Label(
                    q.pair,
                    q.a,
                    q.b,
                    self.name,
                    self.answer(clips.get(q.a).true_return, clips.get(q.b).true_return, u),
                    now,
                )
                for q, u in zip(queries, draws, strict=True)
            ]
        )

    def state(self) -> dict[str, Any]:  # noqa: D102
        return {"rng": None if self.rng is None else self.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:  # noqa: D102
        if self.rng is not None and state.get("rng") is not None:
            self.rng.bit_generator.state = state["rng"]


class HumanLabeler:
    """A person answers on the labeling page, which reads ``pairs.json`` and the clips and appends ``labels.csv``.

    ``ask`` writes nothing itself (the loop keeps ``pairs.json``). For the first batch it waits, polling
    ``labels.csv`` every ``poll_seconds``, until every initial query is answered (rl-teacher waits for its initial
    preferences the same way), or ``timeout_seconds`` have passed (None: no limit); later queries never block PPO.
    """

    def __init__(self, name: str = "human", poll_seconds: float = 2.0, timeout_seconds: float | None = None) -> None:
        self.name, self.poll_seconds, self.timeout_seconds = name, poll_seconds, timeout_seconds

    def ask(self, queries: Sequence[Query], clips: ClipBank, log: LabelLog, initial: bool = False) -> None:  # noqa: D102
        if not initial or not queries:
            return
        want = {q.pair for q in queries}
        t0 = time.monotonic()
        while not want <= {lab.pair for lab in log.read()}:
            if self.timeout_seconds is not None and time.monotonic() - t0 > self.timeout_seconds:
                return
            time.sleep(self.poll_seconds)

    def state(self) -> dict[str, Any]:  # noqa: D102
        return {}

    def restore(self, state: dict[str, Any]) -> None:  # noqa: D102
        pass
