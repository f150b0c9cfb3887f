"""File helpers: atomic writes (write to a temp file, then ``os.replace``), JSON, hashes, versions, the git commit."""

from __future__ import annotations

import errno
import hashlib
import json
import math
import os
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from trex_bench.core.errors import DataError

__all__ = [
    "atomic_write",
    "write_json",
    "read_json",
    "versions",
    "new_mode",
    "OUTPUT_KINDS",
    "output_kind",
    "describe_output",
    "claim_output",
    "check_path",
    "check_cache_dir",
    "finite_or_none",
    "stable_hash",
    "git_commit",
]


def new_mode(directory: bool = False) -> int:
    """The mode ``open``/``mkdir`` would give a new file (0o666) or folder (0o777) under this process's umask.

    ``mkstemp``/``mkdtemp`` create 0600/0700; atomic writers set this mode (or the replaced file's) instead.
    """
    try:  # Linux ≥ 4.7 reports the umask without changing it (os.umask would, for every thread, for a moment)
        text = Path("/proc/self/status").read_text()
        mask = int(next(line.split()[1] for line in text.splitlines() if line.startswith("Umask:")), 8)
    except (OSError, StopIteration, ValueError):
        mask = os.umask(0o022)
        os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp_path)`` then move the temp file onto ``path`` in one step: readers never see half a file.

    The file keeps the mode of the file it replaces; a new file gets the umask's mode (as ``open`` would), also when
    ``write`` replaced the temp file by one of its own (safetensors' ``save_file`` does: it was written 0600).

    Raises:
        ValueError: ``path`` cannot be written there (read-only, missing permission, a name too long), naming
            ``path``, never the temp file.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # The temp name is the target's, shortened: a target name near the file system's limit still gets one.
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:64]}.", suffix=".tmp" + suffix, dir=path.parent)
    except OSError as e:  # read-only, permission, a file where a folder should be, a name too long
        raise DataError(f"cannot write {path}: {e.strerror or e}") from e
    os.close(fd)
    try:
        mode = path.stat().st_mode & 0o7777 if path.is_file() else new_mode()
        write(Path(tmp))
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON.

    Raises:
        ValueError: a NaN or ±inf anywhere in ``obj`` (JSON has no such numbers: Python would write ``NaN`` literals
            that other readers refuse), naming the file and the first such key; nothing is written.
    """
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable, allow_nan=False) + "\n"
    except ValueError as e:
        if "Out of range float" not in str(e):
            raise
        where = _non_finite_key(json.loads(json.dumps(obj, default=_jsonable)))
        raise DataError(f"cannot write {path}: {where} is not a finite number (JSON has no NaN or Infinity)") from e
    atomic_write(path, lambda p: p.write_text(text))


def _non_finite_key(obj: Any, where: str = "the value") -> str:
    """The key path (``metrics.members[0].loss``) of the first NaN/±inf in a JSON-like ``obj``, or ``""``."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return where
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for k, v in items:
        key = f"{where}[{k}]" if isinstance(k, int) else (k if where == "the value" else f"{where}.{k}")
        found = _non_finite_key(v, key)
        if found:
            return found
    return ""


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or None where it is None, NaN or ±inf (how JSON records "undefined").

    >>> finite_or_none(float("nan")) is None, finite_or_none(2)
    (True, 2.0)
    """
    return None if value is None or not math.isfinite(float(value)) else float(value)


def file_hash(path: str | Path) -> str:
    """SHA-256 of a file's bytes, 16 hex chars (the cards' input hashes)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def read_json(path: str | Path) -> Any:
    """Read a JSON file; a ValueError names the file when it is not valid JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: not valid JSON ({e})") from e
    except IsADirectoryError as e:
        raise DataError(f"{path}: a directory, not a JSON file") from e


# -- the one writer rule ----------------------------------------------------------------------------------------
# What each writer writes, as a refusal names it. A folder kind is recognised by its card, manifest or config; a
# file kind by its contents (``output_kind``).
OUTPUT_KINDS: dict[str, str] = {
    "reward_model": "a reward model",
    "bc_policy": "a BC policy",
    "agent": "an agent",
    "demo_set": "a demo set",
    "run_folder": "a run folder",
    "evaluation": "an evaluation report",
    "fidelity": "a fidelity report",
    "leaderboard": "a leaderboard",
    "degradation": "a degradation CSV",
    "extrapolation_table": "an extrapolation table",
    "plot": "a plot",
}
FOLDER_KINDS = frozenset({"reward_model", "bc_policy", "agent", "demo_set", "run_folder"})
_OTHER = {"file": "an existing file", "folder": "a non-empty folder", "link": "a dangling symbolic link"}
_SNIFF_BYTES = 1 << 20  # a file larger than this is not one of ours to recognise by content


def output_kind(path: str | Path) -> str:
    """What is at ``path``: ``""`` (nothing: absent, an empty file, or a folder of hidden files only), a key of
    :data:`OUTPUT_KINDS`, ``"folder"`` (any other non-empty folder), ``"file"`` (any other file) or ``"link"`` (a
    symbolic link to nothing). Hidden files (``.owner.lock``, a stage's ``.partial-key``) are bookkeeping, not output.
    """
    p = Path(path)
    if p.is_symlink() and not p.exists():
        return "link"
    if not p.exists():
        return ""
    if p.is_dir():
        return _folder_kind(p)
    return _file_kind(p)


def describe_output(path: str | Path) -> str:
    """What is at ``path`` in words, for a message: ``a reward model``, ``an existing file``, ``nothing``."""
    found = output_kind(path)
    return OUTPUT_KINDS.get(found) or _OTHER.get(found) or "nothing (it does not exist or is empty)"


def _json_or_none(path: Path) -> Any:
    try:
        return read_json(path) if path.is_file() and path.stat().st_size <= _SNIFF_BYTES else None
    except (ValueError, OSError):
        return None


def _folder_kind(p: Path) -> str:
    names = {c.name for c in p.iterdir() if not c.name.startswith(".")}
    if not names:
        return ""
    card = _json_or_none(p / "card.json")
    if isinstance(card, dict) and card.get("kind") in FOLDER_KINDS:
        return str(card["kind"])
    run = _json_or_none(p / "run.json")  # a PPO run in progress: what it started with, no card yet
    if card is None and isinstance(run, dict) and {"config", "reward"} <= set(run):
        return "agent"
    if card is None and any((p / "checkpoints").glob("*_steps*.zip")):  # one without its run.json (grid or interim)
        return "agent"
    manifest = _json_or_none(p / "manifest.json")
    if isinstance(manifest, dict) and {"schema_version", "episodes"} <= set(manifest):
        return "demo_set"
    config = _json_or_none(p / "config.json")
    if isinstance(config, dict) and {"schema", "method", "game"} <= set(config):
        return "run_folder"
    return "folder"


def _file_kind(p: Path) -> str:
    size = p.stat().st_size
    if size == 0:
        return ""
    suffix = p.suffix.lower()
    if suffix == ".json":
        obj = _json_or_none(p)
        if isinstance(obj, dict) and obj.get("kind") in ("evaluation", "fidelity"):
            return str(obj["kind"])
        if isinstance(obj, dict) and {"correlations", "pairwise"} <= set(obj):  # a fidelity report before its kind
            return "fidelity"
    elif suffix == ".csv":
        try:
            with open(p, encoding="utf-8") as f:  # a header is enough for the tables that grow (a leaderboard)
                head = f.readline(4096)
            if head.startswith("run_id,utc_time,"):
                return "leaderboard"
            if head.startswith("game,method,seed,"):
                return "extrapolation_table"
            if size <= _SNIFF_BYTES and _is_degradation_csv(p.read_text(encoding="utf-8")):
                return "degradation"
        except (UnicodeDecodeError, OSError):
            return "file"
    elif suffix == ".png":
        with open(p, "rb") as f:  # matplotlib writes its name into every PNG it saves (a tEXt chunk)
            if b"Matplotlib" in f.read(4096):
                return "plot"
    return "file"


def _is_degradation_csv(text: str) -> bool:
    """Rows ``label, number, …`` with ``demos`` or an ε as the label (``demos.degradation``'s layout)."""
    rows = [line.split(",") for line in text.splitlines() if line.strip()]
    try:
        for r in rows:
            if r[0].strip() != "demos" and not 0.0 <= float(r[0]) <= 1.0:
                return False
            [float(c) for c in r[1:]]
    except ValueError:
        return False
    return bool(rows)


def check_path(path: str | Path, into: bool = False) -> None:
    """Refuse a path no writer can use, before any work: a name longer than the file system allows, a symbolic link
    to nothing, a file where a folder should be, a read-only folder. ``into``: ``path`` is a folder written into.

    Raises:
        ValueError: one line naming ``path``.
    """
    path = Path(path)
    anchor = path.parent
    while not os.path.exists(anchor) and anchor != anchor.parent:  # os.path: no OSError for a name too long
        anchor = anchor.parent
    try:
        limit = os.pathconf(anchor if anchor.is_dir() else anchor.parent, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    for part in path.parts:  # first: any stat of such a path raises "File name too long"
        if len(os.fsencode(part)) > limit:
            raise DataError(
                f"cannot write {path}: the name {part[:24]}… is {len(os.fsencode(part))} bytes, "
                f"more than this file system allows ({limit})"
            )
    if into and path.is_dir():
        anchor = path
    if path.is_symlink() and not path.exists():
        raise DataError(f"{path} is a symbolic link to {os.readlink(path)}, which does not exist; choose another --out")
    if not anchor.is_dir():
        raise DataError(f"cannot write {path}: {anchor} is a file, not a folder")
    if not os.access(anchor, os.W_OK | os.X_OK):
        raise DataError(f"cannot write {path}: {anchor} is read-only ({os.strerror(errno.EACCES)})")


def check_cache_dir(cache: str | Path | None) -> None:
    """Refuse a ``--cache`` that cannot hold the frame cache (a file, a path no folder can be made at), before any
    work; None (the default cache) passes."""
    if cache is None:
        return
    cache = Path(cache)
    if cache.exists() and not cache.is_dir():
        raise DataError(f"--cache {cache} is a file, not a folder (the frame cache is a folder)")
    check_path(cache, into=True)


def claim_output(path: str | Path, kind: str, overwrite: bool | None = None) -> str:
    """The one writer rule, called by every writer before any work: ``path`` may receive an output of ``kind`` when
    it holds nothing or an output of the same kind (the same run written again, or a file replaced by its newer
    version); anything else (an output of another kind, a stranger's file or folder) is refused, naming ``path``
    and what is there. ``overwrite`` is the writer's ``--overwrite`` (True: the user consents to replacing it;
    False: the refusal names the flag; None: the command has no such flag).

    >>> claim_output("/nonexistent-folder/model", "reward_model")
    ''

    Returns:
        What is there now (``output_kind``): ``""`` or ``kind`` (or anything, with ``overwrite``).

    Raises:
        ValueError: one line naming ``path`` and what it holds (or why it cannot be written at all).
    """
    if kind not in OUTPUT_KINDS:
        raise KeyError(f"unknown output kind {kind!r}")
    path = Path(path)
    folder = kind in FOLDER_KINDS
    check_path(path, into=folder)
    if folder and path.exists() and not path.is_dir():
        raise DataError(f"{path} is a file, not a folder; choose another --out")
    if not folder and path.is_dir():
        raise DataError(f"{path} is a directory, not {OUTPUT_KINDS[kind]}; choose another --out")
    found = output_kind(path)
    if found in ("", kind) or overwrite:
        return found
    what = describe_output(path)
    hint = " or pass --overwrite" if overwrite is False else ""
    raise DataError(f"{path} is {what}, not {OUTPUT_KINDS[kind]}; choose another --out{hint}")


def _jsonable(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON-serialisable: {type(o).__name__}")


def versions() -> dict[str, str]:
    """Versions of the packages that change results (written into every manifest and card)."""
    from importlib import metadata  # here, not at import: it costs ~0.1 s of every `trex-bench --help`

    out = {}
    for pkg in ("trex_bench", "ale-py", "gymnasium", "numpy", "torch", "stable-baselines3"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def stable_hash(obj: Any, length: int = 16) -> str:
    """The first ``length`` hex digits of the SHA-256 of ``obj`` as sorted JSON (paths and other objects as ``str``):
    equal configs hash equal, whatever their key order.

    >>> stable_hash({"b": 1, "a": 2}) == stable_hash({"a": 2, "b": 1})
    True
    """
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:length]


def git_commit(cwd: str | Path | None = None) -> str:
    """``$TREX_BENCH_GIT_COMMIT`` if set (a copied tree without ``.git``, e.g. on a rented GPU machine), else
    ``git rev-parse HEAD`` of ``cwd`` (default: this package's checkout), else ``"unknown"``."""
    if os.environ.get("TREX_BENCH_GIT_COMMIT"):
        return os.environ["TREX_BENCH_GIT_COMMIT"]
    where = Path(cwd) if cwd is not None else Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else "unknown"
