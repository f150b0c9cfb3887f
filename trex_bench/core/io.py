"""File helpers: atomic writes (write to a temp file, then ``os.replace``), JSON, hashes, versions, the git commit."""

from __future__ import annotations

import hashlib
import json
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
    "check_out_folder",
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

    The file keeps the mode of the file it replaces; a new file gets the umask's mode (as ``open`` would).

    Raises:
        ValueError: ``path`` cannot be written there (read-only or missing permission), naming ``path``.
    """
    path = Path(path)
    if path.is_dir():
        raise DataError(f"cannot write {path}: it is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    except (PermissionError, FileExistsError, NotADirectoryError) as e:
        raise DataError(f"cannot write {path}: {e.strerror or e}") from e
    os.close(fd)
    try:
        mode = path.stat().st_mode & 0o7777 if path.is_file() else new_mode()
        os.chmod(tmp, mode)
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: str | Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented, key-sorted JSON."""
    text = json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n"
    atomic_write(path, lambda p: p.write_text(text))


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


def check_out_folder(out: str | Path, kind: str, overwrite: bool = False) -> None:
    """Refuse an output folder that a writer of cards of ``kind`` must not write into: a file, or (unless
    ``overwrite``) a non-empty folder whose ``card.json`` is not of ``kind`` (another stage's output, or anything
    else). A folder of the same kind is the same run written again. Call it before any work.

    Raises:
        ValueError: one line naming ``out``.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DataError(f"{out} is a file, not a folder; choose another --out")
    if overwrite or not out.is_dir() or not any(out.iterdir()):
        return
    try:
        card = read_json(out / "card.json") if (out / "card.json").is_file() else None
    except ValueError:
        card = None
    if not (isinstance(card, dict) and card.get("kind") == kind):
        found = (
            f"a {card['kind']} folder"
            if isinstance(card, dict) and isinstance(card.get("kind"), str)
            else "a non-empty folder"
        )
        raise DataError(f"{out} is {found}, not a {kind} folder; choose another --out or pass --overwrite")


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
