"""Continue a PPO run from its newest checkpoint: a run cut off (a session's end, a crash) loses at most one interval.

A run folder in progress holds ``run.json`` (what the run was started with: game, profile, reward, PPO config, seed,
precision, KL reference) and ``checkpoints/ppo_<steps>_steps.zip`` (SB3's ``CheckpointCallback``: the policy and its
Adam state). ``resume_point`` finds the newest readable checkpoint of a folder started with the same settings;
``restore`` loads its policy weights and optimiser state with ``torch.load(weights_only=True)`` into a freshly built
model (nothing is unpickled: the zip's ``data``, with SB3's cloudpickled schedules, is never read) and sets the step
count, so the learning rate and clip range go on along their schedule from where they were.

Not restored: the envs (the resumed run starts new games, reset from the run's seed again) and SB3's sampling rng, so a
resumed run is not bit-identical to an uninterrupted one; its card records the step it resumed from.
"""

from __future__ import annotations

import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stable_baselines3 import PPO

from trex_bench._io import read_json
from trex_bench.errors import ConfigError, DataError
from trex_bench.rl.agent_io import read_zip_member

__all__ = ["RUN_FILE", "ResumePoint", "list_checkpoints", "resume_point", "restore"]

RUN_FILE = "run.json"
CHECKPOINTS = "checkpoints"


@dataclass(frozen=True)
class ResumePoint:
    """The checkpoint a run continues from: its agent steps and file."""

    steps: int
    path: Path


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(agent steps, path)`` of every ``ppo_<steps>_steps.zip`` in ``folder``, in training order."""
    found = []
    for p in Path(folder).glob("*_steps.zip"):
        m = re.search(r"_(\d+)_steps\.zip$", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def resume_point(out: Path, record: dict[str, Any]) -> ResumePoint | None:
    """The newest readable checkpoint of the run in ``out``; None where the run has none yet (a fresh start).

    ``record`` is what the caller would start the run with; it must equal the folder's ``run.json``.

    Raises:
        ConfigError: the run already finished (``card.json``), has checkpoints but no ``run.json`` (it cannot be
            checked), was started with other settings (the differing keys are named), or has no readable checkpoint.
    """
    if (out / "card.json").exists():
        raise ConfigError(f"{out} holds a finished run (card.json); nothing to resume")
    have = list_checkpoints(out / CHECKPOINTS)
    run_file = out / RUN_FILE
    if not run_file.exists():
        if have:
            raise ConfigError(
                f"{out} has checkpoints but no {RUN_FILE}, so its settings cannot be checked; choose another --out"
            )
        return None
    started, record = read_json(run_file), json.loads(json.dumps(record))  # tuples read back as lists
    differ = sorted(k for k in set(started) | set(record) if started.get(k) != record.get(k))
    if differ:
        raise ConfigError(f"{out} was started with other settings ({', '.join(differ)}); choose another --out")
    for steps, path in reversed(have):
        try:
            read_zip_member(path, "policy.pth"), read_zip_member(path, "policy.optimizer.pth")
        except DataError as e:  # a checkpoint torn by the kill that stopped the run: take the one before
            warnings.warn(f"skipping an unreadable checkpoint: {e}", stacklevel=2)
            continue
        return ResumePoint(steps, path)
    if have:
        raise ConfigError(f"{out}: none of its {len(have)} checkpoints is readable; choose another --out")
    return None


def restore(model: PPO, point: ResumePoint) -> None:
    """Load ``point``'s policy weights and Adam state into ``model`` and set its step count.

    Raises:
        DataError: weights or optimiser state that do not fit ``model`` (one line naming the file).
    """
    weights = read_zip_member(point.path, "policy.pth")
    optimiser = read_zip_member(point.path, "policy.optimizer.pth")
    try:
        model.policy.load_state_dict(weights)
        model.policy.optimizer.load_state_dict(optimiser)
    except (RuntimeError, ValueError, KeyError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{point.path}: does not fit this run's policy ({first})") from e
    model.num_timesteps = point.steps
