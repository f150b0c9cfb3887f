"""The whole benchmark for one (game, method, budget, seed): demos → reward → PPO → evaluation →
leaderboard row.

Each stage writes into its own folder of the run folder (``trex_bench.experiment.run_folder``: built under a temporary
name, renamed into place, then keyed by a ``stage.json``); a finished stage with the same key is reused (``--resume``),
one with another key is refused, and a reused stage's files are checked against the hashes it recorded.

    runs/breakout-trex-quick-s0/
      config.json (the resolved ExperimentConfig)
      reward/     model.safetensors, card.json, stage.json          (trex, drex)
      fidelity/   fidelity.json + .png, stage.json                  (trex, drex)
      agent/      agent.zip, card.json, checkpoints/, tb/, stage.json
      eval/       eval.json, stage.json
      summary.json

A method is a list of stage names (``trex_bench.experiment.config.METHODS``: ``trex`` = reward → fidelity →
extrapolation → agent → eval; ``drex`` = bc → noise-rollouts → reward → …; ``bc`` = bc → eval;
``ppo-true``/``constant`` = agent → eval); each name maps to one function of
``trex_bench.experiment.stages.STAGES``, which returns that stage's typed result. Adding a method is one ``METHODS``
entry plus the functions of any stage it adds. The whole run is one resolved
:class:`~trex_bench.experiment.config.ExperimentConfig`, validated before the run folder is made and written into it
as ``config.json``. This module prepares the run, loops over the stages and builds the summary and leaderboard row.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.errors import ConfigError, RunFolderError
from trex_bench.core.games import get_game
from trex_bench.core.io import output_kind, read_json, stable_hash, write_json
from trex_bench.core.types import DemoSet
from trex_bench.experiment.config import (
    DEFAULT_DEMO_SETS,
    METHOD_DEMO_SETS,
    METHODS,
    REPO_DEMOS,
    ExperimentConfig,
    committed_default_demos,
)
from trex_bench.experiment.naming import run_name
from trex_bench.experiment.run_folder import RunFolder, own
from trex_bench.experiment.stages import STAGES, StageContext

__all__ = [
    "METHODS",
    "LEARNED_REWARD",
    "STAGES",
    "run_pipeline",
    "default_demos",
    "check_inputs",
    "check_kl_reference",
    "prepare",
    "REPO_DEMOS",
]

LEARNED_REWARD = tuple(name for name, m in METHODS.items() if m.learned_reward)  # methods that take a --transform
Log = Callable[[str], None]


def default_demos(game: str, method: str = "trex") -> Path:
    """The committed demo set a method's runs on a game use without ``--demos``: the T-REX protocol's
    ``demos/<game>/ppo-checkpoints`` (``config.DEFAULT_DEMO_SETS``), D-REX's one demonstrator
    ``demos/<game>/drex-demos`` (``config.METHOD_DEMO_SETS``).

    Raises:
        ConfigError: the game has neither (say what to do).
    """
    gid = get_game(game).id
    path = committed_default_demos(gid, method)
    if path is not None:
        return path
    raise ConfigError(
        f"no committed demo set for {gid} (none of demos/{gid}/"
        f"{{{','.join(METHOD_DEMO_SETS.get(method, DEFAULT_DEMO_SETS))}}}); pass --demos DIR, "
        f"or make one: trex-bench demos collect {gid} --demonstrator ppo … (demos/README.md)"
    )


# -- the run ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated run, before its folder exists: the config, the folder, the demos and the unseen set."""

    cfg: ExperimentConfig
    folder: Path
    demos_dir: Path
    demos: DemoSet
    unseen_dir: Path | None


