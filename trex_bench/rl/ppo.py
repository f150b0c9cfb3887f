"""SB3 PPO (CnnPolicy) on a learned, true or constant reward: typed budgets and one ``train_ppo``.

The env is ``make_vec_env(..., training=True)`` (a lost life ends the learner's episode, as baselines'
``EpisodicLifeEnv`` in the papers' PPO) with a reward wrapper from ``trex_bench.rl.wrappers`` on top; the true
full-game score stays in ``info["episode"]``, so SB3's ``rollout/ep_rew_mean`` in TensorBoard is the true score.

Observations are uint8 channels-first stacks [4, 84, 84]: SB3 recognises them as images
(``is_image_space_channels_first``: the smallest axis comes first), divides by 255 in the policy and does *not*
insert a ``VecTransposeImage`` (tests/test_ppo.py checks both).

``kl_to``/``kl_beta`` add the RLHF penalty r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_BC(a_t|s_t)) to that reward
(``trex_bench.rl.kl``; Ziegler et al. 2019, Ouyang et al. 2022).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from trex_bench._io import atomic_write, file_hash, read_json, versions, write_json
from trex_bench._progress import PPOProgress
from trex_bench.envs import get_profile, make_vec_env
from trex_bench.games import get_game
from trex_bench.rl.kl import KLToReferenceCallback, ReferencePolicy, kl_reference, kl_summary
from trex_bench.rl.precision import FastNatureCNN, resolve_precision
from trex_bench.rl.wrappers import TRANSFORMS, ClipRewardVecEnv, ConstantRewardVecEnv, LearnedRewardVecEnv

__all__ = [
    "PPOConfig",
    "BUDGETS",
    "get_ppo_config",
    "train_ppo",
    "load_agent",
    "reward_env",
    "kl_reference",
    "AGENT_FILE",
    "NORM_FILE",
]

AGENT_FILE = "agent.zip"
# PPO learns on life-loss episodes with FIRE forced after a lost life (baselines' EpisodicLifeEnv + FireResetEnv, the
# papers' PPO); evaluation plays full games. Recorded in the card.
TRAINING_ENV = True
NORM_FILE = "reward_norm.json"


@dataclass(frozen=True)
class PPOConfig:
    """Every PPO setting of a run (recorded in the agent's card).

    Attributes:
        name: the budget/preset name.
        total_steps: agent steps (one step = 4 frames) summed over envs.
        n_envs: parallel envs.
        n_steps: rollout length per env per update.
        batch_size: minibatch size (SB3 ``batch_size``; baselines' nminibatches = n_envs·n_steps / batch_size).
        n_epochs: passes over each rollout.
        learning_rate: initial Adam learning rate; ``linear_lr`` anneals it to 0 over ``schedule_steps``.
        clip_range: initial PPO clip ε; ``linear_clip`` anneals it to 0 over ``schedule_steps``.
        schedule_steps: the horizon of those linear schedules: the full-length run of the preset this budget is a
            prefix of (rl-zoo3: 10M agent steps). A run of ``total_steps`` < ``schedule_steps`` is the first
            ``total_steps`` of that run, with the same lr and clip at every step (None: ``total_steps``, a run
            annealed over its own length).
        ent_coef, vf_coef, max_grad_norm, gamma, gae_lambda: as in SB3/baselines.
        checkpoint_every: save a checkpoint every this many agent steps (0: none).
        max_seconds: an opt-in safety valve, never set by a budget: stop after this much training wall time
            (None: none). A run it stops depends on the machine's load; the card and the leaderboard row say so.
        source: where the values come from.
    """

    name: str
    total_steps: int
    n_envs: int = 8
    n_steps: int = 128
    batch_size: int = 256
    n_epochs: int = 4
    learning_rate: float = 2.5e-4
    linear_lr: bool = True
    clip_range: float = 0.1
    linear_clip: bool = True
    ent_coef: float = 0.01
    vf_coef: float = 0.5
    max_grad_norm: float = 0.5
    gamma: float = 0.99
    gae_lambda: float = 0.95
    schedule_steps: int | None = None
    checkpoint_every: int = 0
    max_seconds: float | None = None
    source: str = ""

    def __post_init__(self) -> None:
        if min(self.total_steps, self.n_envs, self.n_steps, self.batch_size, self.n_epochs) < 1:
            raise ValueError(f"PPOConfig {self.name!r}: steps, envs, batch size and epochs must be >= 1")
        if self.batch_size > self.n_envs * self.n_steps:
            raise ValueError(
                f"PPOConfig {self.name!r}: batch_size {self.batch_size} > rollout {self.n_envs * self.n_steps}"
            )
        if self.schedule_steps is not None and self.schedule_steps < self.total_steps:
            raise ValueError(
                f"PPOConfig {self.name!r}: schedule_steps {self.schedule_steps} < total_steps "
                f"{self.total_steps} (a budget is a prefix of a longer run, never more)"
            )
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ValueError(f"PPOConfig {self.name!r}: max_seconds must be > 0, got {self.max_seconds}")

    @property
    def horizon(self) -> int:
        """Agent steps over which lr and clip anneal to 0."""
        return self.schedule_steps if self.schedule_steps is not None else self.total_steps

    def lr_at(self, step: int) -> float:
        """The learning rate in force after ``step`` agent steps (what SB3's schedule returns there)."""
        return float(
            _schedule(self.learning_rate, self.linear_lr, self.total_steps, self.horizon)(1 - step / self.total_steps)
        )

    def clip_at(self, step: int) -> float:
        """The clip range in force after ``step`` agent steps."""
        return float(
            _schedule(self.clip_range, self.linear_clip, self.total_steps, self.horizon)(1 - step / self.total_steps)
        )

    def replace(self, **changes: Any) -> PPOConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


# rl-zoo3 hyperparams/ppo.yml `atari` (Raffin et al., "RL Baselines3 Zoo", 2020): 8 envs, n_steps 128, batch 256,
# 4 epochs, lr lin_2.5e-4, clip lin_0.1, ent 0.01, vf 0.5, n_timesteps 1e7.
_ZOO = dict(
    n_envs=8, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01, vf_coef=0.5
)
ZOO_HORIZON = 10_000_000

# The CPU and GPU budgets are *prefixes* of rl-zoo3's 10M-step run (DESIGN.md Budgets): lr and clip anneal over
# ZOO_HORIZON and the run stops at total_steps. Measured on 2 CPU cores, Breakout, PPO on the true reward, seed 0:
# 16.3 ± 5.7 at 515k steps this way vs 8.7 ± 4.4 when annealed to 0 over 500k (rl-zoo3's own curve: 15.3 at 500k).
# Every budget is a number of steps; none has a wall-time cap (max_seconds is an explicit opt-in).
BUDGETS: dict[str, PPOConfig] = {
    # Seconds: exercises the code path only; scores are meaningless.
    "smoke": PPOConfig(
        "smoke", total_steps=2_048, n_envs=4, n_steps=64, batch_size=128, n_epochs=2, source="smoke test"
    ),
    # ≈ 10 minutes on 2 CPU cores (measured: 194-199 steps/s with the learned reward): the RL share of
    # `make quickstart` (≤ 15 min end to end, DESIGN.md Budgets).
    "quick": PPOConfig(
        "quick",
        total_steps=120_000,
        schedule_steps=ZOO_HORIZON,
        checkpoint_every=40_000,
        source="rl-zoo3 Atari PPO: the first 120k steps of its 10M-step schedule",
        **_ZOO,
    ),
    # ≈ 43 minutes on 2 CPU cores at 194 steps/s, + ≤ 5 min of reward training (DESIGN.md: `small` ≤ 60 min).
    "small": PPOConfig(
        "small",
        total_steps=500_000,
        schedule_steps=ZOO_HORIZON,
        checkpoint_every=100_000,
        source="rl-zoo3 Atari PPO: the first 500k steps of its 10M-step schedule",
        **_ZOO,
    ),
    # T-REX §5 / D-REX §5: OpenAI-baselines PPO2 Atari defaults (baselines/ppo2/defaults.py `atari()`: nsteps 128,
    # nminibatches 4, 4 epochs, lr 2.5e-4·f, clip 0.1·f, ent 0.01, vf 0.5, grad norm 0.5, γ 0.99, λ 0.95),
    # 9 parallel envs, 50M frames = 12.5M agent steps (PAPERS.md "RL on the learned reward"). Batch 128·9/4 = 288.
    "paper": PPOConfig(
        "paper",
        total_steps=12_500_000,
        n_envs=9,
        n_steps=128,
        batch_size=288,
        n_epochs=4,
        learning_rate=2.5e-4,
        clip_range=0.1,
        ent_coef=0.01,
        vf_coef=0.5,
        checkpoint_every=500_000,
        source="T-REX/D-REX: OpenAI baselines PPO2 Atari defaults, 9 envs, 50M frames",
    ),
    # One GPU + 16 CPU cores within one `device` lease (15 min of device time in all, start and evaluation
    # included): 700k steps, what 300 s of PPO reached there (703 968-821 264 steps, results/device/2026-11-26-h200).
    # rl-zoo3 settings with 16 envs (one per core), batch 512; a prefix of a 10M-step schedule.
    "gpu": PPOConfig(
        "gpu",
        total_steps=700_000,
        n_envs=16,
        n_steps=128,
        batch_size=512,
        n_epochs=4,
        learning_rate=2.5e-4,
        clip_range=0.1,
        ent_coef=0.01,
        vf_coef=0.5,
        checkpoint_every=100_000,
        schedule_steps=ZOO_HORIZON,
        source="rl-zoo3 Atari PPO, 16 envs, batch 512: the first 700k steps of a 10M-step schedule",
    ),
    "paper-zoo": PPOConfig(
        "paper-zoo", total_steps=ZOO_HORIZON, checkpoint_every=500_000, source="rl-zoo3 tuned Atari PPO", **_ZOO
    ),
}


def get_ppo_config(budget: str | PPOConfig) -> PPOConfig:
    """The PPO preset of a budget (``smoke``, ``quick``, ``small``, ``gpu``, ``paper``, ``paper-zoo``)."""
    if isinstance(budget, PPOConfig):
        return budget
    if budget not in BUDGETS:
        raise ValueError(f"unknown PPO budget {budget!r}; valid: {', '.join(BUDGETS)}")
    return BUDGETS[budget]


def _schedule(value: float, linear: bool, total_steps: int, horizon: int) -> float | LinearSchedule:
    """SB3's schedule for one ``learn(total_steps)`` call that is the first ``total_steps`` of a ``horizon`` run.

    SB3 calls it with progress_remaining p = 1 − t/total_steps; ``LinearSchedule`` with end_fraction
    horizon/total_steps returns value·(1 − t/horizon): baselines' f, annealed over the whole horizon.
    """
    return LinearSchedule(value, 0.0, horizon / total_steps) if linear else value


def reward_env(
    venv: VecEnv,
    reward: str | Path,
    game: str,
    profile: str,
    transform: str = "sigmoid",
    device: str | torch.device = "cpu",
    norm_state: dict[str, Any] | None = None,
    update_norm: bool = True,
) -> tuple[VecEnv, dict[str, Any]]:
    """Wrap ``venv`` with the reward PPO should see, and describe that reward for the card.

    Args:
        reward: ``"true"`` (sign-clipped true reward, as the papers' PPO), ``"constant"`` (every step 1), or a
            reward-model folder.
        game, profile: what the model must have been trained for (refused otherwise, naming both).

    Returns:
        ``(wrapped env, reward description)``.
    """
    if str(reward) == "true":
        return ClipRewardVecEnv(venv), {"source": "true", "transform": "sign"}
    if str(reward) == "constant":
        return ConstantRewardVecEnv(venv), {"source": "constant", "transform": "none"}
    if transform not in TRANSFORMS:
        raise ValueError(f"unknown reward transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
    from trex_bench.reward.net import load_model

    folder = Path(reward)
    if not folder.exists():
        raise ValueError(f"reward must be 'true', 'constant' or a reward-model folder; {folder} does not exist")
    model, card = load_model(folder, game=game, profile=profile, device=device)
    wrapped = LearnedRewardVecEnv(venv, model, transform, device, norm_state=norm_state, update_norm=update_norm)
    desc = {
        "source": "model",
        "model_dir": str(folder),
        "model_card_hash": file_hash(folder / "card.json"),
        "model_weights_hash": file_hash(folder / "model.safetensors"),
        "method": card.get("method"),
        "arch": card.get("arch"),
        "transform": transform,
    }
    return wrapped, desc


def train_ppo(
    game: str,
    reward: str | Path,
    cfg: PPOConfig | str,
    seed: int,
    out_dir: str | Path,
    device: str | torch.device = "cpu",
    progress: bool = True,
    transform: str = "sigmoid",
    profile: str = "paper",
    kl_to: str | Path | ReferencePolicy | None = None,
    kl_beta: float = 0.0,
    channels_last: bool | None = None,
    precision: str = "fp32",
) -> Path:
    """Train SB3 PPO on ``game`` with the given reward; write the agent folder.

    Args:
        game: game id.
        reward: a reward-model folder, ``"true"`` or ``"constant"`` (see ``reward_env``).
        cfg: a ``PPOConfig`` or a budget name.
        seed: seeds SB3 (policy init, action sampling) and the env's per-episode reset seeds.
        out_dir: the agent folder: ``agent.zip``, ``card.json``, ``reward_norm.json`` (normalized transform),
            ``checkpoints/``, ``tb/`` (TensorBoard).
        device: torch device for the policy and the reward model.
        progress: show a progress bar.
        transform: ``sigmoid`` (the papers), ``raw``, ``normalized`` or ``delta``; only for a reward model.
        profile: env profile; a reward model must have been trained under it.
        kl_to: the reference π_0 of the RLHF KL penalty: a BC model folder (``trex-bench bc train``) or a
            ``ReferencePolicy`` object; None: no penalty.
        kl_beta: β ≥ 0 of r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_0(a_t|s_t)) (``trex_bench.rl.kl``). With
            ``kl_to`` and β = 0 the penalty is off (a warning says so).
        channels_last: run the policy's convolutions in NHWC memory format (faster on CPU); None: on for a CPU
            device, off elsewhere. Recorded in the card.
        precision: the policy trunk's numerics: ``fp32``, ``bf16`` (autocast, fp32 heads/losses/weights) or
            ``auto`` (the faster on this machine, measured once: ``trex_bench.rl.precision``). Recorded in the card.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: unknown game/budget/transform, a missing reward model, or one of another game or profile;
            β < 0 (or not finite), β > 0 without ``kl_to``, or a KL reference of another game or action set.
    """
    g = get_game(game)
    prof = get_profile(profile)
    cfg = get_ppo_config(cfg)
    out = Path(out_dir)
    kl_beta = float(kl_beta)
    if not kl_beta >= 0 or kl_beta == float("inf"):
        raise ValueError(f"kl_beta must be a finite number >= 0, got {kl_beta}")
    if kl_beta > 0 and kl_to is None:
        raise ValueError(f"kl_beta={kl_beta} needs a reference policy (kl_to, a BC model folder)")
    if kl_to is not None and kl_beta == 0:
        warnings.warn(f"kl_to={kl_to} with kl_beta=0: the KL penalty is off", stacklevel=2)
    precision, precision_record = resolve_precision(precision, device)  # refuses a bad mode before any work
    # Validate the reward and the KL reference before creating anything on disk.
    venv = make_vec_env(g, cfg.n_envs, prof, seed=seed, training=TRAINING_ENV)
    try:
        env, reward_desc = reward_env(venv, reward, g.id, prof.name, transform, device)
        ref_desc, kl_cb = None, None
        if kl_to is not None:
            reference, ref_desc = kl_reference(kl_to, g.id, int(venv.action_space.n), device)
            kl_cb = KLToReferenceCallback(reference, kl_beta) if kl_beta > 0 else None
    except BaseException:
        venv.close()
        raise
    out.mkdir(parents=True, exist_ok=True)
    callbacks: list[BaseCallback] = [kl_cb] if kl_cb is not None else []
    if progress:
        callbacks.append(PPOProgress(cfg.total_steps, desc=f"ppo {g.id}"))
    if cfg.max_seconds is not None:
        callbacks.append(_TimeCap(cfg.max_seconds))
    if cfg.checkpoint_every > 0:
        freq = max(cfg.checkpoint_every // cfg.n_envs, 1)  # CheckpointCallback counts vectorised steps
        callbacks.append(CheckpointCallback(freq, str(out / "checkpoints"), name_prefix="ppo"))
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    # fp32 channels-last keeps SB3's own NatureCNN (the numerics of every earlier row); bf16 needs the autocast trunk.
    policy_kwargs = (
        {"features_extractor_class": FastNatureCNN, "features_extractor_kwargs": {"bf16": True}}
        if precision == "bf16"
        else None
    )
    model = PPO(
        "CnnPolicy",
        env,
        policy_kwargs=policy_kwargs,
        learning_rate=_schedule(cfg.learning_rate, cfg.linear_lr, cfg.total_steps, cfg.horizon),
        n_steps=cfg.n_steps,
        batch_size=cfg.batch_size,
        n_epochs=cfg.n_epochs,
        gamma=cfg.gamma,
        gae_lambda=cfg.gae_lambda,
        clip_range=_schedule(cfg.clip_range, cfg.linear_clip, cfg.total_steps, cfg.horizon),
        ent_coef=cfg.ent_coef,
        vf_coef=cfg.vf_coef,
        max_grad_norm=cfg.max_grad_norm,
        tensorboard_log=str(out / "tb"),
        seed=seed,
        device=device,
        verbose=0,
    )
    if channels_last:
        # NHWC convolutions (oneDNN): the PPO update is ~70 % of a CPU run and its minibatch forward/backward ran
        # 1.2-1.3x faster this way on 2 cores (benchmarks/ppo_reward_speed.py --arms memory-format); the maths is the
        # same. Parameters keep their identity, so the optimiser SB3 already built still holds them.
        model.policy.to(memory_format=torch.channels_last)
    t0 = time.perf_counter()
    try:
        # Our own bar (trex_bench._progress), not SB3's progress_bar=True, which needs `rich`.
        model.learn(cfg.total_steps, callback=callbacks, progress_bar=False, tb_log_name="ppo")
    finally:
        env.close()
    wall = time.perf_counter() - t0
    atomic_write(out / AGENT_FILE, lambda p: model.save(p), suffix=".zip")
    norm = env.get_norm_state() if isinstance(env, LearnedRewardVecEnv) and transform == "normalized" else None
    if norm is not None:
        write_json(out / NORM_FILE, norm)
    card = {
        "kind": "agent",
        "game": g.id,
        "profile": prof.name,
        "profile_settings": prof.settings(),
        "training_env": TRAINING_ENV,
        "reward": reward_desc,
        "budget": cfg.name,
        "config": dataclasses.asdict(cfg),
        "seed": seed,
        "steps": int(model.num_timesteps),
        "schedule_steps": cfg.horizon,
        "stopped": f"time cap ({cfg.max_seconds:g} s)" if model.num_timesteps < cfg.total_steps else "total steps",
        "wall_s": round(wall, 3),
        "steps_per_s": round(model.num_timesteps / max(wall, 1e-9), 1),
        "device": str(device),
        "channels_last": bool(channels_last),
        "precision": precision,
        "precision_probe": precision_record,
        "reward_norm": norm,
        "kl_to": ref_desc,
        "kl_beta": kl_beta,
        "kl_mean": None if kl_cb is None else kl_summary(kl_cb.kl_history),
        "versions": versions(),
    }
    write_json(out / "card.json", card)  # written last: a folder with a card is a finished agent
    return out


class _TimeCap(BaseCallback):
    """Stop ``learn`` once ``seconds`` of wall time have passed (checked after every vectorised step)."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self._t0 = 0.0

    def _on_training_start(self) -> None:
        self._t0 = time.perf_counter()

    def _on_step(self) -> bool:
        return time.perf_counter() - self._t0 < self.seconds


def load_agent(
    agent_dir: str | Path, device: str | torch.device = "cpu", trust_pickle: bool = False
) -> tuple[PPO, dict[str, Any]]:
    """Load ``agent.zip`` + ``card.json`` of a ``train_ppo`` folder without unpickling anything.

    The zip's ``data`` (where SB3 keeps cloudpickled objects) is never read: ``policy.pth`` is read with
    ``torch.load(weights_only=True)`` into a ``CnnPolicy`` rebuilt from the game's spaces and the card's
    ``precision`` (``trex_bench.rl.agent_io``); the model acts, it does not resume training. ``trust_pickle``:
    use SB3's ``PPO.load``, which runs the zip's pickles. Raises ValueError (one line) on a bad folder, card or zip.
    """
    from trex_bench.rl.agent_io import load_ppo_zip, read_agent_card

    folder = Path(agent_dir)
    for name in ("card.json", AGENT_FILE):
        if not (folder / name).exists():
            raise ValueError(f"{folder}: not an agent folder ({name} is missing)")
    card = read_agent_card(folder / "card.json")
    model = load_ppo_zip(folder / AGENT_FILE, card, device, trust_pickle=trust_pickle)
    if card.get("reward_norm") is None and (folder / NORM_FILE).exists():
        card["reward_norm"] = read_json(folder / NORM_FILE)
    return model, card
