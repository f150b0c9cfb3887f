"""The pipeline's stages: each keyed by its resolved sub-config and its inputs' keys, each returning a typed result.

A method is a list of stage names (``trex_bench.experiment.config.METHODS``); :data:`STAGES` maps each name to its
function here. A stage function takes the run's :class:`StageContext` (the config, the demos, the stages finished so
far) and returns its typed result: a :class:`~trex_bench.experiment.run_folder.StageRecord` for a stage whose product is
a folder the next stage reads (bc, noise-rollouts, reward), or the figures the summary needs
(``trex_bench.evaluation.results``: ``FidelityFigures``, ``AgentResult``, ``Evaluation``). Paths appear only where a
stage writes or reads its folder.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.io import file_hash, read_json
from trex_bench.core.types import DemoSet
from trex_bench.evaluation.results import AgentResult, Evaluation, FidelityFigures
from trex_bench.experiment.config import ExperimentConfig
from trex_bench.experiment.run_folder import RunFolder, StageRecord

__all__ = [
    "STAGES",
    "StageContext",
    "FidelityFigures",
    "AgentResult",
    "Evaluation",
]  # results from trex_bench.evaluation.results


@dataclass
class StageContext:
    """What the stages of one run share: the config, the run folder, the demos, and each finished stage's record and
    typed result (filled in by the stages, in the method's order)."""

    cfg: ExperimentConfig
    run: RunFolder
    demos_dir: Path
    demos: DemoSet
    demos_hash: str
    cache_dir: Path | None
    progress: bool
    unseen_dir: Path | None
    label_timeout: float | None = None
    fidelity: FidelityFigures | None = None
    agent: AgentResult | None = None
    evaluation: Evaluation | None = None

    def record(self, name: str) -> StageRecord:
        """The record of a finished stage this one depends on."""
        return self.run.records[name]


def bc_stage(ctx: StageContext) -> StageRecord:
    from trex_bench.bc.folder import train_command

    cfg = ctx.cfg
    assert cfg.bc is not None
    key = {"stage": "bc", "config": dataclasses.asdict(cfg.bc), "seed": cfg.seed, "demos": ctx.demos_hash}
    return ctx.run.stage(
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


def noise_rollouts_stage(ctx: StageContext) -> StageRecord:
    from trex_bench.reward.drex import noise_rollouts, rollout_recipe

    cfg = ctx.cfg
    k = cfg.drex_rollouts
    assert k is not None
    bc = ctx.record("bc")
    key = {"stage": "noise-rollouts", "bc": bc.key, **rollout_recipe(), "k": k, "seed": cfg.seed}
    return ctx.run.stage(
        "noise-rollouts",
        key,
        lambda tmp: noise_rollouts(
            ctx.demos, bc.folder, tmp, per_level=k, seed=cfg.seed, device=cfg.device, progress=ctx.progress
        ),
    )


def reward_stage(ctx: StageContext) -> StageRecord:
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.build import train_command

    cfg = ctx.cfg
    assert cfg.reward is not None
    rollouts = ctx.run.records.get("noise-rollouts")
    train_demos = rollouts.folder / "demos" if rollouts is not None else ctx.demos_dir
    key = {
        "stage": "reward",
        "method": cfg.method,
        "ranking": cfg.ranking,
        "seed": cfg.seed,
        "config": cfg.reward.key(),  # selection options at their defaults stay out of the key (TrainConfig.key)
        "demos": ctx.demos_hash if rollouts is None else load_demos(train_demos).content_hash(),
    }
    if cfg.human_labels is not None:
        key["human_labels"] = file_hash(cfg.human_labels)
    return ctx.run.stage(
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


def fidelity_stage(ctx: StageContext) -> FidelityFigures:
    """Fidelity on the original demos: for D-REX the net never saw their returns or their order."""
    from trex_bench.reward.fidelity import score_command

    reward = ctx.record("reward")
    key = {"stage": "fidelity", "reward": reward.key, "demos": ctx.demos_hash}
    rec = ctx.run.stage(
        "fidelity", key, lambda tmp: score_command(reward.folder, ctx.demos_dir, tmp / "fidelity.json", ctx.cache_dir)
    )
    ctx.fidelity = FidelityFigures.from_json(read_json(rec.folder / "fidelity.json"))
    return ctx.fidelity


def extrapolation_stage(ctx: StageContext) -> StageRecord | None:
    """The reward's extrapolation to later checkpoints of the demos' PPO run, when there is an unseen set."""
    if ctx.unseen_dir is None:
        return None
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.extrapolation import summary_line, write_stage

    cfg = ctx.cfg
    unseen = load_demos(ctx.unseen_dir, game=cfg.game, profile=cfg.profile)
    reward = ctx.record("reward")
    key = {"stage": "extrapolation", "reward": reward.key, "demos": ctx.demos_hash, "unseen": unseen.content_hash()}
    rec = ctx.run.stage(
        "extrapolation",
        key,
        lambda tmp: write_stage(reward.folder, cfg.method, cfg.seed, ctx.demos, unseen, tmp, ctx.cache_dir),
    )
    ctx.run.log(summary_line(read_json(rec.folder / "extrapolation.json"), ctx.unseen_dir))
    return rec


def agent_stage(ctx: StageContext) -> AgentResult:
    from trex_bench.rl.config import PPOJob
    from trex_bench.rl.ppo import train_ppo
    from trex_bench.rl.precision import precision_line, resolve_precision
    from trex_bench.rl.resume import run_precision

    cfg = ctx.cfg
    assert cfg.ppo is not None
    if cfg.spec.learned_reward:
        reward = ctx.record("reward")
        reward_source: str | Path = reward.folder
        upstream: Any = reward.key
    elif cfg.spec.reward == "prefs":
        reward_source, upstream = "online", {"prefs": dataclasses.asdict(cfg.prefs), "labeler": cfg.labeler}
    elif cfg.spec.reward == "gail":
        reward_source, upstream = "online", {"gail": dataclasses.asdict(cfg.gail), "demos": ctx.demos_hash}
    else:
        reward_source = upstream = cfg.spec.reward
    # The mode that runs keys the stage, not "auto"; an interrupted run goes on in the mode it started in, where a
    # new probe (another load, another thread count) might choose otherwise.
    partial = ctx.run.partial("agent")
    started = run_precision(partial) if partial is not None and cfg.precision == "auto" else None
    precision, why = resolve_precision(started or cfg.precision, cfg.device)
    kept = " (the precision of the interrupted run it goes on from)" if started else ""
    ctx.run.log(f"[agent] {precision_line(precision, why)}{kept}")
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
    # A PPO run cut off (a session's end) goes on from its newest checkpoint on `--resume`; not the normalized
    # transform, whose running return std is not in the checkpoints.
    resumable = cfg.transform != "normalized"
    job = PPOJob(
        cfg.game,
        cfg.ppo,
        seed=cfg.seed,
        reward=reward_source,
        transform=cfg.transform,
        profile=cfg.profile,
        kl=cfg.kl,
        precision=precision,
        device=cfg.device,
    )
    rec = ctx.run.stage(
        "agent",
        key,
        lambda tmp: train_ppo(job, tmp, progress=ctx.progress, resume=resumable, online=_online_reward(ctx, tmp)),
        resumable=resumable,
    )
    ctx.agent = AgentResult.from_card(read_json(rec.folder / "card.json"))
    return ctx.agent


def eval_stage(ctx: StageContext) -> Evaluation:
    """Full games of the method's final policy: the PPO agent, the BC clone itself for ``bc``, or the uniform-random
    policy for ``random``."""
    from trex_bench.evaluation.evaluate import evaluate_agent

    cfg = ctx.cfg
    policy = ctx.record(next(s for s in ("agent", "bc", "random-policy") if s in ctx.run.records))
    key = {
        "stage": "eval",
        "agent": policy.key,
        "episodes": cfg.eval.episodes,
        "seed": cfg.seed,
        "demos": ctx.demos_hash,
    }
    rec = ctx.run.stage(
        "eval",
        key,
        lambda tmp: evaluate_agent(
            policy.folder,
            episodes=cfg.eval.episodes,
            seed=cfg.seed,
            demos_dir=ctx.demos_dir,
            out=tmp / "eval.json",
            device=cfg.device,
            progress=ctx.progress,
            game=cfg.game,  # an agent of another game is refused, not played
        ),
    )
    ctx.evaluation = Evaluation.from_json(read_json(rec.folder / "eval.json"))
    return ctx.evaluation


def _online_reward(ctx: StageContext, agent_dir: Path) -> Any:
    """The reward that learns during PPO, for a method that has one: the preference loop, its queries and answers in
    ``<agent>/prefs/`` (``labels.csv``, ``pairs.json``, clips: the folder ``trex-bench label serve`` shows a person),
    going on from the answers already there."""
    cfg = ctx.cfg
    if cfg.spec.reward == "gail":
        return _gail_reward(ctx)
    if cfg.spec.reward != "prefs":
        return None
    import numpy as np

    from trex_bench.reward.preferences import HumanLabeler
    from trex_bench.rl.preference_loop import PreferenceReward

    assert cfg.prefs is not None
    labeler = HumanLabeler(timeout_seconds=ctx.label_timeout) if cfg.labeler == "human" else None  # None: the oracle
    rng = np.random.default_rng([cfg.seed, 1])  # apart from PPO's own seeding by cfg.seed
    return PreferenceReward(cfg.game, cfg.prefs, agent_dir / "prefs", labeler, rng, cfg.device, resume=True)


def _gail_reward(ctx: StageContext) -> Any:
    """GAIL's discriminator, trained against the run's demo set (its (s, a) pairs from the frame cache)."""
    import numpy as np

    from trex_bench.demos.frames import FrameCache
    from trex_bench.rl.gail import GAILReward

    cfg = ctx.cfg
    assert cfg.gail is not None
    rng = np.random.default_rng([cfg.seed, 1])  # apart from PPO's own seeding by cfg.seed; the same on resume
    return GAILReward(cfg.game, ctx.demos, FrameCache(ctx.demos, ctx.cache_dir), cfg.gail, rng, cfg.device)


def random_policy_stage(ctx: StageContext) -> StageRecord:
    """The uniform-random policy as a policy folder (no model): what the eval stage plays for ``random``."""
    from trex_bench.evaluation.evaluate import write_random_policy

    cfg = ctx.cfg
    key = {"stage": "random-policy", "game": cfg.game, "profile": cfg.profile}
    return ctx.run.stage("random-policy", key, lambda tmp: write_random_policy(tmp, cfg.game, cfg.profile))


def _kl_key(cfg: ExperimentConfig) -> dict[str, Any] | None:
    if cfg.kl is None:
        return None
    card = cfg.kl.to / "card.json"
    return {"beta": cfg.kl.beta, "card": file_hash(card) if card.exists() else str(cfg.kl.to)}


STAGES: dict[str, Callable[[StageContext], object]] = {
    "bc": bc_stage,
    "noise-rollouts": noise_rollouts_stage,
    "reward": reward_stage,
    "fidelity": fidelity_stage,
    "extrapolation": extrapolation_stage,
    "agent": agent_stage,
    "random-policy": random_policy_stage,
    "eval": eval_stage,
}
