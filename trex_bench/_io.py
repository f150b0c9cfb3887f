"""Small helpers for atomic file writes and versions (STYLE.md rule 9: write to a temp file, then ``os.replace``)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = ["atomic_write", "write_json", "read_json", "versions"]


def atomic_write(path: str | Path, write: Callable[[Path], None], suffix: str = "") -> None:
    """Call ``write(tmp_path)`` then move the temp file onto ``path`` in one step: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    try:
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
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e


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
    out = {}
    for pkg in ("trex_bench", "ale-py", "gymnasium", "numpy", "torch", "stable-baselines3"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
