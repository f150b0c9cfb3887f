"""Continue a PPO run from its newest checkpoint: a run cut off (a session's end, a crash) loses at most one interval.

A run folder in progress holds ``run.json`` (what the run was started with: game, profile, reward, PPO config, seed,
precision, KL reference) and ``checkpoints/ppo_<steps>_steps.zip`` (SB3's ``CheckpointCallback``: the policy and its
Adam state). ``resume_point`` finds the newest readable checkpoint of a folder started with the same settings;
``restore`` loads its policy weights and optimiser state with ``torch.load(weights_only=True)`` into a freshly built
model (nothing is unpickled: the zip's ``data``, with SB3's cloudpickled schedules, is never read) and sets the step
count, so the learning rate and clip range go on along their schedule from where they were.

SB3 saves a checkpoint while it collects a rollout, before that rollout's update: ``ppo_X_steps.zip`` holds the policy
after the updates of the rollouts finished before step X. The run therefore goes on from the start of X's rollout
(``ResumePoint.updated_steps``), collecting that rollout again with the same policy, so its updates stay on the grid of
an uninterrupted run (one every ``n_envs · n_steps`` steps) and later checkpoints keep their step numbers. Between two
of these a run also saves interim ones, also while collecting (``rl.checkpoints``): every few minutes, since a kill
gives no warning (SIGKILL, the out-of-memory killer, a machine taken away), and at the step where Ctrl-C or SIGTERM
stopped it. Each is ``ppo_X_steps.interim.zip``, named apart so that the run's grid of checkpoints
(``list_checkpoints``: what a demonstrator's demos are recorded from) does not depend on when the run was stopped, and
deleted once a later checkpoint of either kind is written; ``resume_point`` considers both kinds.

A run may be extended: where its schedules have their own horizon (``PPOConfig.schedule_steps``: every budget is a
prefix of one schedule), its config's ``total_steps`` may grow when it is resumed, since a longer run takes the same
steps as the shorter one up to its end; its ``run.json`` then records the new total. It may not shrink.

Not restored: the envs and SB3's sampling rng. A resumed run starts new games and draws its actions from streams seeded
by the run's seed and the step it goes on from (``resume_seed``), so that it does not replay the games it began with;
it is not bit-identical to an uninterrupted run. Its card records the step it resumed from and that seed. What learns
beside the policy (an online reward, the KL history) is saved with each checkpoint and restored (``rl.checkpoints``).
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3 import PPO

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import _jsonable, read_json, write_json
from trex_bench.rl.agent_io import read_zip_member

__all__ = [
    "RUN_FILE",
    "ResumePoint",
    "list_checkpoints",
    "checkpoint_path",
    "begin",
    "drop_torn_writes",
    "resume_point",
    "run_precision",
    "restore",
    "updated_steps",
]

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"
INTERIM_SUFFIX = ".interim.zip"
OPTIMISER = "policy.optimizer.pth"  # SB3's name for the Adam state in its zips


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run continues from: its agent steps, file, and the policy weights and Adam state read from it
    (``read_zip_member``; read once, when the checkpoint is checked)."""

    steps: int
    path: Path
    weights: dict[str, Any] = field(repr=False)
    optimiser: dict[str, Any] = field(repr=False)

    def updated_steps(self, rollout: int) -> int:
        """Agent steps at the checkpoint's last finished update: where the run goes on (``updated_steps``)."""
        return updated_steps(self.steps, rollout)


def updated_steps(steps: int, rollout: int) -> int:
    """Agent steps at the last update finished when a checkpoint was saved at agent step ``steps`` (``rollout`` =
    ``n_envs · n_steps``; SB3 counts a rollout's steps as it collects them and updates after the last)."""
    return (steps - 1) // rollout * rollout


def list_checkpoints(folder: str | Path, interim: bool = False) -> list[tuple[int, Path]]:
    """``(agent steps, path)`` of every ``ppo_<steps>_steps.zip`` in ``folder`` (the run's grid), in training order;
    with ``interim`` also the ``ppo_<steps>_steps.interim.zip`` saved between two of them (an interim one comes after
    a grid one at the same step)."""
    found = []
    for p in Path(folder).glob("ppo_*_steps*.zip"):
        m = re.fullmatch(r"ppo_(\d+)_steps(\.interim)?\.zip", p.name)
        if m and (interim or not m.group(2)):
            found.append((int(m.group(1)), bool(m.group(2)), p))
    return [(steps, p) for steps, _, p in sorted(found)]


def checkpoint_path(folder: Path, steps: int, interim: bool = False) -> Path:
    """Where a run saves its checkpoint at agent step ``steps``: the grid's, or an interim one (see the module doc);
    the names ``list_checkpoints`` reads."""
    return folder / f"ppo_{steps}_steps{INTERIM_SUFFIX if interim else '.zip'}"


def run_precision(out: Path) -> str | None:
    """The precision an unfinished run in ``out`` was started with (its ``run.json``), None without one: a resumed
    ``auto`` run keeps its own choice, where a new probe (another session, another thread count) might differ."""
    return str(read_json(out / RUN_FILE)["precision"]) if (out / RUN_FILE).is_file() else None


