"""SB3 PPO (CnnPolicy) on a learned, true or constant reward: typed budgets and one ``train_ppo``.

The env is ``make_vec_env(..., training=True)`` (a lost life ends the learner's episode, as baselines'
``EpisodicLifeEnv`` in the papers' PPO) with a reward wrapper from ``trex_bench.rl.wrappers`` on top; the true
full-game score stays in ``info["episode"]``, so SB3's ``rollout/ep_rew_mean`` in TensorBoard is the true score.

Observations are uint8 channels-first stacks [4, 84, 84]: SB3 recognises them as images
(``is_image_space_channels_first``: the smallest axis comes first), divides by 255 in the policy and does *not*
insert a ``VecTransposeImage`` (tests/test_ppo.py checks both).

``kl_to``/``kl_beta`` add the RLHF penalty r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_BC(a_t|s_t)) to that
reward (``trex_bench.rl.kl``; Ziegler et al. 2019, Ouyang et al. 2022).
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from trex_bench.core.envs import get_profile, make_vec_env
from trex_bench.core.errors import ConfigError
from trex_bench.core.games import get_game
from trex_bench.core.io import atomic_write, file_hash, read_json, versions, write_json
from trex_bench.core.progress import PPOProgress
from trex_bench.rl.config import PPOConfig
from trex_bench.rl.kl import KLToReferenceCallback, ReferencePolicy, kl_reference, kl_summary
from trex_bench.rl.precision import FastCnnPolicy, policy_kwargs, resolve_precision
from trex_bench.rl.resume import begin, restore, run_precision
from trex_bench.rl.wrappers import TRANSFORMS, ClipRewardVecEnv, ConstantRewardVecEnv, LearnedRewardVecEnv

__all__ = [
    "PPOConfig",
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
        raise ConfigError(f"unknown reward transform {transform!r}; valid: {', '.join(TRANSFORMS)}")
    from trex_bench.reward.net import load_model

    folder = Path(reward)
    if not folder.exists():
        raise ConfigError(f"reward must be 'true', 'constant' or a reward-model folder; {folder} does not exist")
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
    if transform == "normalized":  # since issue 14: r̂ / std of the discounted return, no mean subtracted
        desc["normalizer"] = "return-std"
    return wrapped, desc


def _check_kl(kl_to: object, kl_beta: float) -> float:
    """β as a float, refused unless finite and >= 0 and given with a reference (β = 0 with one: a warning)."""
    kl_beta = float(kl_beta)
    if not kl_beta >= 0 or kl_beta == float("inf"):
        raise ConfigError(f"kl_beta must be a finite number >= 0, got {kl_beta}")
    if kl_beta > 0 and kl_to is None:
        raise ConfigError(f"kl_beta={kl_beta} needs a reference policy (kl_to, a BC model folder)")
    if kl_to is not None and kl_beta == 0:
        warnings.warn(f"kl_to={kl_to} with kl_beta=0: the KL penalty is off", stacklevel=3)
    return kl_beta


def _callbacks(
    cfg: PPOConfig, out: Path, desc: str, progress: bool, kl_cb: BaseCallback | None, done: int = 0
) -> list[BaseCallback]:
    """The KL penalty, the progress bar, the opt-in time cap and the checkpoints, as SB3 callbacks (``done``: steps a
    resumed run already has)."""
    callbacks: list[BaseCallback] = [kl_cb] if kl_cb is not None else []
    if progress:
        callbacks.append(PPOProgress(cfg.total_steps - done, desc=desc))
    if cfg.max_seconds is not None:
        callbacks.append(_TimeCap(cfg.max_seconds))
    if cfg.checkpoint_every > 0:
        freq = max(cfg.checkpoint_every // cfg.n_envs, 1)  # CheckpointCallback counts vectorised steps
        checkpoints = CheckpointCallback(freq, str(out / "checkpoints"), name_prefix="ppo")
        checkpoints.n_calls = done // cfg.n_envs  # a resumed run keeps the checkpoint grid of the whole run
        callbacks.append(checkpoints)
    return callbacks


def _make_model(
    env: VecEnv, cfg: PPOConfig, out: Path, seed: int, device: str | torch.device, precision: str, channels_last: bool
) -> PPO:
    """SB3 PPO with ``cfg``'s settings; lr and clip anneal over ``cfg.horizon`` (a budget is a prefix of it)."""
    model = PPO(
        FastCnnPolicy,
        env,
        policy_kwargs=policy_kwargs(precision),
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
    return model


def train_ppo(
    game: str,
    reward: str | Path,
    cfg: PPOConfig,
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
    resume: bool = False,
) -> Path:
    """Train SB3 PPO on ``game`` with the given reward; write the agent folder.

    Args:
        game: game id.
        reward: a reward-model folder, ``"true"`` or ``"constant"`` (see ``reward_env``).
        cfg: the PPO recipe (``trex_bench.experiment.budgets.ppo_config`` builds a budget's).
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
        resume: go on from the newest checkpoint of an unfinished run in ``out_dir`` started with the same settings
            (its ``run.json``; ``trex_bench.rl.resume``); a folder without checkpoints starts afresh. The card
            records the step it resumed from.

    Returns:
        ``out_dir``.

    Raises:
        ValueError: unknown game/budget/transform, a missing reward model, or one of another game or profile;
            β < 0 (or not finite), β > 0 without ``kl_to``, or a KL reference of another game or action set.
    """
    g = get_game(game)
    prof = get_profile(profile)
    out = Path(out_dir)
    kl_beta = _check_kl(kl_to, kl_beta)
    if resume and precision == "auto":
        precision = run_precision(out) or precision  # a resumed run keeps the numerics it was started with
    precision, precision_record = resolve_precision(precision, device)  # refuses a bad mode before any work
    # Validate the reward and the KL reference before creating anything on disk.
    venv = make_vec_env(g, cfg.n_envs, prof, seed=seed, training=TRAINING_ENV)
    try:
        env, reward_desc = reward_env(venv, reward, g.id, prof.name, transform, device)
        ref_desc, kl_cb = None, None
        if kl_to is not None:
            reference, ref_desc = kl_reference(kl_to, g.id, int(venv.action_space.n), device)
            kl_cb = KLToReferenceCallback(reference, kl_beta) if kl_beta > 0 else None
        started = {
            "game": g.id,
            "profile": prof.name,
            "reward": reward_desc,
            "config": dataclasses.asdict(cfg.replace(max_seconds=None)),  # a time cap may differ per session
            "seed": seed,
            "precision": precision,
            "kl_to": ref_desc,
            "kl_beta": kl_beta,
        }
        if resume and transform == "normalized":
            raise ConfigError("resume with the normalized transform: its running return std is not in checkpoints")
        point = begin(out, started, resume)  # refuses a run started otherwise, or one that would mix checkpoints
    except BaseException:
        venv.close()
        raise
    if channels_last is None:
        channels_last = torch.device(device).type == "cpu"
    try:
        model = _make_model(env, cfg, out, seed, device, precision, channels_last)
        done = 0 if point is None else restore(model, point, cfg.n_envs * cfg.n_steps)
        callbacks = _callbacks(cfg, out, f"ppo {g.id}", progress, kl_cb, done)
        t0 = time.perf_counter()
        # Our own bar (trex_bench.core.progress), not SB3's progress_bar=True, which needs `rich`. A resumed learn() keeps
        # the step count, so lr and clip continue along their schedule and TensorBoard continues the same log.
        model.learn(
            cfg.total_steps - done,
            callback=callbacks,
            progress_bar=False,
            tb_log_name="ppo",
            reset_num_timesteps=point is None,
        )
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
        "resumed_from": done or None,
        "wall_s": round(wall, 3),
        "steps_per_s": round((model.num_timesteps - done) / max(wall, 1e-9), 1),
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
            raise ConfigError(f"{folder}: not an agent folder ({name} is missing)")
    card = read_agent_card(folder / "card.json")
    model = load_ppo_zip(folder / AGENT_FILE, card, device, trust_pickle=trust_pickle)
    if card.get("reward_norm") is None and (folder / NORM_FILE).exists():
        card["reward_norm"] = read_json(folder / NORM_FILE)
    return model, card
