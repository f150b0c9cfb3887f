"""The project's one preference format, part 2: ``labels.csv``, the answers to the clip pairs of a pairs folder
(part 1, ``trex_bench.reward.clip_pairs``: the clip id and ``pairs.json``, what was asked).

Whoever answers (a person on the labeling page, ``trex_bench.label``; the online loop's synthetic oracle), every
answer is one row of ``labels.csv`` in the pairs folder, with the columns ``COLUMNS``: ``pair``, ``left_seed``,
``left_reset``, ``left_start``, ``left_length``, the same four of ``right_``, ``labeler``, ``answer``, ``unix_time``.

``pair`` is the pair's index in ``pairs.json``; ``left_*``/``right_*`` are its two clip ids ``(seed, reset,
start, length)``, as the page showed them; ``labeler`` names who answered (a person's name, ``synthetic``);
``answer`` is ``left`` or ``right`` (that clip is preferred), ``equal`` (both as good) or ``skip`` (can't tell);
``unix_time`` is when, in seconds. ``append_labels`` writes rows as whole lines under a file lock, flushed and
fsynced before it returns; a second answer to a pair is a no-op (the first answer stands), so a double click or a
resent request changes nothing. A row cut off by a crash mid-write was never acknowledged: readers skip it and the
next append removes it. Labels are read against their ``pairs.json`` (``check_labels``): a row naming a pair the
folder does not have, or other clips than that pair's, is refused.

What an answer trains: the online loop (``reward.pref_ensemble``) fits ``left`` → P(right ≻ left) = 0,
``right`` → 1, ``equal`` → ½ (Christiano et al. 2017 §2.2.2) and drops ``skip``. ``reward train --ranking
human`` (T-REX, hard labels) turns each ``left``/``right`` answer about a demo set's clips into one Bradley-Terry
snippet pair over exactly the two clips (``labelled_snippet_pairs``); ``equal`` and ``skip`` give no pair there.

The T-REX MTurk CSV (columns ``A,B,label,scoreA,scoreB``) keeps its own reader (``ranking.from_human_labels``); it
maps onto this format as follows: a row is one pair whose left clip is the whole of each episode of checkpoint ``A``
(``Clip(seed, reset_index, 0, T + 1)`` of every such episode) and whose right clip is the whole of each episode of
checkpoint ``B``; ``label`` 0 is the answer ``left`` and 1 is ``right``; ``scoreA``/``scoreB`` are not kept and the
labeler is the MTurk crowd. Because those clips are whole episodes of different lengths, an MTurk answer is an
*episode* preference, and ``from_human_labels`` keeps T-REX's use of it: snippets are sampled from the ranked
episodes. ``label_format`` tells the two files apart by their header.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.types import DemoSet, SnippetPairs
from trex_bench.reward.clip_pairs import PAIRS_FILE, Clip, PairSet, read_pairs

__all__ = [
    "ANSWERS",
    "COLUMNS",
    "LABELS_FILE",
    "TARGET",
    "Label",
    "check_labeler",
    "append_label",
    "append_labels",
    "read_labels",
    "check_labels",
    "label_format",
    "episode_index",
    "snippet_pairs",
    "labelled_snippet_pairs",
]

LABELS_FILE = "labels.csv"
ANSWERS = ("left", "right", "equal", "skip")
TARGET = {"left": 0.0, "right": 1.0, "equal": 0.5}  # P(right ≻ left) to fit (μ(2) of Christiano et al. §2.2.2)
_CLIP = ("seed", "reset", "start", "length")
COLUMNS = ("pair", *(f"left_{f}" for f in _CLIP), *(f"right_{f}" for f in _CLIP), "labeler", "answer", "unix_time")
_MTURK = ("A", "B", "label")
_LOCK_TIMEOUT_S = 30.0  # a writer holds the lock for one read and a few lines; longer means a stuck process
_LABELER = re.compile(r"[^\x00-\x1f\x7f]{1,64}")  # one printable line: a labels row never spans two lines


@dataclass(frozen=True)
class Label:
    """One answer: which clip of pair ``pair`` the labeler preferred (a row of ``labels.csv``)."""

    pair: int
    left: Clip
    right: Clip
    labeler: str
    answer: Literal["left", "right", "equal", "skip"]
    unix_time: float

    def __post_init__(self) -> None:
        if isinstance(self.pair, bool) or not isinstance(self.pair, (int, np.integer)) or self.pair < 0:
            raise ConfigError(f"Label.pair must be an integer >= 0, got {self.pair!r}")
        if not isinstance(self.left, Clip) or not isinstance(self.right, Clip):
            raise ConfigError("Label.left and .right must be Clip ids")
        if self.answer not in ANSWERS:
            raise ConfigError(f"answer must be one of {', '.join(ANSWERS)}, got {self.answer!r}")
        check_labeler(self.labeler)
        if not isinstance(self.unix_time, (int, float)) or not math.isfinite(self.unix_time):
            raise ConfigError(f"Label.unix_time must be a finite number, got {self.unix_time!r}")

    @property
    def target(self) -> float | None:
        """P(right ≻ left) to fit: 0, 1, ½ for ``equal``, None for ``skip``."""
        return TARGET.get(self.answer)

    def row(self) -> list[str]:
        """The CSV fields, in ``COLUMNS`` order."""
        clips = [str(v) for c in (self.left, self.right) for v in c.as_tuple()]
        return [str(self.pair), *clips, self.labeler, self.answer, f"{self.unix_time:.3f}"]


def check_labeler(name: str) -> None:
    """Refuse a labeler name that is not 1-64 printable characters on one line (a row must stay one line)."""
    if not isinstance(name, str) or not _LABELER.fullmatch(name):
        raise ConfigError(f"labeler must be 1-64 printable characters on one line, got {name!r}")


def _lines(rows: list[list[str]]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def append_label(path: str | Path, label: Label) -> tuple[Label, bool]:
    """``append_labels`` of one label: ``(the label that stands, whether this call wrote it)``."""
    return append_labels(path, [label])[0]


def append_labels(path: str | Path, labels: Sequence[Label]) -> list[tuple[Label, bool]]:
    """Append each label to the labels CSV ``path`` unless its pair is answered already (in the file or earlier in
    ``labels``).

    Under a file lock (any number of threads or processes may write): read the file, append the new rows in one
    ``write`` of whole lines (the header first in a new file), then fsync. The reply to a labeler comes after the
    fsync, so a row cut off by a crash mid-write was never acknowledged: this removes it (``read_labels`` already
    skips it) and the page asks that pair again.

    Returns:
        per label, ``(the label that stands, whether this call wrote it)``: ``(label, True)`` or ``(first, False)``.

    Raises:
        DataError: ``path`` is not a labels CSV of this format, or cannot be written.
    """
    from filelock import FileLock, Timeout

    path = Path(path)
    try:
        with FileLock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S):
            return _append_locked(path, labels)
    except Timeout as e:
        raise DataError(f"{path} stayed locked for {_LOCK_TIMEOUT_S:.0f} s by another writer ({e.lock_file})") from e
    except PermissionError as e:
        raise DataError(f"cannot write labels to {path}: {e.strerror or e}") from e


def _append_locked(path: Path, labels: Sequence[Label]) -> list[tuple[Label, bool]]:
    """``append_labels``'s work, with the lock held."""
    stands = {lab.pair: lab for lab in (read_labels(path) if path.exists() else ())}
    out, new = [], []
    for lab in labels:
        if lab.pair in stands:
            out.append((stands[lab.pair], False))
        else:
            stands[lab.pair] = lab
            new.append(lab)
            out.append((lab, True))
    if not new:
        return out
    try:
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as e:
        raise DataError(f"cannot write labels to {path}: {e.strerror or e}") from e
    try:
        size = os.fstat(fd).st_size
        prefix = ""
        if size and os.pread(fd, 1, size - 1) != b"\n":
            whole = os.pread(fd, size, 0)
            keep = whole.rfind(b"\n") + 1
            if _is_row(whole[keep:]):  # a whole last row without its line break (edited by hand): end it
                prefix = "\n"
            else:  # a row cut off by a crash mid-write, never acknowledged (read_labels skips it): drop it
                os.ftruncate(fd, keep)
                size = keep
        header = [list(COLUMNS)] if size == 0 else []
        payload = (prefix + _lines(header + [lab.row() for lab in new])).encode("utf-8")
        while payload:
            payload = payload[os.write(fd, payload) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0:
        _fsync_dir(path.parent)
    return out


def _is_row(line: bytes) -> bool:
    try:
        _parse_row(next(csv.reader([line.decode("utf-8")])), "")
    except (UnicodeDecodeError, StopIteration, csv.Error, DataError):
        return False
    return True


def _fsync_dir(folder: Path) -> None:
    """Make a new file's name durable too (its folder's entry), where the OS allows it."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_labels(path: str | Path) -> tuple[Label, ...]:
    """The answers in a labels CSV, in file order; a pair answered twice keeps its first answer; a cut-off last
    line (a write killed mid-line) is no answer.

    Raises:
        DataError: the file is missing, not UTF-8, has other columns (e.g. the MTurk CSV), or a malformed row
            (``file:line``).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise DataError(f"labels {path} do not exist") from e
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 CSV ({e})") from e
    except IsADirectoryError as e:
        raise DataError(f"labels {path} is a folder, not a CSV file") from e
    if "\n" not in text and ",".join(COLUMNS).startswith(text):  # the first write (header and row) cut in its header
        return ()
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            return ()
        if tuple(header) != COLUMNS:
            raise DataError(f"{path}: not a labels CSV of this project (columns {','.join(COLUMNS)}), got {header}")
        rows = [(f"{path}:{reader.line_num}", fields) for fields in reader if fields]
    except csv.Error as e:
        raise DataError(f"{path}:{reader.line_num}: not CSV ({e})") from e
    if rows and not text.endswith("\n"):  # the last line has no line break: whole (hand-edited) or cut off
        try:
            _parse_row(rows[-1][1], rows[-1][0])
        except DataError:
            rows.pop()  # a write cut off mid-line (a crash) was never acknowledged: that pair is still unanswered
    out: dict[int, Label] = {}
    for where, fields in rows:
        label = _parse_row(fields, where)
        out.setdefault(label.pair, label)
    return tuple(out.values())


def _parse_row(fields: list[str], where: str) -> Label:
    if len(fields) != len(COLUMNS):
        raise DataError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)} (a cut-off or hand-edited line?)")
    try:
        ints = [int(v) for v in fields[:9]]
        return Label(
            ints[0],
            Clip(*ints[1:5]),
            Clip(*ints[5:9]),
            fields[9],
            fields[10],  # type: ignore[arg-type]  # Label checks it is one of ANSWERS
            float(fields[11]),
        )
    except (ValueError, ConfigError) as e:
        raise DataError(f"{where}: {e}") from e


