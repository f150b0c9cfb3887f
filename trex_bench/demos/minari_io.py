"""Demo sets as Minari datasets and back (the optional extra ``minari``: ``pip install -e ".[minari]"``).

A demo set stores seeds and actions; a Minari dataset stores what an offline-RL user reads: observations, actions,
rewards, terminations and truncations per episode. ``export_minari`` replays every episode (``verify_demos``),
refuses the set if any episode does not replay to its record, and writes the replayed frames as observations
(uint8 [T+1, 84, 84], the newest frame of each observation; losslessly: ``jpeg_encoding=False``), the actions, the
true per-step rewards, and per episode our metadata (chain seed, reset index, noise level, checkpoint, hash steps and
frame hashes). ``import_minari`` rebuilds the demo set from those, checks the stored observations against the
frame hashes and replays the rebuilt set (``verify_demos``) before it is published: a dataset whose rewards, actions or
game were edited is refused, so the round trip keeps actions, rewards and frames exactly.

A dataset id is checked before anything is read or made (``check_dataset_id``): Minari makes ``<datasets>/<id>/``
from it, so an id with a space, no version, an absolute path or ``..`` once left a folder (inside the datasets
folder or outside it) that broke every later export and import.

Datasets live where Minari keeps them (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).
"""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from trex_bench.core.errors import DataError
from trex_bench.core.games import get_game
from trex_bench.core.io import git_commit
from trex_bench.core.types import DemoSet, Episode
from trex_bench.demos.replay import frame_hash, verify_demos
from trex_bench.demos.store import check_demo_out, load_demos, save_demos

__all__ = ["export_minari", "import_minari", "check_dataset_id", "FORMAT"]

FORMAT = "trex_bench demo set v1"
# Minari's ``(namespace/)name-v<version>``, each part letters, digits, '_' or '-': no empty, '.' or '..' part, no
# absolute path, so the dataset's folder is always inside the datasets folder.
_DATASET_ID = re.compile(r"[A-Za-z0-9_-]+(?:/[A-Za-z0-9_-]+)*-v[0-9]+")
_READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, IndexError)  # what h5py/Minari raise


def check_dataset_id(name: str) -> str:
    """``name`` if it is a Minari dataset id this module may create or read.

    >>> check_dataset_id("trex/breakout/ppo-v0")
    'trex/breakout/ppo-v0'

    Raises:
        ValueError: one line naming the id and the form it must have.
    """
    if not (isinstance(name, str) and _DATASET_ID.fullmatch(name)):
        raise DataError(
            f"{name!r} is not a Minari dataset id: (namespace/)name-v<version>, each part letters, digits, '_' or '-' "
            "(e.g. trex/breakout/ppo-v0)"
        )
    return name


def _dataset_folder(name: str) -> Path:
    """Where Minari keeps the dataset ``name`` (checked first); it exists when its ``data/`` does."""
    from minari.storage import get_dataset_path

    return Path(get_dataset_path(check_dataset_id(name)))


def _minari() -> Any:
    try:
        import minari
    except ModuleNotFoundError as e:
        raise DataError('Minari is not installed: pip install -e ".[minari]" (the optional extra)') from e
    return minari


def _n_actions(game: str, profile: str) -> int:
    from trex_bench.core.envs import make_ale_vector_env

    env = make_ale_vector_env(game, profile, 1)
    try:
        return int(env.single_action_space.n)
    finally:
        env.close()


def export_minari(demos: str | Path, name: str, n_envs: int = 4) -> Path:
    """Write the demo set folder ``demos`` as the Minari dataset ``name``; returns the dataset's folder.

    Raises:
        ValueError: Minari missing, a dataset ``name`` that exists, or an episode whose replay fails verification
            (the set is refused; nothing is written).
    """
    minari = _minari()
    from gymnasium import spaces
    from minari.data_collector.episode_buffer import EpisodeBuffer

    folder = _dataset_folder(name)
    if folder.exists():
        raise DataError(f"Minari dataset {name!r} exists already at {folder} (minari delete {name})")
    ds = load_demos(demos)
    results = verify_demos(ds, n_envs=n_envs)
    bad = [r for r in results if not r.ok]
    if bad:
        detail = "; ".join(f"episode {r.index}: {r.message}" for r in bad[:3])
        raise DataError(
            f"{demos}: {len(bad)} of {len(results)} episodes fail replay verification ({detail}); refusing to export"
        )
    from trex_bench.demos.replay import replay_many

    replayed = replay_many(ds.episodes, ds.game, ds.profile, n_envs)
    buffers = []
    for i, (ep, (frames, _)) in enumerate(zip(ds.episodes, replayed, strict=True)):
        last = np.zeros(ep.length, bool)
        last[-1] = True
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=frames,
                actions=ep.actions.astype(np.int64),
                rewards=ep.rewards.astype(np.float64),
                terminations=last & (not ep.truncated),
                truncations=last & ep.truncated,
                infos={},
            )
        )
    meta = {
        "format": FORMAT,
        "game": ds.game,
        "profile": ds.profile,
        "profile_settings": ds.profile_settings,
        "demonstrator": ds.demonstrator,
        "versions": ds.versions,
        "created_by": ds.created_by,
        "source_content_hash": ds.content_hash(),
    }
    try:
        _write_dataset(minari, name, buffers, ds, demos, meta, spaces)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # no half-made dataset stays behind to break later commands
        raise
    return folder / "data"


