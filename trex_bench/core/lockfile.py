"""The lock file (``requirements.lock``): the exact package versions ``make install`` installs.

``make lock`` writes it from ``pip freeze`` of a throwaway venv built from setup.cfg's ranges and the CPU torch
wheel; setup.cfg keeps ranges for library users. Standard library only: ``make install`` checks the file with
``python3 -m trex_bench.core.lockfile check requirements.lock`` *before* anything is installed, so a corrupt lock fails
with one line naming the file and line instead of a pip resolver trace.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from trex_bench.core.errors import DataError

__all__ = ["parse_lock", "read_lock"]

_PIN = re.compile(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9][A-Za-z0-9.+!_-]*)")
_REQUIRED = ("torch", "stable-baselines3", "ale-py")


def _canonical(name: str) -> str:
    """PEP 503 name: ``Stable_Baselines3`` → ``stable-baselines3``."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str, source: str = "requirements.lock") -> dict[str, str]:
    """``name==version`` lines (comments and blank lines allowed) → ``{canonical name: version}``.

    Raises:
        ValueError: a line that is not an exact pin, a package pinned twice, or a lock without torch,
            stable-baselines3 or ale-py; the message names ``source`` and the line.

    >>> parse_lock("# c\\ntorch==2.13.0+cpu\\nstable_baselines3==2.9.2\\nale-py==0.12.1\\n")["stable-baselines3"]
    '2.9.2'
    """
    pins: dict[str, str] = {}
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        m = _PIN.fullmatch(line)
        if m is None:
            raise DataError(
                f"{source} line {n}: {raw.strip()[:80]!r} is not an exact pin name==version "
                "(a corrupt lock file: restore it with git or refresh it with `make lock`)"
            )
        name = _canonical(m.group(1))
        if name in pins:
            raise DataError(f"{source} line {n}: {name} is pinned twice (a corrupt lock file; `make lock`)")
        pins[name] = m.group(2)
    missing = [p for p in _REQUIRED if p not in pins]
    if missing:
        raise DataError(f"{source} pins no {', '.join(missing)} (a corrupt or partial lock file; `make lock`)")
    return pins


def read_lock(path: str | Path) -> dict[str, str]:
    """``parse_lock`` of a file; ValueError when it is missing or not UTF-8 text."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p} does not exist (the lock file; `make lock` writes it)")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{p}: not UTF-8 text (a corrupt lock file; `make lock`)") from e
    return parse_lock(text, str(p))


def main(argv: list[str]) -> int:
    """``python3 -m trex_bench.core.lockfile check FILE``: exit 0 and a one-line summary, or 2 and the error."""
    if len(argv) != 2 or argv[0] != "check":
        print("usage: python3 -m trex_bench.core.lockfile check FILE", file=sys.stderr)
        return 2
    try:
        pins = read_lock(argv[1])
    except ValueError as e:
        print(f"lock file error: {e}", file=sys.stderr)
        return 2
    print(f"{argv[1]}: {len(pins)} pinned packages; " + ", ".join(f"{p} {pins[p]}" for p in _REQUIRED))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
