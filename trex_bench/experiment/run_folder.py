"""A run folder's stage cache: each stage in its own sub-folder, keyed, written atomically, reused on ``--resume``.

A stage is built into ``<run>/.<name>.tmp``; when it finishes, its ``stage.json`` records its *key* (a hash of its
resolved sub-config and its inputs' keys), its wall time and the hash of every file it wrote, and the folder is renamed
into place. A stage folder with the same key is reused, its files checked against those hashes; one with another key
is refused (another config made it: nothing is overwritten). A *resumable* stage (PPO, whose runs outlast a session)
keeps an interrupted ``.<name>.tmp`` (its ``.partial-key`` names the key it is built for) and hands it to ``build`` to
go on from (``trex_bench.rl.resume``); one built for another key is refused too, never dropped.

A run folder has one owner at a time (:func:`own`): the process running it holds an exclusive lock on
``<run>/.owner.lock`` (``filelock``: an ``flock``, which the kernel releases when the process dies, even by
``kill -9``) for the run's life, with its pid in ``<run>/.owner.pid``. A second ``pipeline`` (or sweep child) on the
same folder is refused at once, naming that pid, and writes nothing; the next owner removes the temp stage folders a
dead owner left (all but a resumable stage's, which it goes on from).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.errors import RunFolderError
from trex_bench.core.io import file_hash, read_json, stable_hash, write_json

__all__ = ["StageRecord", "RunFolder", "stage_key", "own", "owner"]

Log = Callable[[str], None]
PARTIAL_KEY = ".partial-key"  # in a resumable stage's tmp folder: the key it is being built for
OWNER_LOCK = ".owner.lock"
OWNER_PID = ".owner.pid"


def owner(folder: Path) -> int | None:
    """The pid of the live process that owns ``folder`` (holds its lock), 0 when its pid is unknown, None when no
    process owns it."""
    from filelock import FileLock, Timeout

    if not (folder / OWNER_LOCK).exists():
        return None
    probe = FileLock(str(folder / OWNER_LOCK))
    try:
        probe.acquire(blocking=False)
    except Timeout:
        try:
            return int((folder / OWNER_PID).read_text().strip())
        except (OSError, ValueError):
            return 0
    probe.release()
    return None


@contextlib.contextmanager
def own(folder: Path, log: Log) -> Iterator[None]:
    """Hold ``folder`` (which exists) for this process while the block runs; remove the temp stage folders of a
    dead owner first.

    Raises:
        RunFolderError: another live process owns it ("run folder … in use by pid N"); nothing is written.
    """
    from filelock import FileLock, Timeout

    lock = FileLock(str(folder / OWNER_LOCK))
    try:
        lock.acquire(blocking=False)
    except Timeout:
        pid = owner(folder)
        who = f"pid {pid}" if pid else "another process"
        raise RunFolderError(
            f"run folder {folder} in use by {who}; wait for it to finish (or stop it), then run again with --resume"
        ) from None
    try:
        (folder / OWNER_PID).write_text(f"{os.getpid()}\n")
        for tmp in sorted(folder.glob(".*.tmp")):
            if tmp.is_dir() and not (tmp / PARTIAL_KEY).is_file():  # a resumable stage's is gone on from instead
                shutil.rmtree(tmp, ignore_errors=True)
                log(f"removed {tmp.name}, a stage an earlier run left unfinished")
        yield
    finally:
        (folder / OWNER_PID).unlink(missing_ok=True)
        lock.release()


def stage_key(obj: Any) -> str:
    """A stage's key: 16 hex digits of the SHA-256 of ``obj`` as sorted JSON (paths and other objects as ``str``)."""
    return stable_hash(obj)


