"""The whole benchmark for one (game, method, budget, seed): demos → reward → PPO → evaluation → leaderboard row.

Each stage writes into its own folder of the run folder, first under a temporary name that is renamed into place
when the stage finishes, then a ``stage.json`` with the stage's *key*: a hash of its config and of its inputs'
keys and content hashes. A stage whose folder holds a ``stage.json`` with the same key is reused, not recomputed
(``--resume``); one with another key is refused (it was made by another config: nothing is overwritten).

    runs/breakout-trex-quick-s0/
      config.json (the resolved ExperimentConfig)
      reward/     model.safetensors, card.json, stage.json          (trex, drex)
      fidelity/   fidelity.json + .png, stage.json                  (trex, drex)
      agent/      agent.zip, card.json, checkpoints/, tb/, stage.json
      eval/       eval.json, stage.json
      summary.json

A method is a list of stage names (``trex_bench.config.METHODS``: ``trex`` = reward → fidelity → extrapolation →
agent → eval; ``drex`` = bc → noise-rollouts → reward → …; ``bc`` = bc → eval; ``ppo-true``/``constant`` = agent →
eval); each name maps to one function of :data:`STAGES` here. Adding a method is one ``METHODS`` entry plus the
functions of any stage it adds. The whole run is one resolved :class:`~trex_bench.config.ExperimentConfig`,
validated before the run folder is made and written into it as ``config.json``.

A reused stage's files are checked against the hashes its ``stage.json`` recorded: a truncated or edited file is
refused, naming the folder to delete (stages written before the hashes were recorded are reused unchecked).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trex_bench._io import file_hash, read_json, write_json
from trex_bench.config import METHODS, REPO_DEMOS, ExperimentConfig, resolve
from trex_bench.errors import ConfigError, RunFolderError
from trex_bench.games import get_game, human_normalized
from trex_bench.types import DemoSet

__all__ = [
    "PipelineConfig",
    "METHODS",
    "LEARNED_REWARD",
    "STAGES",
    "run_pipeline",
    "default_demos",
    "prepare",
    "REPO_DEMOS",
]

LEARNED_REWARD = tuple(name for name, m in METHODS.items() if m.learned_reward)  # methods that take a --transform
Log = Callable[[str], None]


def default_demos(game: str) -> Path:
    """The committed demo set of a game (``demos/<game>/scripted-noise``), if this checkout has one."""
    path = REPO_DEMOS / get_game(game).id / "scripted-noise"
    if not (path / "manifest.json").exists():
        raise ConfigError(f"no committed demo set for {get_game(game).id}; pass --demos DIR")
    return path


@dataclass(frozen=True)
class PipelineConfig:
    """One benchmark run as asked for (the ``pipeline`` command's options); :meth:`resolve` gives the
    :class:`~trex_bench.config.ExperimentConfig` that runs. Bad values fail here, with one line.

    Attributes:
        game, method, budget, seed: what to run.
        demos: the demo set (default: the committed one for the game).
        ranking: how the demos are ranked for the reward net (``return``, ``checkpoint``, ``noise``, ...).
        human_labels: the MTurk label CSV of ``--ranking human`` (checkpoint numbers of the demo set's episodes).
        transform: how PPO sees the learned reward (``sigmoid``, the papers).
        eval_episodes: full games in the evaluation (default by budget: 30, the papers').
        profile: env profile (``paper`` | ``machado``).
        device: torch device.
        kl_to, kl_beta: the RLHF KL penalty's reference policy and β.
        max_seconds: opt-in wall-time valve on PPO (never set by a budget; a run it stops is marked time_capped).
        precision: the policy trunk's numerics, ``fp32`` | ``bf16`` | ``auto`` (``trex_bench.rl.precision``).
        unseen: later checkpoints of the demos' PPO run, for the reward's extrapolation check before PPO (default:
            the demo set's sibling ``ppo-later`` when it has one, as the committed PPO-checkpoint sets do).
    """

    game: str
    method: str
    budget: str
    seed: int = 0
    demos: Path | None = None
    ranking: str = "return"
    human_labels: Path | None = None
    transform: str = "sigmoid"
    eval_episodes: int | None = None
    profile: str = "paper"
    device: str = "cpu"
    kl_to: Path | None = None
    kl_beta: float = 0.0
    max_seconds: float | None = None
    precision: str = "fp32"
    unseen: Path | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "game", get_game(self.game).id)
        self.resolve()  # every check, before anything runs

    def resolve(self) -> ExperimentConfig:
        """The resolved experiment (``trex_bench.config.resolve``)."""
        return resolve(**dataclasses.asdict(self))

    def run_name(self) -> str:
        return self.resolve().run_name()


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _folder_hashes(folder: Path) -> dict[str, str]:
    """``file_hash`` of every file under ``folder`` except its ``stage.json``, by relative path."""
    return {
        p.relative_to(folder).as_posix(): file_hash(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "stage.json"
    }


class _Run:
    """Stage bookkeeping for one run folder."""

    def __init__(self, folder: Path, log: Log) -> None:
        from trex_bench.leaderboard import git_commit

        self.folder, self.log = folder, log
        self.commit = git_commit()  # the code that runs is the code at the start, whatever is committed meanwhile
        self.walls: dict[str, float] = {}
        self.reused: list[str] = []

    def stage(self, name: str, key_obj: Any, build: Callable[[Path], object]) -> tuple[Path, str]:
        """Run ``build(tmp_dir)`` unless ``<run>/<name>`` already holds this key; returns (folder, key)."""
        key = _key(key_obj)
        final = self.folder / name
        meta = final / "stage.json"
        if meta.exists():
            old = read_json(meta)
            if old.get("key") != key:
                raise RunFolderError(
                    f"{final} was made by another config (key {old.get('key')} ≠ {key}); use another --out"
                )
            self._check_files(final, old)
            self.walls[name] = float(old.get("wall_s", 0.0))
            self.reused.append(name)
            self.log(f"[{name}] reused (key {key})")
            return final, key
        if final.exists():
            shutil.rmtree(final)  # an unfinished stage from an interrupted run: no stage.json, nothing of value
        tmp = self.folder / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        self.log(f"[{name}] running …")
        t0 = time.perf_counter()
        build(tmp)
        wall = time.perf_counter() - t0
        os.replace(tmp, final)
        utc = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        files = _folder_hashes(final)
        write_json(meta, {"stage": name, "key": key, "key_of": key_obj, "wall_s": wall, "utc": utc, "files": files})
        self.walls[name] = wall
        self.log(f"[{name}] done in {wall:.0f} s")
        return final, key

    @staticmethod
    def _check_files(final: Path, meta: dict[str, Any]) -> None:
        """D15: a reused stage's files must be the ones it wrote (a stage.json without hashes is trusted)."""
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


@dataclass
class _Context:
    """What the stages of one run share: the config, the run folder, the demos, and each finished stage's folder and
    key (by stage name)."""

    cfg: ExperimentConfig
    run: _Run
    demos_dir: Path
    demos: DemoSet
    demos_hash: str
    cache_dir: Path | None
    progress: bool
    unseen_dir: Path | None
    dirs: dict[str, Path] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    fidelity: dict[str, Any] = field(default_factory=dict)
    agent_card: dict[str, Any] | None = None

    def stage(self, name: str, key_obj: dict[str, Any], build: Callable[[Path], object]) -> Path:
        self.dirs[name], self.keys[name] = self.run.stage(name, key_obj, build)
        return self.dirs[name]


# -- the stages: each keyed by its resolved sub-config and its inputs' keys --------------------------------------


def _bc_stage(ctx: _Context) -> None:
    from trex_bench.rl.bc_io import train_command

    cfg = ctx.cfg
    assert cfg.bc is not None
    key = {"stage": "bc", "config": dataclasses.asdict(cfg.bc), "seed": cfg.seed, "demos": ctx.demos_hash}
    ctx.stage(
        "bc",
        key,
        lambda tmp: train_command(
            cfg.game,
            ctx.demos_dir,
            tmp,
            config=cfg.bc,
            budget=cfg.budget,
            seed=cfg.seed,
            cache_dir=ctx.cache_dir,
            device=cfg.device,
            progress=ctx.progress,
        ),
    )


def _noise_rollouts_stage(ctx: _Context) -> None:
    from trex_bench.drex import DREX_NOISE, noise_rollouts

    cfg = ctx.cfg
    k = cfg.drex_rollouts
    assert k is not None
    key = {"stage": "noise-rollouts", "bc": ctx.keys["bc"], "levels": DREX_NOISE, "k": k, "seed": cfg.seed}
    bc_dir = ctx.dirs["bc"]
    ctx.stage(
        "noise-rollouts",
        key,
        lambda tmp: noise_rollouts(
            ctx.demos, bc_dir, tmp, per_level=k, seed=cfg.seed, device=cfg.device, progress=ctx.progress
        ),
    )


def _reward_stage(ctx: _Context) -> None:
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.command import train_command

    cfg = ctx.cfg
    assert cfg.reward is not None
    train_demos = ctx.dirs["noise-rollouts"] / "demos" if "noise-rollouts" in ctx.dirs else ctx.demos_dir
    key = {
        "stage": "reward",
        "method": cfg.method,
        "ranking": cfg.ranking,
        "seed": cfg.seed,
        "config": dataclasses.asdict(cfg.reward),
        "demos": load_demos(train_demos).content_hash(),
    }
    if cfg.human_labels is not None:
        key["human_labels"] = file_hash(cfg.human_labels)
    ctx.stage(
        "reward",
        key,
        lambda tmp: train_command(
            cfg.game,
            train_demos,
            tmp,
            method=cfg.method,  # type: ignore[arg-type]  # a learned-reward method: trex or drex
            ranking=cfg.ranking,
            human_labels=cfg.human_labels,
            config=cfg.reward,
            budget=cfg.budget,
            seed=cfg.seed,
            cache_dir=ctx.cache_dir,
            device=cfg.device,
            progress=ctx.progress,
        ),
    )


def _fidelity_stage(ctx: _Context) -> None:
    """Fidelity on the original demos: for D-REX the net never saw their returns or their order."""
    from trex_bench.reward.fidelity import score_command

    reward_dir = ctx.dirs["reward"]
    key = {"stage": "fidelity", "reward": ctx.keys["reward"], "demos": ctx.demos_hash}
    folder = ctx.stage(
        "fidelity", key, lambda tmp: score_command(reward_dir, ctx.demos_dir, tmp / "fidelity.json", ctx.cache_dir)
    )
    ctx.fidelity = read_json(folder / "fidelity.json")


def _extrapolation_stage(ctx: _Context) -> None:
    """The reward's extrapolation to later checkpoints of the demos' PPO run, when there is an unseen set."""
    if ctx.unseen_dir is None:
        return
    from trex_bench.demos.store import load_demos
    from trex_bench.extrapolation import summary_line, write_stage

    cfg = ctx.cfg
    unseen = load_demos(ctx.unseen_dir, game=cfg.game, profile=cfg.profile)
    key = {
        "stage": "extrapolation",
        "reward": ctx.keys["reward"],
        "demos": ctx.demos_hash,
        "unseen": unseen.content_hash(),
    }
    reward_dir = ctx.dirs["reward"]
    folder = ctx.stage(
        "extrapolation",
        key,
        lambda tmp: write_stage(reward_dir, cfg.method, cfg.seed, ctx.demos, unseen, tmp, ctx.cache_dir),
    )
    ctx.run.log(summary_line(read_json(folder / "extrapolation.json"), ctx.unseen_dir))


def _agent_stage(ctx: _Context) -> None:
    from trex_bench.rl.ppo import train_ppo
    from trex_bench.rl.precision import resolve_precision

    cfg = ctx.cfg
    assert cfg.ppo is not None
    if cfg.spec.learned_reward:
        reward_source: str | Path = ctx.dirs["reward"]
        upstream = ctx.keys["reward"]
    else:
        reward_source = upstream = cfg.spec.reward
    precision, _ = resolve_precision(cfg.precision, cfg.device)  # the mode that runs keys the stage, not "auto"
    key = {
        "stage": "agent",
        "reward": upstream,
        "ppo": dataclasses.asdict(cfg.ppo),
        "seed": cfg.seed,
        "transform": cfg.transform,
        "profile": cfg.profile,
        "kl": _kl_key(cfg),
        "precision": precision,
    }
    if cfg.transform == "normalized":  # an agent of the old mean-subtracting normalizer is not reused
        key["normalizer"] = "return-std"
    folder = ctx.stage(
        "agent",
        key,
        lambda tmp: train_ppo(
            cfg.game,
            reward_source,
            cfg.ppo,
            cfg.seed,
            tmp,
            device=cfg.device,
            progress=ctx.progress,
            transform=cfg.transform,
            profile=cfg.profile,
            kl_to=cfg.kl.to if cfg.kl else None,
            kl_beta=cfg.kl.beta if cfg.kl else 0.0,
            precision=precision,
        ),
    )
    ctx.agent_card = read_json(folder / "card.json")


def _eval_stage(ctx: _Context) -> None:
    """Full games of the method's final policy: the PPO agent, or the BC clone itself for ``bc``."""
    from trex_bench.evaluate import evaluate_agent

    cfg = ctx.cfg
    policy = "agent" if "agent" in ctx.dirs else "bc"
    key = {
        "stage": "eval",
        "agent": ctx.keys[policy],
        "episodes": cfg.eval.episodes,
        "seed": cfg.seed,
        "demos": ctx.demos_hash,
    }
    policy_dir = ctx.dirs[policy]
    ctx.stage(
        "eval",
        key,
        lambda tmp: evaluate_agent(
            policy_dir,
            episodes=cfg.eval.episodes,
            seed=cfg.seed,
            demos_dir=ctx.demos_dir,
            out=tmp / "eval.json",
            device=cfg.device,
            progress=ctx.progress,
            game=cfg.game,  # an agent of another game is refused, not played (#16 D8)
        ),
    )


STAGES: dict[str, Callable[[_Context], None]] = {
    "bc": _bc_stage,
    "noise-rollouts": _noise_rollouts_stage,
    "reward": _reward_stage,
    "fidelity": _fidelity_stage,
    "extrapolation": _extrapolation_stage,
    "agent": _agent_stage,
    "eval": _eval_stage,
}


# -- the run ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A validated run, before its folder exists: the config, the folder, the demos and the unseen set."""

    cfg: ExperimentConfig
    folder: Path
    demos_dir: Path
    demos: DemoSet
    unseen_dir: Path | None


def prepare(cfg: PipelineConfig | ExperimentConfig, out: str | Path | None = None, resume: bool = False) -> Prepared:
    """D6: every check of a run that can fail on the user's input, before the first folder is made."""
    from trex_bench.demos.store import load_demos

    exp = cfg.resolve() if isinstance(cfg, PipelineConfig) else cfg
    _check_device(exp.device)
    folder = Path(out) if out is not None else Path("runs") / exp.run_name()
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{folder} is a file, not a run folder; choose another --out")
    if folder.exists() and any(folder.iterdir()) and not resume:
        raise RunFolderError(
            f"{folder} already exists; pass --resume to reuse its finished stages, or choose another --out"
        )
    demos_dir = exp.demos if exp.demos is not None else default_demos(exp.game)
    demos = load_demos(demos_dir, game=exp.game, profile=exp.profile)
    if exp.ranking in ("checkpoint", "human") and any(e.checkpoint < 0 for e in demos.episodes):
        raise ConfigError(
            f"--ranking {exp.ranking} needs checkpoint indices, and {demos_dir} has episodes without one "
            "(collect with --checkpoint K, or use the committed ppo-checkpoints set)"
        )
    if exp.human_labels is not None and not exp.human_labels.is_file():
        raise ConfigError(f"human labels {exp.human_labels} do not exist")
    if exp.kl is not None and not (exp.kl.to / "card.json").is_file():
        raise ConfigError(f"--kl-to {exp.kl.to} is not a BC policy folder (no card.json)")
    unseen_dir = _unseen_set(exp, demos_dir) if "extrapolation" in exp.spec.stages else None
    if unseen_dir is not None:
        load_demos(unseen_dir, game=exp.game, profile=exp.profile)
    return Prepared(exp, folder, demos_dir, demos, unseen_dir)


def run_pipeline(
    cfg: PipelineConfig | ExperimentConfig,
    out: str | Path | None = None,
    resume: bool = False,
    leaderboard: str | Path | None = "results/leaderboard.csv",
    progress: bool = True,
    cache_dir: str | Path | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run every stage of ``cfg``'s method into one run folder and append its leaderboard row; returns the summary.

    ``log`` receives one line per stage event (``[reward] running …``); nothing is printed here.
    """
    p = prepare(cfg, out, resume)
    p.folder.mkdir(parents=True, exist_ok=True)
    if not (p.folder / "config.json").exists():  # a resumed run's stage keys decide; its file is rewritten at the end
        p.cfg.write(p.folder / "config.json")
    ctx = _Context(
        cfg=p.cfg,
        run=_Run(p.folder, log or (lambda _: None)),
        demos_dir=p.demos_dir,
        demos=p.demos,
        demos_hash=p.demos.content_hash(),
        cache_dir=Path(cache_dir) if cache_dir is not None else None,
        progress=progress,
        unseen_dir=p.unseen_dir,
    )
    for name in p.cfg.spec.stages:
        STAGES[name](ctx)
    ev = read_json(ctx.dirs["eval"] / "eval.json")
    p.cfg.write(p.folder / "config.json")  # every stage matched this config
    return _finish(_summary(ctx, ev), p.folder, leaderboard)


def _check_device(device: str) -> None:
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError) as e:
        raise ConfigError(f"--device: not a torch device: {device!r} (e.g. cpu, cuda, cuda:0)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {device!r}: this torch build or machine has no CUDA device; use cpu")


def _finish(summary: dict[str, Any], folder: Path, leaderboard: str | Path | None) -> dict[str, Any]:
    """Append the leaderboard row, then write ``summary.json`` (a sweep takes it as "finished, row written").

    A run resumed after it had finished (its ``summary.json`` exists) reuses every stage and appends no second row:
    its row is already in the leaderboard; the summary says so (``leaderboard_note``).
    """
    previous = folder / "summary.json"
    if previous.exists():
        old = read_json(previous)
        summary["row"] = old.get("row", summary["row"])  # the row as appended, with its run id and time
        summary["leaderboard_note"] = (
            f"finished before; its row is already in {old.get('leaderboard', 'the leaderboard')}"
        )
        if "leaderboard" in old:
            summary["leaderboard"] = old["leaderboard"]
    elif leaderboard is not None:
        from trex_bench.leaderboard import append_row

        append_row(leaderboard, summary["row"])
        summary["leaderboard"] = str(leaderboard)
    write_json(folder / "summary.json", summary)
    return summary


def _unseen_set(cfg: ExperimentConfig, demos_dir: Path) -> Path | None:
    """The unseen set of the extrapolation stage: ``cfg.unseen``, else a ``ppo-later`` folder beside the demos."""
    if cfg.unseen is not None:
        return Path(cfg.unseen)
    sibling = Path(demos_dir).parent / "ppo-later"
    return sibling if (sibling / "manifest.json").exists() and Path(demos_dir).name == "ppo-checkpoints" else None


def _kl_key(cfg: ExperimentConfig) -> dict[str, Any] | None:
    if cfg.kl is None:
        return None
    card = cfg.kl.to / "card.json"
    return {"beta": cfg.kl.beta, "card": file_hash(card) if card.exists() else str(cfg.kl.to)}


def _summary(ctx: _Context, ev: dict[str, Any]) -> dict[str, Any]:
    """The run's summary and leaderboard row (``ctx.agent_card`` is None for BC, which runs no PPO)."""
    import numpy as np

    from trex_bench._io import versions
    from trex_bench.leaderboard import config_hash

    cfg, run, agent, fidelity = ctx.cfg, ctx.run, ctx.agent_card, ctx.fidelity
    returns = np.asarray(ev["returns"], dtype=float)
    best, avg = float(ctx.demos.returns.max()), float(ctx.demos.returns.mean())
    mean = float(returns.mean())
    corr = fidelity.get("correlations", {}).get("pred_mean", {})
    transform = cfg.transform if cfg.spec.learned_reward else cfg.spec.row_transform
    row = {
        "run_id": f"{cfg.run_name()}-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}",
        "utc_time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "git_commit": run.commit,
        "versions": json.dumps(versions(), sort_keys=True),
        "device": _device_name(cfg.device),
        "game": cfg.game,
        "env_profile": cfg.profile,
        "method": cfg.method,
        "ranking_source": cfg.ranking_source,
        "reward_transform": transform + (f"+kl{cfg.kl.beta:g}" if cfg.kl is not None else ""),
        "budget": cfg.budget,
        "rl_steps": agent["steps"] if agent else 0,  # fewer than total_steps where --max-seconds stopped PPO
        "seed": cfg.seed,
        "n_episodes": len(returns),
        "mean": mean,
        "std": float(returns.std()),
        "min": float(returns.min()),
        "max": float(returns.max()),
        "best_demo": best,
        "avg_demo": avg,
        "beats_best_demo": bool(mean > best),
        "human_normalized": human_normalized(cfg.game, mean),
        "fidelity_spearman": corr.get("spearman"),
        "pair_accuracy": fidelity.get("pairwise", {}).get("accuracy"),
        "wall_s": round(sum(run.walls.values()), 1),
        "config_hash": config_hash(cfg.to_json() | {"device": None}),  # the hash of the run's config.json
        "schedule_steps": agent.get("schedule_steps") if agent else None,
        "precision": agent.get("precision", "fp32") if agent else None,
        "time_capped": bool(agent["stopped"].startswith("time cap")) if agent else False,
    }
    return {"run_folder": str(run.folder), "reused_stages": run.reused, "stage_wall_s": run.walls, "row": row}


def _device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"
