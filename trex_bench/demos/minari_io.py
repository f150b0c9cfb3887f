"""Demo sets as Minari datasets and back (the optional extra ``minari``: ``pip install -e ".[minari]"``).

A demo set stores seeds and actions; a Minari dataset stores what an offline-RL user reads: observations, actions,
rewards, terminations and truncations per episode. ``export_minari`` replays every episode (``verify_demos``),
refuses the set if any episode does not replay to its record, and writes the replayed frames as observations
(uint8 [T+1, 84, 84], the newest frame of each observation; losslessly: ``jpeg_encoding=False``), the actions, the
true per-step rewards, and per episode our metadata (chain seed, reset index, noise level, checkpoint, hash steps and
frame hashes). ``import_minari`` rebuilds the demo set from those and checks the stored observations against the
frame hashes, so the round trip keeps actions, rewards and frames exactly.

Datasets live where Minari keeps them (``$MINARI_DATASETS_PATH``, default ``~/.minari/datasets``).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from trex_bench.core.errors import DataError
from trex_bench.core.io import git_commit
from trex_bench.core.types import DemoSet, Episode
from trex_bench.demos.replay import frame_hash, verify_demos
from trex_bench.demos.store import load_demos, save_demos

__all__ = ["export_minari", "import_minari", "FORMAT"]

FORMAT = "trex_bench demo set v1"


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

    if name in minari.list_local_datasets():
        raise DataError(f"Minari dataset {name!r} exists already (minari delete {name})")
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
    return Path(dataset.storage.data_path)


def import_minari(name: str, out: str | Path, overwrite: bool = False) -> DemoSet:
    """Rebuild the demo set of the Minari dataset ``name`` (one ``export_minari`` wrote) into the folder ``out``.

    Raises:
        ValueError: Minari missing, no such dataset, a dataset not exported by trex_bench, or stored observations
            that do not match the recorded frame hashes.
    """
    minari = _minari()
    if name not in minari.list_local_datasets():
        raise DataError(f"no local Minari dataset {name!r} (minari list local)")
    dataset = minari.load_dataset(name)
    raw = dataset.storage.metadata.get("trex_bench")
    meta = json.loads(raw) if isinstance(raw, str) else None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"Minari dataset {name!r} was not exported by trex_bench (no {FORMAT!r} metadata)")
    ids = list(range(dataset.total_episodes))
    episodes = []
    for data, em in zip(dataset.iterate_episodes(ids), dataset.storage.get_episode_metadata(ids), strict=True):
        hash_steps = np.asarray(em["hash_steps"], np.int64)
        hashes = np.asarray(em["frame_hashes"], np.uint64)
        frames = np.asarray(data.observations)
        got = np.array([frame_hash(frames[s]) for s in hash_steps], np.uint64)
        if not np.array_equal(got, hashes):
            raise DataError(f"Minari dataset {name!r}, episode {data.id}: observations do not match the frame hashes")
        episodes.append(
            Episode(
                seed=int(em["trex_seed"]),
                actions=np.asarray(data.actions).astype(np.uint8),
                rewards=np.asarray(data.rewards).astype(np.float32),
                hash_steps=hash_steps,
                frame_hashes=hashes,
                noise=float(em["noise"]),
                checkpoint=int(em["checkpoint"]),
                truncated=bool(em["truncated"]),
                reset_index=int(em["reset_index"]),
            )
        )
    ds = DemoSet(
        game=meta["game"],
        profile=meta["profile"],
        profile_settings=meta["profile_settings"],
        demonstrator=meta["demonstrator"],
        episodes=tuple(episodes),
        versions=meta.get("versions", {}),
        created_by=meta.get("created_by", ""),
    )
    save_demos(ds, out, overwrite=overwrite)
    return ds