def check_labels(labels: Sequence[Label], pairs: PairSet, where: str | Path) -> None:
    """Refuse labels that name a pair the pairs folder does not have, or other clips than that pair's.

    Raises:
        DataError: one line naming ``where`` and the first such label.
    """
    for lab in labels:
        if lab.pair >= len(pairs.pairs):
            raise DataError(
                f"{where}: pair {lab.pair} is not among the {len(pairs.pairs)} {pairs.game} pairs of its pairs folder"
            )
        p = pairs.pairs[lab.pair]
        if (lab.left, lab.right) != (p.left, p.right):
            raise DataError(
                f"{where}: pair {lab.pair} names clips {lab.left.as_tuple()} and {lab.right.as_tuple()}, but the "
                f"pairs folder has {p.left.as_tuple()} and {p.right.as_tuple()} (labels of another pairs folder?)"
            )


def label_format(path: str | Path) -> Literal["clips", "mturk"]:
    """``"clips"`` for this project's labels CSV, ``"mturk"`` for the T-REX MTurk CSV, from the header line.

    Raises:
        ConfigError: missing file, or a header of neither.
    """
    path = Path(path)
    try:
        with path.open(encoding="utf-8", newline="") as f:
            header = next(csv.reader(f), [])
    except (FileNotFoundError, IsADirectoryError) as e:
        raise ConfigError(f"human labels {path} do not exist or are not a file") from e
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a UTF-8 CSV ({e})") from e
    if tuple(header) == COLUMNS:
        return "clips"
    if set(_MTURK) <= set(header):
        return "mturk"
    raise ConfigError(
        f"{path}: neither a labels CSV of `trex-bench label` ({','.join(COLUMNS[:3])},…) nor the T-REX MTurk CSV "
        f"(A,B,label,…); header {header}"
    )


