"""The whole benchmark for one (game, method, budget, seed): demos → reward → PPO → evaluation → leaderboard row.

Each stage writes into its own folder of the run folder, first under a temporary name that is renamed into place
when the stage finishes, then a ``stage.json`` with the stage's *key*: a hash of its config and of its inputs'
keys and content hashes. A stage whose folder holds a ``stage.json`` with the same key is reused, not recomputed
(``--resume``); one with another key is refused (it was made by another config: nothing is overwritten).

    runs/breakout-trex-quick-s0/
      reward/     model.safetensors, card.json, stage.json          (trex, drex)
      fidelity/   fidelity.json + .png, stage.json                  (trex, drex)
      agent/      agent.zip, card.json, checkpoints/, tb/, stage.json
      eval/       eval.json, stage.json
      summary.json

Methods: ``trex`` (ranked by return, or ``--ranking``); ``drex`` (BC → ε-greedy rollouts of the clone → ranked by
noise, the demos above every bin → reward net → PPO); ``bc`` (the clone itself, evaluated); ``ppo-true`` (PPO on the
clipped true reward: the upper reference); ``constant`` (PPO on reward 1 per step: the survival-bonus control).
``--kl-to BC_DIR --kl-beta β`` adds the RLHF penalty −β(log π_θ − log π_BC) to PPO's reward. ``gail`` and
``random`` are named by DESIGN.md and refused with a clear message until their stages exist.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench._io import file_hash, read_json, write_json
from trex_bench.games import get_game, human_normalized
from trex_bench.types import PRECISIONS, REWARD_TRANSFORMS

__all__ = ["PipelineConfig", "METHODS", "LEARNED_REWARD", "run_pipeline", "default_demos", "BUDGET_EVAL_EPISODES"]

METHODS = ("trex", "drex", "bc", "ppo-true", "constant")
LEARNED_REWARD = ("trex", "drex")  # the methods whose PPO runs on a reward net (and so take a --transform)
NOT_BUILT = ("gail", "random")
BUDGETS = ("smoke", "quick", "small", "gpu", "paper")
# Evaluation episodes per budget: 30 full games is the papers' protocol (T-REX §5); smoke only checks the path.
BUDGET_EVAL_EPISODES = {"smoke": 2, "quick": 30, "small": 30, "gpu": 30, "paper": 30}
REPO_DEMOS = Path(__file__).resolve().parents[1] / "demos"


def default_demos(game: str) -> Path:
    """The committed demo set of a game (``demos/<game>/scripted-noise``), if this checkout has one."""
    path = REPO_DEMOS / get_game(game).id / "scripted-noise"
    if not (path / "manifest.json").exists():
        raise ValueError(f"no committed demo set for {get_game(game).id}; pass --demos DIR")
    return path


@dataclass(frozen=True)
class PipelineConfig:
    """One benchmark run.

    Attributes:
        game, method, budget, seed: what to run.
        demos: the demo set (default: the committed one for the game).
        ranking: how the demos are ranked for the reward net (``return``, ``checkpoint``, ``noise``, ...).
        human_labels: the MTurk label CSV of ``--ranking human`` (checkpoint numbers of the demo set's episodes).
        transform: how PPO sees the learned reward (``sigmoid``, the papers).
        eval_episodes: full games in the evaluation (default by budget: 30, the papers').
        profile: env profile.
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
        if self.method in NOT_BUILT:
            raise ValueError(
                f"method {self.method!r} is not built yet in this version; available: {', '.join(METHODS)}"
            )
        if self.method not in METHODS:
            raise ValueError(f"unknown method {self.method!r}; valid: {', '.join(METHODS)}")
        if self.budget not in BUDGETS:
            raise ValueError(f"unknown budget {self.budget!r}; valid: {', '.join(BUDGETS)}")
        if self.max_seconds is not None and not 0 < self.max_seconds < float("inf"):
            raise ValueError(f"--max-seconds must be a finite number > 0, got {self.max_seconds}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.eval_episodes is not None and self.eval_episodes < 1:
            raise ValueError("eval_episodes must be >= 1")
        if self.kl_beta < 0 or (self.kl_beta > 0) != (self.kl_to is not None):
            raise ValueError("--kl-to and --kl-beta go together, with beta > 0")
        if self.method == "bc" and self.kl_to is not None:
            raise ValueError("--kl-to applies to PPO methods, not bc")
        if self.method == "drex" and self.ranking not in ("return", "noise"):  # "return": the CLI default
            raise ValueError(f"D-REX ranks its rollouts by noise level; --ranking {self.ranking} is for --method trex")
        if self.transform not in REWARD_TRANSFORMS:
            raise ValueError(f"unknown reward transform {self.transform!r}; valid: {', '.join(REWARD_TRANSFORMS)}")
        if self.transform != "sigmoid" and self.method not in LEARNED_REWARD:
            raise ValueError(f"--transform applies to a learned reward (trex, drex), not {self.method}")
        if (self.human_labels is not None) != (self.method == "trex" and self.ranking == "human"):
            raise ValueError("--ranking human (method trex) and --human-labels CSV go together")

    @property
    def ranking_source(self) -> str:
        """The ranking the reward net is trained on: ``noise`` for D-REX, ``ranking`` for T-REX, "" otherwise."""
        return {"drex": "noise", "trex": self.ranking}.get(self.method, "")

    @property
    def n_eval(self) -> int:
        return self.eval_episodes or BUDGET_EVAL_EPISODES[self.budget]

    def run_name(self) -> str:
        """``<game>-<method>[-<ranking>][-<transform>][-kl<β>][-<demo set>]-<budget>-s<seed>``: every option that
        changes the experiment and is not its default is in the name, so two experiments never share a folder
        (a sweep reads a folder's ``summary.json`` as "this run is done")."""
        parts = [self.game, self.method]
        if self.method == "trex" and self.ranking != "return":
            parts.append(self.ranking)
        if self.transform != "sigmoid":  # only a learned-reward method gets here with another transform
            parts.append(self.transform)
        if self.kl_to is not None:
            parts.append(f"kl{self.kl_beta:g}")
        if self.demos is not None and Path(self.demos).resolve() != (REPO_DEMOS / self.game / "scripted-noise"):
            parts.append(Path(self.demos).resolve().name)
        if self.max_seconds is not None:
            parts.append(f"cap{self.max_seconds:g}s")
        if self.precision != "fp32":
            parts.append(self.precision)
        return "-".join([*parts, self.budget, f"s{self.seed}"])


def _key(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _Run:
    """Stage bookkeeping for one run folder."""

    def __init__(self, folder: Path, resume: bool, progress: bool) -> None:
        from trex_bench.leaderboard import git_commit

        self.folder, self.resume, self.progress = folder, resume, progress
        self.commit = git_commit()  # the code that runs is the code at the start, whatever is committed meanwhile
        self.walls: dict[str, float] = {}
        self.reused: list[str] = []

    def stage(self, name: str, key_obj: Any, build: Callable[[Path], None]) -> tuple[Path, str]:
        """Run ``build(tmp_dir)`` unless ``<run>/<name>`` already holds this key; returns (folder, key)."""
        key = _key(key_obj)
        final = self.folder / name
        meta = final / "stage.json"
        if meta.exists():
            old = read_json(meta)
            if old.get("key") == key:
                if not self.resume:
                    raise ValueError(f"{final} is already done; pass --resume to reuse finished stages")
                self.walls[name] = float(old.get("wall_s", 0.0))
                self.reused.append(name)
                print(f"[{name}] reused (key {key})", flush=True)
                return final, key
            raise ValueError(f"{final} was made by another config (key {old.get('key')} ≠ {key}); use another --out")
        if final.exists():
            shutil.rmtree(final)  # an unfinished stage from an interrupted run: no stage.json, nothing of value
        tmp = self.folder / f".{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        print(f"[{name}] running …", flush=True)
        t0 = time.perf_counter()
        build(tmp)
        wall = time.perf_counter() - t0
        os.replace(tmp, final)
        write_json(
            meta,
            {
                "stage": name,
                "key": key,
                "key_of": key_obj,
                "wall_s": wall,
                "utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            },
        )
        self.walls[name] = wall
        print(f"[{name}] done in {wall:.0f} s", flush=True)
        return final, key


def run_pipeline(
    cfg: PipelineConfig,
    out: str | Path | None = None,
    resume: bool = False,
    leaderboard: str | Path | None = "results/leaderboard.csv",
    progress: bool = True,
    cache_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Run every stage of ``cfg`` into one run folder and append its leaderboard row; returns the summary."""
    from trex_bench.demos.store import load_demos
    from trex_bench.evaluate import evaluate_agent
    from trex_bench.rl.ppo import get_ppo_config, train_ppo

    folder = Path(out) if out is not None else Path("runs") / cfg.run_name()
    if folder.exists() and any(folder.iterdir()) and not resume:
        raise ValueError(
            f"{folder} already exists; pass --resume to reuse its finished stages, or choose another --out"
        )
    folder.mkdir(parents=True, exist_ok=True)
    run = _Run(folder, resume=True, progress=progress)  # folder emptiness was checked above
    demos_dir = Path(cfg.demos) if cfg.demos is not None else default_demos(cfg.game)
    demos = load_demos(demos_dir, game=cfg.game, profile=cfg.profile)
    demos_hash = demos.content_hash()
    ppo_cfg = get_ppo_config(cfg.budget)
    if cfg.max_seconds is not None:
        ppo_cfg = ppo_cfg.replace(max_seconds=cfg.max_seconds)
    fidelity: dict[str, Any] = {}

    if cfg.method in ("bc", "drex"):
        from trex_bench.rl.bc import bc_budget_config
        from trex_bench.rl.bc import train_command as train_bc

        # keyed by the resolved values, never the budget's name: an edited budget retrains (DESIGN.md Budgets)
        bc_key = {
            "stage": "bc",
            "config": dataclasses.asdict(bc_budget_config(cfg.budget)),
            "seed": cfg.seed,
            "demos": demos_hash,
        }
        bc_dir, bc_k = run.stage(
            "bc",
            bc_key,
            lambda tmp: train_bc(
                cfg.game,
                demos_dir,
                tmp,
                budget=cfg.budget,
                seed=cfg.seed,
                cache_dir=cache_dir,
                device=cfg.device,
                progress=progress,
            ),
        )
    if cfg.method == "bc":
        return _finish_bc(cfg, run, folder, demos, demos_dir, demos_hash, bc_dir, bc_k, leaderboard, progress)

    if cfg.method in LEARNED_REWARD:
        from trex_bench.reward.command import train_command
        from trex_bench.reward.fidelity import score_command
        from trex_bench.reward.train import budget_config

        train_demos = demos_dir
        if cfg.method == "drex":
            from trex_bench.drex import DREX_NOISE, DREX_ROLLOUTS, noise_rollouts

            k = DREX_ROLLOUTS[cfg.budget]
            noise_key = {"stage": "noise-rollouts", "bc": bc_k, "levels": DREX_NOISE, "k": k, "seed": cfg.seed}
            noise_dir, _ = run.stage(
                "noise-rollouts",
                noise_key,
                lambda tmp: noise_rollouts(
                    demos, bc_dir, tmp, per_level=k, seed=cfg.seed, device=cfg.device, progress=progress
                ),
            )
            train_demos = noise_dir / "demos"
        ranking = cfg.ranking_source
        reward_key = {
            "stage": "reward",
            "method": cfg.method,
            "ranking": ranking,
            "seed": cfg.seed,
            "config": dataclasses.asdict(budget_config(cfg.budget, cfg.method)),
            "demos": load_demos(train_demos).content_hash(),
        }
        if cfg.human_labels is not None:
            if not Path(cfg.human_labels).is_file():
                raise ValueError(f"human labels {cfg.human_labels} do not exist")
            reward_key["human_labels"] = file_hash(cfg.human_labels)
        reward_dir, reward_k = run.stage(
            "reward",
            reward_key,
            lambda tmp: train_command(
                cfg.game,
                train_demos,
                tmp,
                method=cfg.method,
                ranking=ranking,
                human_labels=cfg.human_labels,
                budget=cfg.budget,
                seed=cfg.seed,
                cache_dir=cache_dir,
                device=cfg.device,
                progress=progress,
            ),
        )
        # Fidelity on the original demos: for D-REX the net never saw their returns or their order.
        fid_dir, _ = run.stage(
            "fidelity",
            {"stage": "fidelity", "reward": reward_k, "demos": demos_hash},
            lambda tmp: score_command(reward_dir, demos_dir, tmp / "fidelity.json", cache_dir),
        )
        fidelity = read_json(fid_dir / "fidelity.json")
        unseen_dir = _unseen_set(cfg, demos_dir)
        if unseen_dir is not None:
            unseen = load_demos(unseen_dir, game=cfg.game, profile=cfg.profile)
            ex_key = {
                "stage": "extrapolation",
                "reward": reward_k,
                "demos": demos_hash,
                "unseen": unseen.content_hash(),
            }
            from trex_bench.extrapolation import summary_line, write_stage

            ex_dir, _ = run.stage(
                "extrapolation",
                ex_key,
                lambda tmp: write_stage(reward_dir, cfg.method, cfg.seed, demos, unseen, tmp, cache_dir),
            )
            print(summary_line(read_json(ex_dir / "extrapolation.json"), unseen_dir), flush=True)
        reward_source: str | Path = reward_dir
        upstream = reward_k
    else:
        reward_source = "true" if cfg.method == "ppo-true" else "constant"
        upstream = reward_source

    kl = _kl_key(cfg)
    from trex_bench.rl.precision import resolve_precision

    precision, _ = resolve_precision(cfg.precision, cfg.device)  # the mode that runs keys the stage, not "auto"
    agent_key = {
        "stage": "agent",
        "reward": upstream,
        "ppo": dataclasses.asdict(ppo_cfg),
        "seed": cfg.seed,
        "transform": cfg.transform,
        "profile": cfg.profile,
        "kl": kl,
        "precision": precision,
    }
    agent_dir, agent_k = run.stage(
        "agent",
        agent_key,
        lambda tmp: train_ppo(
            cfg.game,
            reward_source,
            ppo_cfg,
            cfg.seed,
            tmp,
            device=cfg.device,
            progress=progress,
            transform=cfg.transform,
            profile=cfg.profile,
            kl_to=cfg.kl_to,
            kl_beta=cfg.kl_beta,
            precision=precision,
        ),
    )
    eval_key = {"stage": "eval", "agent": agent_k, "episodes": cfg.n_eval, "seed": cfg.seed, "demos": demos_hash}
    eval_dir, _ = run.stage(
        "eval",
        eval_key,
        lambda tmp: evaluate_agent(
            agent_dir,
            episodes=cfg.n_eval,
            seed=cfg.seed,
            demos_dir=demos_dir,
            out=tmp / "eval.json",
            device=cfg.device,
            progress=progress,
        ),
    )
    ev = read_json(eval_dir / "eval.json")

    return _finish(
        _summary(cfg, folder, demos, ev, fidelity, read_json(agent_dir / "card.json"), run), folder, leaderboard
    )


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


def _unseen_set(cfg: PipelineConfig, demos_dir: Path) -> Path | None:
    """The unseen set of the extrapolation stage: ``cfg.unseen``, else a ``ppo-later`` folder beside the demos."""
    if cfg.unseen is not None:
        return Path(cfg.unseen)
    sibling = Path(demos_dir).parent / "ppo-later"
    return sibling if (sibling / "manifest.json").exists() and Path(demos_dir).name == "ppo-checkpoints" else None


def _kl_key(cfg: PipelineConfig) -> dict[str, Any] | None:
    if cfg.kl_to is None:
        return None
    card = Path(cfg.kl_to) / "card.json"
    return {"beta": cfg.kl_beta, "card": file_hash(card) if card.exists() else str(cfg.kl_to)}


def _finish_bc(
    cfg: PipelineConfig,
    run: _Run,
    folder: Path,
    demos: Any,
    demos_dir: Path,
    demos_hash: str,
    bc_dir: Path,
    bc_k: str,
    leaderboard: str | Path | None,
    progress: bool,
) -> dict[str, Any]:
    """``--method bc``: evaluate the clone itself (full games, stochastic) and append its row."""
    from trex_bench.evaluate import evaluate_agent

    eval_key = {"stage": "eval", "agent": bc_k, "episodes": cfg.n_eval, "seed": cfg.seed, "demos": demos_hash}
    eval_dir, _ = run.stage(
        "eval",
        eval_key,
        lambda tmp: evaluate_agent(
            bc_dir,
            episodes=cfg.n_eval,
            seed=cfg.seed,
            demos_dir=demos_dir,
            out=tmp / "eval.json",
            device=cfg.device,
            progress=progress,
        ),
    )
    return _finish(_summary(cfg, folder, demos, read_json(eval_dir / "eval.json"), {}, None, run), folder, leaderboard)


def _summary(
    cfg: PipelineConfig,
    folder: Path,
    demos: Any,
    ev: dict[str, Any],
    fidelity: dict[str, Any],
    agent: dict[str, Any] | None,
    run: _Run,
) -> dict[str, Any]:
    """The run's summary and leaderboard row; ``agent`` is the PPO agent's card (None for BC, which runs no PPO)."""
    import numpy as np

    from trex_bench._io import versions
    from trex_bench.leaderboard import config_hash

    returns = np.asarray(ev["returns"], dtype=float)
    best, avg = float(demos.returns.max()), float(demos.returns.mean())
    mean = float(returns.mean())
    corr = fidelity.get("correlations", {}).get("pred_mean", {})
    config = dataclasses.asdict(cfg) | {"demos": str(cfg.demos) if cfg.demos else "default", "kl": _kl_key(cfg)}
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
        "reward_transform": (
            cfg.transform
            if cfg.method in LEARNED_REWARD
            else {"ppo-true": "clip", "constant": "constant", "bc": ""}[cfg.method]
        )
        + (f"+kl{cfg.kl_beta:g}" if cfg.kl_to is not None else ""),
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
        "config_hash": config_hash(config),
        "schedule_steps": agent.get("schedule_steps") if agent else None,
        "precision": agent.get("precision", "fp32") if agent else None,
        "time_capped": bool(agent["stopped"].startswith("time cap")) if agent else False,
    }
    return {"run_folder": str(folder), "reused_stages": run.reused, "stage_wall_s": run.walls, "row": row}


def _device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return torch.cuda.get_device_name(0)
    return f"cpu ({os.cpu_count()} cores, {platform.machine()})"