def begin(out: Path, record: dict[str, Any], resume: bool) -> ResumePoint | None:
    """Where the run in ``out`` starts: with ``resume``, the checkpoint it goes on from (``resume_point``); else, or
    where there is none yet, a fresh start, whose ``run.json`` (``record``) is written.

    Raises:
        ConfigError: ``resume_point``'s refusals; a fresh start over the checkpoints of an earlier run (they would be
            mixed with the new run's).
    """
    point = resume_point(out, record) if resume else None
    if resume:
        drop_torn_writes(out / CHECKPOINTS)
    if point is not None and _total(read_json(out / RUN_FILE)) != _total(record):
        write_json(out / RUN_FILE, record)  # an extended run: later resumes check against its new total
    if point is None:
        if not resume and list_checkpoints(out / CHECKPOINTS, interim=True):
            raise ConfigError(
                f"{out} holds the checkpoints of an earlier run; pass --resume to go on with it, "
                "or start in another folder"
            )
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / RUN_FILE, record)
    return point


def drop_torn_writes(folder: Path) -> None:
    """Delete the temp files of checkpoint writes a kill cut short in ``folder`` (``core.io.atomic_write``'s
    ``.ppo_N_steps….tmp.zip``: a SIGKILL during a save's second leaves one). Only the run's one writer calls this, as
    it resumes, so no write is in flight."""
    for tmp in folder.glob(".ppo_*_steps*.tmp.zip"):
        tmp.unlink(missing_ok=True)


def resume_point(out: Path, record: dict[str, Any]) -> ResumePoint | None:
    """The newest readable checkpoint of the run in ``out``; None where the run has none yet (a fresh start). The
    unreadable ones after it are deleted: the resumed run writes them again when it gets there.

    ``record`` is what the caller would start the run with; it must equal the folder's ``run.json``.

    Raises:
        ConfigError: the run already finished (``card.json``), has checkpoints but no ``run.json`` (it cannot be
            checked), was started with other settings (the differing keys are named), or has no readable checkpoint.
    """
    if (out / "card.json").exists():
        raise ConfigError(f"{out} holds a finished run (card.json); nothing to resume")
    have = list_checkpoints(out / CHECKPOINTS, interim=True)
    run_file = out / RUN_FILE
    if not run_file.exists():
        if have:
            raise ConfigError(
                f"{out} has checkpoints but no {RUN_FILE}, so its settings cannot be checked; "
                "start it in another folder"
            )
        return None
    started_record = read_json(run_file)
    started = _settings(started_record)
    record = json.loads(json.dumps(record, default=_jsonable))  # as written: tuples read back as lists
    differ = sorted(k for k in set(started) | set(_settings(record)) if started.get(k) != _settings(record).get(k))
    if differ:
        raise ConfigError(f"{out} was started with other settings ({', '.join(differ)}); start it in another folder")
    if (_total(record) or 0) < (_total(started_record) or 0):
        raise ConfigError(
            f"{out} was started for {_total(started_record):,} steps; a resumed run can be extended, not shortened "
            f"to {_total(record):,}"
        )
    torn: list[Path] = []
    for steps, path in reversed(have):
        try:
            point = ResumePoint(steps, path, read_zip_member(path, "policy.pth"), read_zip_member(path, OPTIMISER))
        except DataError as e:  # a checkpoint torn by the kill that stopped the run: take the one before
            warnings.warn(f"skipping an unreadable checkpoint: {e}", stacklevel=2)
            torn.append(path)
            continue
        for bad in torn:  # else it stays in the grid: save_checkpoint never rewrites a checkpoint that exists
            bad.unlink()
        return point
    if have:
        raise ConfigError(f"{out}: none of its {len(have)} checkpoints is readable; start it in another folder")
    return None


def _settings(record: dict[str, Any]) -> dict[str, Any]:
    """A run record without the PPO config's ``source`` (a description of where the values come from, not one) and,
    where the config's schedules have their own horizon (``schedule_steps``), ``total_steps``: such a run may be
    extended (``resume_point`` checks that it does not shrink); without one the horizon is the total, so a new
    total is another schedule."""
    config = record.get("config")
    if isinstance(config, dict):
        drop = ("source", "total_steps") if config.get("schedule_steps") is not None else ("source",)
        record = record | {"config": {k: v for k, v in config.items() if k not in drop}}
    return record


def _total(record: dict[str, Any]) -> int | None:
    """The ``total_steps`` of a run record's PPO config (None where it has none)."""
    config = record.get("config")
    return int(config["total_steps"]) if isinstance(config, dict) and "total_steps" in config else None


def resume_seed(seed: int, steps: int) -> int:
    """The seed of a run's env and action-sampling streams when it goes on from agent step ``steps``: seeded again
    with the run's own ``seed``, a resumed run would replay the noop starts and draws it began with; the same resume
    draws the same (``numpy.random.SeedSequence`` of both, as NumPy advises for related streams).

    >>> resume_seed(0, 32) == resume_seed(0, 32) != resume_seed(0, 64)
    True
    """
    return int(np.random.SeedSequence([seed, steps]).generate_state(1)[0])


def restore(model: PPO, point: ResumePoint, rollout: int) -> int:
    """Load ``point``'s policy weights and Adam state into ``model``; set and return its step count (the checkpoint's
    last finished update, ``ResumePoint.updated_steps(rollout)``).

    Raises:
        DataError: weights or optimiser state that do not fit ``model`` (one line naming the file).
    """
    try:
        model.policy.load_state_dict(point.weights)
        model.policy.optimizer.load_state_dict(point.optimiser)
    except (RuntimeError, ValueError, KeyError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{point.path}: does not fit this run's policy ({first})") from e
    model.num_timesteps = point.updated_steps(rollout)
    return model.num_timesteps