def prepare(
    exp: ExperimentConfig,
    out: str | Path | None = None,
    resume: bool = False,
    leaderboard: str | Path | None = None,
    cache_dir: str | Path | None = None,
) -> Prepared:
    """Every check of a run that can fail on the user's input, before the first folder is made: the device, the run
    folder (``core.io.claim_output``: with ``resume``, a run folder or nothing; without, nothing), the leaderboard
    and the frame cache, then the input files (``check_inputs``)."""
    from trex_bench.core.io import check_cache_dir, claim_output
    from trex_bench.evaluation.leaderboard import read_leaderboard

    _check_device(exp.device)
    folder = Path(out) if out is not None else Path("runs") / run_name(exp)
    if claim_output(folder, "run_folder") and not resume:  # never into a reward model, a demo set, a stranger's …
        raise RunFolderError(
            f"{folder} already exists; pass --resume to reuse its finished stages, or choose another --out"
        )
    if (folder / "summary.json").is_file() and not isinstance(read_json(folder / "summary.json"), dict):
        raise RunFolderError(f"{folder / 'summary.json'} is not a run summary; delete it to finish the run again")
    if leaderboard is not None:  # the row is appended at the end: a file that would refuse it is refused now
        claim_output(leaderboard, "leaderboard")
        read_leaderboard(leaderboard)
    check_cache_dir(cache_dir)
    return Prepared(exp, folder, *check_inputs(exp))


def check_inputs(exp: ExperimentConfig) -> tuple[Path, DemoSet, Path | None]:
    """The checks of a run's input files (demo set, human labels, ``--kl-to``, unseen set), without the device and
    the folder: ``prepare`` and ``sweep`` (which plans runs for other machines) share them.

    Returns:
        The demo set's folder, the demo set and the unseen set's folder (None without an extrapolation stage).
    """
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.labels import label_format

    demos_dir = exp.demos if exp.demos is not None else default_demos(exp.game, exp.method)
    demos = load_demos(demos_dir, game=exp.game, profile=exp.profile)
    if exp.human_labels is not None and not exp.human_labels.is_file():
        raise ConfigError(f"human labels {exp.human_labels} do not exist")
    by_checkpoint = exp.ranking == "checkpoint" or (
        exp.ranking == "human" and exp.human_labels is not None and label_format(exp.human_labels) == "mturk"
    )  # the labeling page's answers name clips of any demo set; the MTurk CSV names checkpoints
    if by_checkpoint and any(e.checkpoint < 0 for e in demos.episodes):
        raise ConfigError(
            f"--ranking {exp.ranking} needs checkpoint indices, and {demos_dir} has episodes without one "
            "(collect with --checkpoint K, or use the committed ppo-checkpoints set)"
        )
    if exp.kl is not None:
        check_kl_reference(exp.kl.to)
    unseen_dir = _unseen_set(exp, demos_dir) if "extrapolation" in exp.spec.stages else None
    if unseen_dir is not None:
        load_demos(unseen_dir, game=exp.game, profile=exp.profile)
    return demos_dir, demos, unseen_dir


def check_kl_reference(folder: str | Path) -> None:
    """Refuse a ``--kl-to`` that is not a BC policy folder (a reward model, an agent, nothing), before any work."""
    from trex_bench.core.io import describe_output, output_kind

    folder = Path(folder)
    if not folder.exists():
        raise ConfigError(f"--kl-to {folder} does not exist (a BC policy folder: `trex-bench bc train` makes one)")
    if output_kind(folder) != "bc_policy":
        raise ConfigError(
            f"--kl-to {folder} is {describe_output(folder)}, not a BC policy (the reference policy of the KL "
            "penalty: `trex-bench bc train` makes one)"
        )


def run_pipeline(
    cfg: ExperimentConfig,
    out: str | Path | None = None,
    resume: bool = False,
    leaderboard: str | Path | None = "results/leaderboard.csv",
    progress: bool = True,
    cache_dir: str | Path | None = None,
    log: Log | None = None,
    label_timeout: float | None = None,
) -> dict[str, Any]:
    """Run every stage of ``cfg``'s method into one run folder and append its leaderboard row; returns the summary.

    ``log`` receives one line per stage event (``[reward] running …``); nothing is printed here. ``label_timeout``:
    seconds a ``--labeler human`` run waits for a person's answers before it pauses (``LabelsPending``; rerun with
    ``resume`` to go on), None for no limit.
    """
    p = prepare(cfg, out, resume, leaderboard, cache_dir)
    say = log or (lambda _: None)
    p.folder.mkdir(parents=True, exist_ok=True)
    with own(p.folder, say):  # one owner for the run's life: a second writer is refused, naming this pid
        if not resume and output_kind(p.folder):  # another run started here since prepare looked
            raise RunFolderError(f"{p.folder} already exists; pass --resume to reuse its finished stages")
        if not (p.folder / "config.json").exists():  # a resumed run's stage keys decide; rewritten at the end
            p.cfg.write(p.folder / "config.json")
        ctx = StageContext(
            cfg=p.cfg,
            run=RunFolder(p.folder, say),
            demos_dir=p.demos_dir,
            demos=p.demos,
            demos_hash=p.demos.content_hash(),
            cache_dir=Path(cache_dir) if cache_dir is not None else None,
            progress=progress,
            unseen_dir=p.unseen_dir,
            label_timeout=label_timeout,
        )
        for name in p.cfg.spec.stages:
            STAGES[name](ctx)
        p.cfg.write(p.folder / "config.json")  # every stage matched this config
        return _finish(_summary(ctx), p.folder, leaderboard)


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"--device: not a torch device: {device!r} (e.g. cpu, cuda, cuda:0)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r}: this torch build or machine has no CUDA device; use cpu")


