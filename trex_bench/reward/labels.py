"""The project's one preference-label format: ``labels.csv``, the answers to the clip pairs of a pairs folder
(``trex_bench.reward.clip_pairs``: ``pairs.json``, what was asked).

``labels.csv`` has the columns ``COLUMNS``: the pair's index, the game, both clips' ids ``(episode, start,
length)``, who answered, the answer and the unix time. ``answer`` is ``left`` or ``right`` (that clip is preferred),
``equal`` (both as good) or ``skip`` (can't tell). One row per pair: ``append_label`` writes a row as one full line
under a file lock, flushed and fsynced, and a second answer to a pair is a no-op (the first answer stands), so a
double click or a resent request changes nothing. The labeling page (``trex_bench.label``) writes the answers.

Training (``reward train --ranking human``): each ``left``/``right`` answer is one Bradley-Terry snippet pair over
exactly the two labelled clips (Christiano et al. 2017: a preference between two segments is one comparison);
``equal`` and ``skip`` give no pair (the trainer's labels are hard; Christiano et al. fit ``equal`` to a uniform
target, which is not done here). ``reward.build`` holds out whole episode pairs for validation and draws the
budget's ``n_pairs`` training pairs from the rest with replacement, as T-REX's sampler draws its pairs from a ranking.

The T-REX MTurk CSV (columns ``A,B,label,scoreA,scoreB``) maps onto this format as follows: a row is one pair
whose left clip is the whole of each episode of checkpoint ``A`` (start 0, all its observations) and whose right
clip is the whole of each episode of checkpoint ``B``; ``label`` 0 is the answer ``left`` and 1 is ``right``;
``scoreA``/``scoreB`` are not kept and the labeler is the MTurk crowd. Because those clips are whole episodes of
different lengths, an MTurk answer is an *episode* preference, and ``ranking.from_human_labels`` keeps T-REX's use
of it: snippets are sampled from the ranked episodes. ``label_format`` tells the two files apart by their header.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
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
    "Label",
    "check_labeler",
    "append_label",
    "read_labels",
    "check_labels",
    "label_format",
    "snippet_pairs",
    "labelled_snippet_pairs",
]

LABELS_FILE = "labels.csv"
ANSWERS = ("left", "right", "equal", "skip")
COLUMNS = (
    "pair",
    "game",
    "left_episode",
    "left_start",
    "left_length",
    "right_episode",
    "right_start",
    "right_length",
    "labeler",
    "answer",
    "unix_time",
)
_MTURK = ("A", "B", "label")
_LOCK_TIMEOUT_S = 30.0  # a writer holds the lock for one read and one line; longer means a stuck process
_LABELER = re.compile(r"[^\x00-\x1f\x7f]{1,64}")  # one printable line: a labels row never spans two lines


@dataclass(frozen=True)
class Label:
    """One answer: which clip of pair ``pair`` the labeler preferred (a row of ``labels.csv``)."""

    pair: int
    game: str
    left: Clip
    right: Clip
    labeler: str
    answer: Literal["left", "right", "equal", "skip"]
    unix_time: float

    def __post_init__(self) -> None:
        if isinstance(self.pair, bool) or not isinstance(self.pair, (int, np.integer)) or self.pair < 0:
            raise ConfigError(f"Label.pair must be an integer >= 0, got {self.pair!r}")
        if self.answer not in ANSWERS:
            raise ConfigError(f"answer must be one of {', '.join(ANSWERS)}, got {self.answer!r}")
        if not isinstance(self.game, str) or not re.fullmatch(r"[a-z0-9_]+", self.game):
            raise ConfigError(f"Label.game must be a game id, got {self.game!r}")
        check_labeler(self.labeler)
        if not isinstance(self.unix_time, (int, float)) or not math.isfinite(self.unix_time):
            raise ConfigError(f"Label.unix_time must be a finite number, got {self.unix_time!r}")

    def row(self) -> list[str]:
        """The CSV fields, in ``COLUMNS`` order."""
        return [
            str(self.pair),
            self.game,
            *map(str, self.left.as_tuple()),
            *map(str, self.right.as_tuple()),
            self.labeler,
            self.answer,
            f"{self.unix_time:.3f}",
        ]


def check_labeler(name: str) -> None:
    """Refuse a labeler name that is not 1-64 printable characters on one line (a row must stay one line)."""
    if not isinstance(name, str) or not _LABELER.fullmatch(name):
        raise ConfigError(f"labeler must be 1-64 printable characters on one line, got {name!r}")


def _line(fields: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(fields)
    return buf.getvalue()


def _lock(path: Path) -> Any:
    from filelock import FileLock

    return FileLock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S)


def append_label(path: str | Path, label: Label) -> tuple[Label, bool]:
    """Append ``label`` to the labels CSV ``path`` unless its pair is answered already.

    Under a file lock (any number of threads or processes may write): read the file, and if the pair has no answer
    yet, append the row as one ``write`` of a full line (the header first in a new file), then fsync. The reply to
    the labeler comes after the fsync, so a row cut off by a crash mid-write was never acknowledged: the next
    append removes it (``read_labels`` already skips it) and the page asks that pair again.

    Returns:
        ``(the label that stands, whether this call wrote it)``: ``(label, True)``, or ``(first answer, False)``.

    Raises:
        DataError: ``path`` is not a labels CSV of this format, holds another game's labels, or cannot be written.
    """
    from filelock import Timeout

    path = Path(path)
    try:
        with _lock(path):
            return _append_locked(path, label)
    except Timeout as e:
        raise DataError(f"{path} stayed locked for {_LOCK_TIMEOUT_S:.0f} s by another writer ({e.lock_file})") from e
    except PermissionError as e:
        raise DataError(f"cannot write labels to {path}: {e.strerror or e}") from e


def _append_locked(path: Path, label: Label) -> tuple[Label, bool]:
    """``append_label``'s work, with the lock held."""
    existing = read_labels(path, game=label.game) if path.exists() else ()
    for old in existing:
        if old.pair == label.pair:
            return old, False
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
        data = prefix + (_line(list(COLUMNS)) if size == 0 else "") + _line(label.row())
        payload = data.encode("utf-8")
        while payload:
            payload = payload[os.write(fd, payload) :]
        os.fsync(fd)
    finally:
        os.close(fd)
    if size == 0:
        _fsync_dir(path.parent)
    return label, True


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