def episode_index(ds: DemoSet, where: str | Path) -> dict[tuple[int, int], int]:
    """Each episode's index in ``ds`` by its ``(seed, reset_index)``, the game a clip id names.

    Raises:
        DataError: two episodes of one game (a clip id would name either), naming ``where``.
    """
    out: dict[tuple[int, int], int] = {}
    for i, ep in enumerate(ds.episodes):
        first = out.setdefault((ep.seed, ep.reset_index), i)
        if first != i:
            raise DataError(
                f"{where}: episodes {first} and {i} are both game {ep.reset_index} of seed {ep.seed}, so a clip id "
                "(seed, reset, start, length) cannot tell them apart"
            )
    return out


def snippet_pairs(labels: Sequence[Label], episode_of: dict[tuple[int, int], int]) -> SnippetPairs:
    """One snippet pair per ``left``/``right`` answer over exactly its two clips (stride 1); side a is the left
    clip, ``label = 1`` when the right clip was preferred. ``episode_of`` maps a clip's ``(seed, reset)`` to its
    episode's index in the demo set. ``equal`` and ``skip`` give no pair.

    Raises:
        DataError: no ``left``/``right`` answer at all, a clip of no episode, or a pair whose clips differ in length.
    """
    chosen = [lab for lab in labels if lab.answer in ("left", "right")]
    if not chosen:
        raise DataError(f"none of the {len(labels)} answers prefers a clip (all equal or skipped): nothing to train on")
    for lab in chosen:
        if lab.left.length != lab.right.length:
            raise DataError(f"pair {lab.pair}: clips of {lab.left.length} and {lab.right.length} observations")
        for c in (lab.left, lab.right):
            if (c.seed, c.reset) not in episode_of:
                raise DataError(
                    f"pair {lab.pair}: clip {c.as_tuple()} names no episode (seed {c.seed}, reset {c.reset})"
                )

    def col(get: Any) -> np.ndarray:
        return np.array([get(lab) for lab in chosen], dtype=np.int64)

    return SnippetPairs(
        ep_a=col(lambda lab: episode_of[lab.left.seed, lab.left.reset]),
        start_a=col(lambda lab: lab.left.start),
        ep_b=col(lambda lab: episode_of[lab.right.seed, lab.right.reset]),
        start_b=col(lambda lab: lab.right.start),
        length=col(lambda lab: lab.left.length),
        stride=1,
        label=col(lambda lab: int(lab.answer == "right")),
    )