def _folder_hashes(folder: Path) -> dict[str, str]:
    """``file_hash`` of every file under ``folder`` except its ``stage.json``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): file_hash(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "stage.json"
    }


@dataclass(frozen=True)
class StageRecord:
    """One finished stage: its folder, key and wall time (as recorded when it ran), and whether this run reused it."""

    name: str
    folder: Path
    key: str
    wall_s: float
    reused: bool


class RunFolder:
    """The stage cache of one run folder; ``log`` receives one line per stage event (nothing is printed here)."""

    def __init__(self, folder: Path, log: Log) -> None:
        from trex_bench.core.io import git_commit

        self.folder, self.log = folder, log
        self.commit = git_commit()  # the code that runs is the code at the start, whatever is committed meanwhile
        self.records: dict[str, StageRecord] = {}

    @property
    def walls(self) -> dict[str, float]:
        return {name: r.wall_s for name, r in self.records.items()}

    @property
    def reused(self) -> list[str]:
        return [name for name, r in self.records.items() if r.reused]

    def stage(self, name: str, key_obj: Any, build: Callable[[Path], object], resumable: bool = False) -> StageRecord:
        """Run ``build(tmp_dir)`` unless ``<run>/<name>`` already holds this key; with ``resumable``, an interrupted
        build of the same key is left in ``tmp_dir`` for ``build`` to go on from."""
        key = stage_key(key_obj)
        final = self.folder / name
        meta = final / "stage.json"
        if meta.exists():
            old = read_json(meta)
            if old.get("key") != key:
                raise RunFolderError(
                    f"{final} was made by another config (key {old.get('key')} ≠ {key}); use another --out"
                )
            _check_files(final, old)
            self.log(f"[{name}] reused (key {key})")
            return self._record(StageRecord(name, final, key, float(old.get("wall_s", 0.0)), reused=True))
        if final.exists():
            shutil.rmtree(final)  # a stage folder without stage.json: not one this code leaves (see below)
        tmp = self.folder / f".{name}.tmp"
        partial = resumable and self.partial(name) is not None
        if partial and (old_key := (tmp / PARTIAL_KEY).read_text()) != key:  # hours of PPO: never dropped unasked
            raise RunFolderError(
                f"{tmp} holds an unfinished run of another config (key {old_key} ≠ {key}); rerun it with the "
                f"config it was started with, use another --out, or delete {tmp.name} to start it again"
            )
        if not partial:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
            if resumable:
                (tmp / PARTIAL_KEY).write_text(key)
        self.log(f"[{name}] {'going on from where an interrupted run stopped' if partial else 'running'} …")
        t0 = time.perf_counter()
        build(tmp)
        wall = time.perf_counter() - t0
        (tmp / PARTIAL_KEY).unlink(missing_ok=True)
        utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        files = _folder_hashes(tmp)  # hashed and recorded before the rename: a kill cannot leave it unrecorded
        record = {"stage": name, "key": key, "key_of": key_obj, "wall_s": wall, "utc": utc, "files": files}
        write_json(tmp / "stage.json", record)
        os.replace(tmp, final)
        self.log(f"[{name}] done in {wall:.0f} s")
        return self._record(StageRecord(name, final, key, wall, reused=False))

    def partial(self, name: str) -> Path | None:
        """The folder of an interrupted build of the resumable stage ``name`` (``.<name>.tmp`` with its key), which
        ``stage`` goes on from when the key is the same; None where there is none."""
        tmp = self.folder / f".{name}.tmp"
        return tmp if (tmp / PARTIAL_KEY).is_file() else None

    def _record(self, record: StageRecord) -> StageRecord:
        self.records[record.name] = record
        return record


def _check_files(final: Path, meta: dict[str, Any]) -> None:
    """A reused stage's files must be the ones it wrote (a stage.json without hashes is trusted)."""
    recorded = meta.get("files")
    if not isinstance(recorded, dict):
        return
    for rel, digest in recorded.items():
        path = final / rel
        if not path.is_file():
            raise RunFolderError(f"{path} is missing from a finished stage; delete {final} and rerun to rebuild it")
        if file_hash(path) != digest:
            raise RunFolderError(
                f"{path} changed after its stage finished (hash {file_hash(path)} ≠ {digest}); "
                f"delete {final} and rerun to rebuild it"
            )