def read_labels(path: str | Path, game: str | None = None) -> tuple[Label, ...]:
    """The answers in a labels CSV, in file order; a pair answered twice keeps its first answer.

    Raises:
        DataError: the file is missing, not UTF-8, has other columns (e.g. the MTurk CSV), a malformed row
            (``file:line``), or a row of another game than ``game``.
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
        if game is not None and label.game != game:
            raise DataError(f"{where}: a {label.game} label, but these labels are for {game}")
        out.setdefault(label.pair, label)
    return tuple(out.values())


def _parse_row(fields: list[str], where: str) -> Label:
    if len(fields) != len(COLUMNS):
        raise DataError(f"{where}: {len(fields)} fields, expected {len(COLUMNS)} (a cut-off or hand-edited line?)")
    r = dict(zip(COLUMNS, fields))
    try:
        ints = {k: int(r[k]) for k in COLUMNS[:1] + COLUMNS[2:8]}
        return Label(
            ints["pair"],
            r["game"],
            Clip(ints["left_episode"], ints["left_start"], ints["left_length"]),
            Clip(ints["right_episode"], ints["right_start"], ints["right_length"]),
            r["labeler"],
            r["answer"],  # type: ignore[arg-type]  # Label checks it is one of ANSWERS
            float(r["unix_time"]),
        )
    except (ValueError, ConfigError) as e:
        raise DataError(f"{where}: {e}") from e


def check_labels(labels: tuple[Label, ...], pairs: PairSet, where: str | Path) -> None:
    """Refuse labels that name a pair the pairs folder does not have, or other clips than that pair's.

    Raises:
        DataError: one line naming ``where`` and the first such label.
    """
    for lab in labels:
        if lab.game != pairs.game:
            raise DataError(f"{where}: pair {lab.pair} is labelled as {lab.game}, but the pairs are {pairs.game}")
        if lab.pair >= len(pairs.pairs):
            raise DataError(f"{where}: pair {lab.pair} is not among the {len(pairs.pairs)} pairs of the pairs folder")
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


def snippet_pairs(labels: tuple[Label, ...]) -> SnippetPairs:
    """One snippet pair per ``left``/``right`` answer over exactly its two clips (stride 1); side a is the left
    clip, ``label = 1`` when the right clip was preferred. ``equal`` and ``skip`` give no pair.

    Raises:
        DataError: no ``left``/``right`` answer at all, or a pair whose clips differ in length.
    """
    chosen = [lab for lab in labels if lab.answer in ("left", "right")]
    if not chosen:
        raise DataError(f"none of the {len(labels)} answers prefers a clip (all equal or skipped): nothing to train on")
    for lab in chosen:
        if lab.left.length != lab.right.length:
            raise DataError(f"pair {lab.pair}: clips of {lab.left.length} and {lab.right.length} observations")

    def col(get: Any) -> np.ndarray:
        return np.array([get(lab) for lab in chosen], dtype=np.int64)

    return SnippetPairs(
        ep_a=col(lambda lab: lab.left.episode),
        start_a=col(lambda lab: lab.left.start),
        ep_b=col(lambda lab: lab.right.episode),
        start_b=col(lambda lab: lab.right.start),
        length=col(lambda lab: lab.left.length),
        stride=1,
        label=col(lambda lab: int(lab.answer == "right")),
    )


def labelled_snippet_pairs(ds: DemoSet, csv_path: str | Path) -> SnippetPairs:
    """The snippet pairs of a labels CSV over demo set ``ds``, checked against the set and its pairs folder.

    When ``pairs.json`` sits beside the CSV (the labeling page's folder), the labels must match its pairs and it
    must have been made from this very demo set (game and content hash).

    Raises:
        DataError: labels of another game or demo set, unknown pairs or clips, a clip outside its episode, or no
            ``left``/``right`` answer.
    """
    path = Path(csv_path)
    labels = read_labels(path, game=ds.game)
    folder_pairs = path.parent / PAIRS_FILE
    if folder_pairs.is_file():
        pairs = read_pairs(path.parent)
        if pairs.game != ds.game:
            raise DataError(f"{folder_pairs} holds {pairs.game} pairs, but the demo set is {ds.game}")
        made_from = pairs.source.get("content_hash")
        if pairs.source.get("kind") == "demos" and made_from != ds.content_hash():
            raise DataError(
                f"{folder_pairs} was made from demo set {pairs.source.get('path')} (content hash {made_from}), "
                f"not from this one ({ds.content_hash()})"
            )
        check_labels(labels, pairs, path)
    n_obs = ds.lengths + 1
    for lab in labels:
        for clip in (lab.left, lab.right):
            if clip.episode >= len(n_obs) or clip.start + clip.length > n_obs[clip.episode]:
                raise DataError(
                    f"{path}: pair {lab.pair} names clip {clip.as_tuple()}, outside the demo set's "
                    f"{len(n_obs)} episodes (labels of another demo set?)"
                )
    return snippet_pairs(labels)