def labelled_snippet_pairs(ds: DemoSet, csv_path: str | Path) -> SnippetPairs:
    """The snippet pairs of a labels CSV over demo set ``ds``, read with the pairs folder it sits in.

    The folder's ``pairs.json`` must hold pairs of this game made from this very demo set (its content hash), and
    the labels must be answers to those pairs; each clip is the episode with its ``(seed, reset)``.

    Raises:
        DataError: no ``pairs.json`` beside the CSV, pairs of another game, of the online loop or of another demo
            set, unknown pairs or clips, a clip outside its episode, or no ``left``/``right`` answer.
    """
    path = Path(csv_path)
    folder_pairs = path.parent / PAIRS_FILE
    if not folder_pairs.is_file():
        raise DataError(f"{path}: no {PAIRS_FILE} beside it; labels are read in the pairs folder they answer")
    pairs = read_pairs(path.parent)
    if pairs.game != ds.game:
        raise DataError(f"{folder_pairs} holds {pairs.game} pairs, but the demo set is {ds.game}")
    if pairs.kind != "demos":
        raise DataError(f"{folder_pairs} holds the online loop's queries (its own games), not clips of a demo set")
    made_from = pairs.source.get("content_hash")
    if made_from != ds.content_hash():
        raise DataError(
            f"{folder_pairs} was made from demo set {pairs.source.get('path')} (content hash {made_from}), "
            f"not from this one ({ds.content_hash()})"
        )
    labels = read_labels(path)
    check_labels(labels, pairs, path)
    episode_of = episode_index(ds, pairs.source.get("path"))
    for lab in labels:
        for c in (lab.left, lab.right):
            i = episode_of.get((c.seed, c.reset))
            if i is None or c.start + c.length > ds.episodes[i].length + 1:
                raise DataError(f"{path}: pair {lab.pair} names clip {c.as_tuple()}, which is no clip of the demo set")
    return snippet_pairs(labels, episode_of)
