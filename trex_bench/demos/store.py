"""The demo-set format: compact action logs + seeds, saved atomically, loaded with every check on the record.

A demo set is a folder::

    manifest.json       schema, game, env profile (full settings), versions, demonstrator, command, episode list
    ep_0000.npz         actions uint8 [T], rewards float32 [T], seed, noise, checkpoint, truncated,
    ep_0001.npz ...     hash_steps int64 [H], frame_hashes uint64 [H]   (no pickled objects)

Replaying an episode from ``(seed, actions)`` and verifying a set against its frame hashes is ``demos.replay``
(``replay`` is re-exported here, where DESIGN.md's API names it); ``FrameCache`` (``demos.frames``, re-exported
too) keeps replayed frames as uint8 single 84×84 frames so later stages never replay twice.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from trex_bench.core.envs import get_profile
from trex_bench.core.errors import DataError, DemoError
from trex_bench.core.games import get_game
from trex_bench.core.io import atomic_write, check_path, claim_output, new_mode, read_json, versions, write_json
from trex_bench.core.types import DemoSet, Episode

__all__ = [
    "SCHEMA_VERSION",
    "HASH_EVERY",
    "DemoError",
    "check_demo_out",
    "save_demos",
    "merge_demo_sets",
    "load_demos",
    "replay",
]

SCHEMA_VERSION = 1
HASH_EVERY = 25  # hash the newest frame every 25 agent steps, and the last one


def hash_steps_for(length: int) -> np.ndarray:
    """Observation indices hashed for an episode of ``length`` steps: 0, 25, 50, ... and ``length``."""
    return np.unique(np.append(np.arange(0, length + 1, HASH_EVERY), length)).astype(np.int64)


# -- save / load ---------------------------------------------------------------------------------------------------
def _episode_file(i: int) -> str:
    return f"ep_{i:04d}.npz"


def _manifest(ds: DemoSet) -> dict:
    return {
        "schema_version": SCHEMA_VERSION,
        "game": ds.game,
        "profile": ds.profile,
        "profile_settings": ds.profile_settings,
        "demonstrator": ds.demonstrator,
        "versions": ds.versions or versions(),
        "created_by": ds.created_by,
        "content_hash": ds.content_hash(),
        "episodes": [
            {
                "file": _episode_file(i),
                "seed": e.seed,
                "reset_index": e.reset_index,
                "return": e.ret,
                "length": e.length,
                "noise": e.noise,
                "checkpoint": e.checkpoint,
                "truncated": e.truncated,
            }
            for i, e in enumerate(ds.episodes)
        ],
    }


def _save_episode(ep: Episode, path: Path) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez_compressed(
                f,
                actions=ep.actions,
                rewards=ep.rewards,
                seed=np.int64(ep.seed),
                reset_index=np.int64(ep.reset_index),
                noise=np.float64(ep.noise),
                checkpoint=np.int64(ep.checkpoint),
                truncated=np.bool_(ep.truncated),
                hash_steps=ep.hash_steps,
                frame_hashes=ep.frame_hashes,
            )

    atomic_write(path, write)


def _set_at(out: Path) -> str | None:
    """What ``out`` holds: ``""`` nothing (absent or an empty folder), a demo set's content hash, or None (a file, or
    a folder holding anything but what ``save_demos`` writes: a demo-set ``manifest.json`` and ``.npz`` files)."""
    if not out.exists():
        return ""
    if not out.is_dir():
        return None
    if not any(out.iterdir()):
        return ""
    try:
        m = read_json(out / "manifest.json")
    except (ValueError, OSError):
        return None
    if not (isinstance(m, dict) and "schema_version" in m and "episodes" in m):
        return None
    if not all(p.name == "manifest.json" or (p.suffix == ".npz" and p.is_file()) for p in out.iterdir()):
        return None
    return str(m.get("content_hash"))


def check_demo_out(out: str | Path, overwrite: bool = False) -> str:
    """Refuse an ``--out`` that ``save_demos`` must not write: a file, another demo set (unless ``overwrite``), or a
    non-empty folder that is not a demo set (``overwrite`` replaces demo sets only). Call it before collecting.

    Returns:
        What ``out`` holds now: ``""`` (nothing) or the content hash of the demo set there. Pass it to
        ``save_demos(..., replaces=)`` so that a set another process writes there meanwhile is not replaced.

    Raises:
        DemoError: one line naming ``out``.
    """
    out = Path(out)
    try:
        check_path(out, into=True)  # a name too long, a dangling link, a file above it: before any stat of it
        if out.exists() and not out.is_dir():
            raise DemoError(f"{out} is a file, not a demo-set folder; choose another --out")
        claim_output(out, "demo_set")  # the one writer rule: never into a reward model, an agent, a run folder …
    except DataError as e:
        raise DemoError(str(e)) from e
    found = _set_at(out)
    if found is None:
        raise DemoError(
            f"{out} is a non-empty folder that is not a demo set; --overwrite replaces only a demo set: "
            "choose another --out"
        )
    if found and not overwrite:
        raise DemoError(f"{out} already holds a demo set; pass --overwrite to replace it")
    return found


def _written_meanwhile(out: Path) -> DemoError:
    return DemoError(
        f"{out}: another process wrote a demo set there while this one was collecting; this set was not saved "
        "(choose another --out, or run again to replace it with --overwrite)"
    )


@contextlib.contextmanager
def _publish_lock(parent: Path) -> Iterator[None]:
    """An exclusive ``flock`` on the folder that receives the set, held while a writer checks and renames: two
    processes publishing into one ``--out`` take turns (the lock goes with the descriptor; no lock file is left)."""
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def save_demos(ds: DemoSet, out: str | Path, overwrite: bool = False, replaces: str | None = None) -> Path:
    """Write ``ds`` to folder ``out`` atomically (a temp folder renamed into place: no partial set is ever seen).

    The files are written beside ``out``; the check of ``out`` and the rename happen under a lock on its parent
    folder, so of two processes saving into one ``out`` at once exactly one publishes its whole set and the other
    fails.

    Args:
        ds: the demo set.
        out: its folder.
        overwrite: replace a demo set already at ``out``.
        replaces: what ``check_demo_out`` found at ``out`` before collecting (``""`` or a set's content hash); when
            given, a different set there now (another process wrote it meanwhile) is refused, even with
            ``overwrite``. When None, what ``out`` held when this call began.

    Raises:
        DemoError: ``out`` already holds a *different* demo set and ``overwrite`` is False (saving the very
            same set again is a no-op), ``out`` is a file or a non-empty folder that is not a demo set (even
            with ``overwrite``, which replaces only a demo set), or another process wrote a set at ``out``
            since ``replaces`` was taken (or since this call began).
    """
    out = Path(out)
    try:
        check_path(out, into=True)
    except DataError as e:
        raise DemoError(str(e)) from e
    if out.is_symlink() and out.is_dir():
        out = out.resolve()  # a link to a folder: the set goes into the folder, the link stays a link
    if _set_at(out) == ds.content_hash():
        return out
    found = check_demo_out(out, overwrite)
    before = found if replaces is None else replaces
    if found != before:
        raise _written_meanwhile(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name[:64]}.", dir=out.parent))
    except OSError as e:  # a read-only parent: name the user's folder, not the temp folder
        raise DemoError(f"cannot write {out}: {e.strerror or e}") from e
    trash = None
    try:
        os.chmod(tmp, out.stat().st_mode & 0o7777 if out.is_dir() else new_mode(directory=True))  # not mkdtemp's 0700
        for i, ep in enumerate(ds.episodes):
            _save_episode(ep, tmp / _episode_file(i))
        write_json(tmp / "manifest.json", _manifest(ds))
        with _publish_lock(out.parent):
            now = _set_at(out)
            if now == ds.content_hash():  # the very same set, published meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
                return out
            if now != before:
                raise _written_meanwhile(out)
            check_demo_out(out, overwrite)
            if out.exists():
                trash = Path(tempfile.mkdtemp(prefix=f".{out.name[:64]}.old.", dir=out.parent))
                os.replace(out, trash / "old")
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        if trash is not None:
            shutil.rmtree(trash, ignore_errors=True)
    return out


def _load_episode(path: Path) -> Episode:
    if not path.exists():
        raise DemoError(f"{path}: episode file is missing")
    try:
        with np.load(path, allow_pickle=False) as z:
            bad = np.flatnonzero(~np.isfinite(z["rewards"]))
            if len(bad):  # a NaN/inf reward would turn returns, rankings and reports into NaN downstream
                raise DemoError(
                    f"{path}: non-finite reward {z['rewards'][bad[0]]} at step {int(bad[0])} ({len(bad)} such steps)"
                )
            seed = int(z["seed"])
            if not 0 <= seed < 2**31:  # what AtariVecEnv records; ale-py's reset takes int32 seeds only
                raise DemoError(f"{path}: seed {seed} is outside 0..2**31-1, the seeds episodes are recorded with")
            return Episode(
                seed=seed,
                actions=z["actions"],
                rewards=z["rewards"],
                hash_steps=z["hash_steps"],
                frame_hashes=z["frame_hashes"],
                noise=float(z["noise"]),
                checkpoint=int(z["checkpoint"]),
                truncated=bool(z["truncated"]),
                reset_index=int(z["reset_index"]),
            )
    except DemoError:
        raise
    except Exception as e:  # zipfile.BadZipFile, KeyError, EOFError, ValueError from a truncated/corrupt file
        raise DemoError(f"{path}: corrupt or truncated episode file ({type(e).__name__}: {e})") from e


_MANIFEST_KEYS = {"game": str, "profile": str, "profile_settings": dict, "demonstrator": str, "episodes": list}
_EPISODE_KEYS = {"file": str, "return": (int, float), "length": int}


def _check_manifest(m: object, mpath: Path) -> dict:
    """The manifest's structure (keys, types, plain episode file names), refused in one line naming ``mpath``."""
    if not isinstance(m, dict):
        raise DemoError(f"{mpath}: malformed manifest (a JSON object is expected, got {type(m).__name__})")
    for key, typ in _MANIFEST_KEYS.items():
        if not isinstance(m.get(key), typ):
            raise DemoError(f"{mpath}: malformed manifest ({key!r} missing or not a {typ.__name__})")
    for n, rec in enumerate(m["episodes"]):
        if not isinstance(rec, dict):
            raise DemoError(f"{mpath}: malformed manifest (episode entry {n} is not an object)")
        for key, typ in _EPISODE_KEYS.items():
            if not isinstance(rec.get(key), typ) or isinstance(rec.get(key), bool):
                raise DemoError(
                    f"{mpath}: malformed manifest (episode entry {n}: {key!r} missing or of the wrong type)"
                )
        name = rec["file"]
        if name != Path(name).name or name in ("", ".", "..") or "\\" in name:
            raise DemoError(f"{mpath}: episode entry {n} names {name!r}, which is not a file inside the demo set")
        if not np.isfinite(rec["return"]):
            raise DemoError(f"{mpath}: episode entry {n} ({name}) records a non-finite return {rec['return']}")
    return m


def load_demos(
    folder: str | Path, game: str | None = None, profile: str | None = None, strict_versions: bool = False
) -> DemoSet:
    """Read a demo set.

    Args:
        folder: the demo-set folder.
        game: when given, refuse a set of another game.
        profile: when given, refuse a set recorded under another env profile.
        strict_versions: refuse (rather than warn) when the set was recorded with another ale-py version.

    Raises:
        DemoError: missing folder/manifest/episode, corrupt or truncated file, a malformed manifest or one naming a
            file outside the folder, a non-finite reward or return, wrong game or profile, or a manifest whose
            recorded returns disagree with the episode files.
    """
    folder = Path(folder)
    mpath = folder / "manifest.json"
    if not mpath.exists():
        raise DemoError(f"{folder}: not a demo set (no manifest.json)")
    try:
        m = _check_manifest(read_json(mpath), mpath)
    except DemoError:
        raise
    except ValueError as e:
        raise DemoError(str(e)) from e
    if m.get("schema_version") != SCHEMA_VERSION:
        raise DemoError(f"{mpath}: schema version {m.get('schema_version')!r}, this trex_bench reads {SCHEMA_VERSION}")
    if game is not None and get_game(game).id != m["game"]:
        raise DemoError(f"{folder} holds {m['game']} demos, not {get_game(game).id}")
    if profile is not None and get_profile(profile).name != m["profile"]:
        raise DemoError(f"{folder} was recorded under env profile {m['profile']!r}, not {profile!r}")
    if m["profile"] in ("paper", "machado") and m["profile_settings"] != get_profile(m["profile"]).settings():
        raise DemoError(
            f"{folder}: env profile {m['profile']!r} was recorded with settings {m['profile_settings']}, "
            f"which differ from this trex_bench's {get_profile(m['profile']).settings()}"
        )
    here = versions()["ale-py"]
    there = m["versions"].get("ale-py") if isinstance(m.get("versions"), dict) else None
    if there != here:
        msg = f"{folder} was recorded with ale-py {there}, this is ale-py {here}: frames may differ (run demos verify)"
        if strict_versions:
            raise DemoError(msg)
        warnings.warn(msg, stacklevel=2)
    episodes = []
    for rec in m["episodes"]:
        ep = _load_episode(folder / rec["file"])
        if not abs(ep.ret - rec["return"]) <= 1e-6 or ep.length != rec["length"]:
            raise DemoError(f"{folder / rec['file']}: return/length disagree with manifest.json")
        episodes.append(ep)
    if not episodes:
        raise DemoError(f"{folder}: manifest lists no episodes")
    return DemoSet(
        game=m["game"],
        profile=m["profile"],
        profile_settings=m["profile_settings"],
        demonstrator=m["demonstrator"],
        episodes=tuple(episodes),
        versions=m["versions"] if isinstance(m.get("versions"), dict) else {},
        created_by=m.get("created_by", ""),
    )


def merge_demo_sets(parts: list[DemoSet]) -> DemoSet:
    """One set holding the episodes of ``parts`` in order (same game and profile required)."""
    first = parts[0]
    for p in parts[1:]:
        if (p.game, p.profile, p.profile_settings) != (first.game, first.profile, first.profile_settings):
            raise DemoError("cannot merge demo sets of different games or env profiles")
    demonstrators = list(dict.fromkeys(p.demonstrator for p in parts))
    return DemoSet(
        game=first.game,
        profile=first.profile,
        profile_settings=first.profile_settings,
        demonstrator="; ".join(demonstrators),
        episodes=tuple(e for p in parts for e in p.episodes),
        versions=first.versions,
        created_by=first.created_by,
    )


# Replay lives in ``demos.replay``; ``replay`` is re-exported here, where DESIGN.md's API names it.
from trex_bench.demos.replay import replay  # noqa: E402, F401