def _write_dataset(
    minari: Any, name: str, buffers: list, ds: DemoSet, demos: str | Path, meta: dict, spaces: Any
) -> None:
    with warnings.catch_warnings():
        # Minari asks for an author e-mail, an eval env and an env spec; a replayed ALE demo set has none of them.
        warnings.filterwarnings("ignore", message=r".*(author_email|eval_env|env_spec)", category=UserWarning)
        dataset = minari.create_dataset_from_buffers(
            name,
            buffers,
            observation_space=spaces.Box(0, 255, (84, 84), np.uint8),
            action_space=spaces.Discrete(_n_actions(ds.game, ds.profile)),
            algorithm_name=ds.demonstrator,
            author="trex_bench",
            code_permalink=f"trex_bench commit {git_commit()}",
            description=f"trex_bench demo set {Path(demos).name}: {ds.game}, {len(ds.episodes)} episodes, "
            f"observations rebuilt by replay (newest 84x84 frame per step)",
            jpeg_encoding=False,
        )
    dataset.storage.update_metadata({"trex_bench": json.dumps(meta, sort_keys=True)})
    dataset.storage.update_episode_metadata(
        [
            {
                "trex_seed": int(ep.seed),
                "reset_index": int(ep.reset_index),
                "noise": float(ep.noise),
                "checkpoint": int(ep.checkpoint),
                "truncated": bool(ep.truncated),
                "hash_steps": ep.hash_steps.astype(np.int64),
                "frame_hashes": ep.frame_hashes.astype(np.uint64),
            }
            for ep in ds.episodes
        ]
    )


def import_minari(name: str, out: str | Path, overwrite: bool = False, n_envs: int = 4) -> DemoSet:
    """Rebuild the demo set of the Minari dataset ``name`` (one ``export_minari`` wrote) into the folder ``out``.

    The set is published only after its stored observations match the recorded frame hashes and a replay of its
    seeds and actions gives those frames and its rewards (``verify_demos``): edited rewards (1000, NaN), actions
    outside the game's action set and a relabelled game are refused, and nothing is written.

    Raises:
        ValueError: Minari missing, a malformed id, no such dataset, one not exported by trex_bench or unreadable
            (a truncated HDF5), an ``out`` that ``check_demo_out`` refuses (``overwrite`` replaces a demo set there),
            or a set that does not replay to its record; one line each.
    """
    minari = _minari()
    folder = _dataset_folder(name)
    if not (folder / "data").is_dir():
        raise DataError(f"no local Minari dataset {name!r} at {folder} (minari list local)")
    seen = check_demo_out(out, overwrite)  # before reading: an --out that cannot receive the set fails first
    try:
        ds = _read_dataset(minari, name)
    except _READ_ERRORS as e:
        if isinstance(e, DataError):
            raise
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise DataError(f"Minari dataset {name!r} cannot be read ({type(e).__name__}: {first})") from e
    results = verify_demos(ds, n_envs=n_envs)
    bad = [r for r in results if not r.ok]
    if bad:
        detail = "; ".join(f"episode {r.index}: {r.message}" for r in bad[:3])
        raise DataError(
            f"Minari dataset {name!r}: {len(bad)} of {len(results)} episodes do not replay to their record "
            f"({detail}); nothing was written"
        )
    save_demos(ds, out, overwrite=overwrite, replaces=seen)
    return ds


def _read_dataset(minari: Any, name: str) -> DemoSet:
    """The demo set stored in a dataset, its observations checked against the frame hashes; not yet replayed."""
    dataset = minari.load_dataset(name)
    raw = dataset.storage.metadata.get("trex_bench")
    try:
        meta = json.loads(raw) if isinstance(raw, str) else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"Minari dataset {name!r} was not exported by trex_bench (no {FORMAT!r} metadata)")
    get_game(meta.get("game"))  # a game this package does not know: one line
    ids = list(range(dataset.total_episodes))
    episodes = []
    for data, em in zip(dataset.iterate_episodes(ids), dataset.storage.get_episode_metadata(ids), strict=True):
        hash_steps = np.asarray(em["hash_steps"], np.int64)
        hashes = np.asarray(em["frame_hashes"], np.uint64)
        frames = np.asarray(data.observations)
        got = np.array([frame_hash(frames[s]) for s in hash_steps], np.uint64)
        if not np.array_equal(got, hashes):
            raise DataError(f"Minari dataset {name!r}, episode {data.id}: observations do not match the frame hashes")
        rewards = np.asarray(data.rewards)
        if not np.isfinite(rewards).all():
            raise DataError(f"Minari dataset {name!r}, episode {data.id}: a reward that is not a finite number")
        actions = np.asarray(data.actions)
        if actions.size and (actions.min() < 0 or actions.max() > 255):
            raise DataError(f"Minari dataset {name!r}, episode {data.id}: action {int(actions.max())} is no ALE action")
        episodes.append(
            Episode(
                seed=int(em["trex_seed"]),
                actions=actions.astype(np.uint8),
                rewards=rewards.astype(np.float32),
                hash_steps=hash_steps,
                frame_hashes=hashes,
                noise=float(em["noise"]),
                checkpoint=int(em["checkpoint"]),
                truncated=bool(em["truncated"]),
                reset_index=int(em["reset_index"]),
            )
        )
    return DemoSet(
        game=meta["game"],
        profile=meta["profile"],
        profile_settings=meta["profile_settings"],
        demonstrator=meta["demonstrator"],
        episodes=tuple(episodes),
        versions=meta.get("versions", {}),
        created_by=meta.get("created_by", ""),
    )