PENDING_ROW = ".row.pending.json"


def _finish(summary: dict[str, Any], folder: Path, leaderboard: str | Path | None) -> dict[str, Any]:
    """Append the leaderboard row, then write ``summary.json`` (a sweep takes it as "finished, row written").

    A run resumed after it had finished (its ``summary.json`` exists) reuses every stage and appends no second row:
    its row is already in the leaderboard; the summary says so (``leaderboard_note``). The row is first written to
    ``PENDING_ROW`` in the run folder, deleted once the summary is: a run killed between its row and its summary goes
    on with that row, appended only where the leaderboard lacks its run id, never a second one.
    """
    previous, pending = folder / "summary.json", folder / PENDING_ROW
    if previous.exists():
        old = read_json(previous)
        if not isinstance(old, dict):
            raise RunFolderError(f"{previous} is not a run summary (a JSON object); delete it to finish the run again")
        summary["row"] = old.get("row", summary["row"])  # the row as appended, with its run id and time
        summary["leaderboard_note"] = (
            f"finished before; its row is already in {old.get('leaderboard', 'the leaderboard')}"
        )
        if "leaderboard" in old:
            summary["leaderboard"] = old["leaderboard"]
    elif leaderboard is not None:
        from trex_bench.evaluation.leaderboard import append_row, read_leaderboard

        if pending.is_file():
            summary["row"] = read_json(pending)
        else:
            write_json(pending, summary["row"])
        if summary["row"]["run_id"] not in set(read_leaderboard(leaderboard).get("run_id", [])):
            append_row(leaderboard, summary["row"])
        summary["leaderboard"] = str(leaderboard)
    write_json(folder / "summary.json", summary)
    pending.unlink(missing_ok=True)
    return summary


def _unseen_set(cfg: ExperimentConfig, demos_dir: Path) -> Path | None:
    """The unseen set of the extrapolation stage: ``cfg.unseen``, else a ``ppo-later`` folder beside the demos."""
    if cfg.unseen is not None:
        return Path(cfg.unseen)
    sibling = Path(demos_dir).parent / "ppo-later"
    return sibling if (sibling / "manifest.json").exists() and Path(demos_dir).name == "ppo-checkpoints" else None


def _summary(ctx: StageContext) -> dict[str, Any]:
    """The run's summary and its leaderboard row (``leaderboard.build_row``) from the stages' typed results (no agent
    for ``bc`` and ``random``, which run no PPO; no fidelity for methods without a learned reward)."""
    from trex_bench.evaluation.leaderboard import build_row

    cfg, run = ctx.cfg, ctx.run
    assert ctx.evaluation is not None, "every method ends with the eval stage"
    transform = cfg.transform if cfg.spec.learned_reward else cfg.spec.row_transform
    row = build_row(
        ctx.evaluation,
        ctx.agent,
        ctx.fidelity,
        run_id=f"{run_name(cfg)}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}",
        git_commit=run.commit,
        device=_device_name(cfg.device),
        game=cfg.game,
        env_profile=cfg.profile,
        method=cfg.method,
        ranking_source=cfg.ranking_source,
        reward_transform=transform + (f"+kl{cfg.kl.beta:g}" if cfg.kl is not None else ""),
        budget=cfg.budget,
        seed=cfg.seed,
        wall_s=round(sum(run.walls.values()), 1),
        config_hash=stable_hash(cfg.to_json() | {"device": None}),  # the hash of the run's config.json
    )
    return {"run_folder": str(run.folder), "reused_stages": run.reused, "stage_wall_s": run.walls, "row": row}


def _device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"
