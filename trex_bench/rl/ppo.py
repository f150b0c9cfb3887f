"""SB3 PPO (CnnPolicy) on a learned, true or constant reward: typed budgets and one ``train_ppo``.

The env is ``make_vec_env(..., training=True)`` (a lost life ends the learner's episode, as baselines'
``EpisodicLifeEnv`` in the papers' PPO) with a reward wrapper from ``trex_bench.rl.wrappers`` on top; the true
full-game score stays in ``info["episode"]``, so SB3's ``rollout/ep_rew_mean`` in TensorBoard is the true score.

Observations are uint8 channels-first stacks [4, 84, 84]: SB3 recognises them as images
(``is_image_space_channels_first``: the smallest axis comes first), divides by 255 in the policy and does *not*
insert a ``VecTransposeImage`` (tests/test_ppo.py checks both).

``PPOJob.kl`` adds the RLHF penalty r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_BC(a_t|s_t)) to that
reward (``trex_bench.rl.kl``; Ziegler et al. 2019, Ouyang et al. 2022).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecEnv

from trex_bench.core.envs import get_profile, make_vec_env
from trex_bench.core.errors import ConfigError
from trex_bench.core.interrupts import stop_requests
from trex_bench.core.io import atomic_write, claim_output, file_hash, read_json, versions, write_json
from trex_bench.core.progress import PPOProgress
from trex_bench.rl.checkpoints import (
    INTERIM_EVERY_S,
    CheckpointState,
    GridCheckpoints,
    InterimCheckpoints,
    drop_interim,
)
from trex_bench.rl.config import PPOJob
from trex_bench.rl.kl import KLToReferenceCallback, kl_reference, kl_summary
from trex_bench.rl.online import OnlineReward, state_folder
from trex_bench.rl.precision import FastCnnPolicy, policy_kwargs, precision_line, resolve_precision
from trex_bench.rl.resume import CHECKPOINTS, ResumePoint, begin, restore, resume_seed, run_precision
from trex_bench.rl.wrappers import TRANSFORMS, ClipRewardVecEnv, ConstantRewardVecEnv, LearnedRewardVecEnv

__all__ = ["train_ppo", "load_agent", "reward_env", "AGENT_FILE", "NORM_FILE", "ONLINE_DIR"]

AGENT_FILE = "agent.zip"
# PPO learns on life-loss episodes with FIRE forced after a lost life (baselines' EpisodicLifeEnv + FireResetEnv, the
# papers' PPO); evaluation plays full games. Recorded in the card.
TRAINING_ENV = True
NORM_FILE = "reward_norm.json"
ONLINE_DIR = "online"  # a finished run's online reward (its last state)


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
    if transform == "normalized":  # r̂ / std of the discounted return, no mean subtracted
        desc["normalizer"] = "return-std"
    return wrapped, desc


def _callbacks(job: PPOJob, out: Path, progress: bool, s: _Session, done: int) -> list[BaseCallback]:
    """The learners beside PPO (KL, online reward), the progress bar, the opt-in time cap and the checkpoints, as SB3
    callbacks (``done``: steps a resumed run already has)."""
    cfg, callbacks = job.cfg, list(s.callbacks)
    if progress:
        callbacks.append(PPOProgress(cfg.total_steps - done, desc=f"ppo {job.game}"))
    if cfg.max_seconds is not None:
        callbacks.append(_TimeCap(cfg.max_seconds))
    if cfg.checkpoint_every > 0:
        freq = max(cfg.checkpoint_every // cfg.n_envs, 1)  # CheckpointCallback counts vectorised steps
        checkpoints = GridCheckpoints(freq, out / CHECKPOINTS, s.states)
        checkpoints.n_calls = done // cfg.n_envs  # a resumed run keeps the checkpoint grid of the whole run
        callbacks.append(checkpoints)
    return callbacks


def _make_model(env: VecEnv, job: PPOJob, out: Path, precision: str) -> PPO:
    """SB3 PPO with the job's settings; lr and clip anneal over ``cfg.horizon`` (a budget is a prefix of it)."""
    cfg = job.cfg
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
        seed=job.seed,
        device=job.device,
        verbose=0,
    )
    if _channels_last(job):
        # NHWC convolutions (oneDNN): the PPO update is ~70 % of a CPU run and its minibatch forward/backward runs
        # faster this way on CPU (docs/ppo-profile.md); the maths is the same. Parameters keep their identity, so the
        # optimiser SB3 already built still holds them.
        model.policy.to(memory_format=torch.channels_last)
    return model


def _channels_last(job: PPOJob) -> bool:
    return job.channels_last if job.channels_last is not None else torch.device(job.device).type == "cpu"


class _OnlineCallback(BaseCallback):
    """Holds the online reward whose callback it wraps, so that the checkpoints can save its state."""

    def __init__(self, online: OnlineReward) -> None:
        super().__init__()
        self.online, self.inner = online, online.callback()

    def _init_callback(self) -> None:
        self.inner.init_callback(self.model)

    def _on_rollout_start(self) -> None:
        self.inner.on_rollout_start()

    def _on_step(self) -> bool:
        self.inner.update_locals(self.locals)
        return self.inner.on_step()

    def _on_rollout_end(self) -> None:
        self.inner.update_locals(self.locals)
        self.inner.on_rollout_end()

    def _on_training_end(self) -> None:
        self.inner.on_training_end()


@dataclass
class _Session:
    """A PPO run about to learn: the wrapped env, what was checked and described, and where it resumes from."""

    env: VecEnv
    started: dict[str, Any]
    callbacks: list[BaseCallback]
    states: list[CheckpointState]  # what the checkpoints save beside the policy (``rl.checkpoints``)
    point: ResumePoint | None
    precision: str
    precision_record: dict[str, Any]


def _open(job: PPOJob, out: Path, resume: bool, online: OnlineReward | None, log: Callable[[str], None]) -> _Session:
    """Every check of the job (reward, KL reference, resume record), then the training env; nothing is written
    before the checks pass but ``run.json`` (``rl.resume.begin``); an ``out`` holding anything but an agent (finished
    or in progress) is refused first (``core.io.claim_output``)."""
    claim_output(out, "agent")
    if (job.reward == "online") != (online is not None):
        raise ConfigError("reward 'online' and an OnlineReward object go together")
    if resume and job.transform == "normalized" and job.learned:
        raise ConfigError("resume with the normalized transform: its running return std is not in checkpoints")
    asked = (run_precision(out) or job.precision) if resume and job.precision == "auto" else job.precision
    precision, record = resolve_precision(asked, job.device)  # a resumed run keeps the numerics it started with
    log(
        precision_line(precision, record) + (" (the precision of the run it resumes)" if asked != job.precision else "")
    )
    profile = get_profile(job.profile).name
    venv = make_vec_env(job.game, job.cfg.n_envs, job.profile, seed=job.seed, training=TRAINING_ENV)
    try:
        if online is not None:
            env, reward_desc = online.wrap(venv), {"source": "online", "method": online.name}
        else:
            env, reward_desc = reward_env(venv, job.reward, job.game, profile, job.transform, job.device)
        extra: list[BaseCallback] = [] if online is None else [_OnlineCallback(online)]
        states: list[CheckpointState] = [] if online is None else [online]
        ref_desc = None
        if job.kl is not None:
            reference, ref_desc = kl_reference(job.kl.to, job.game, int(venv.action_space.n), job.device)
            kl_callback = KLToReferenceCallback(reference, job.kl.beta)
            extra.insert(0, kl_callback)
            states.append(kl_callback)
        started = {
            "game": job.game,
            "profile": profile,
            "reward": reward_desc,
            "config": dataclasses.asdict(job.cfg.replace(max_seconds=None)),  # a time cap may differ per session
            "seed": job.seed,
            "precision": precision,
            "kl_to": ref_desc,
            "kl_beta": job.kl.beta if job.kl is not None else 0.0,
        }
        point = begin(out, started, resume)  # refuses a run started otherwise, or one that would mix checkpoints
        for state in states if point is not None else ():
            state.load(state_folder(point.path))
    except BaseException:
        venv.close()
        raise
    return _Session(env, started, extra, states, point, precision, record)


def train_ppo(
    job: PPOJob,
    out_dir: str | Path,
    *,
    progress: bool = True,
    resume: bool = False,
    online: OnlineReward | None = None,
    log: Callable[[str], None] | None = None,
    interim_every_s: float = INTERIM_EVERY_S,
) -> Path:
    """Train SB3 PPO as ``job`` says; write the agent folder ``out_dir``: ``agent.zip``, ``card.json`` (written
    last: a folder with a card is a finished agent), ``reward_norm.json`` (normalized transform), ``checkpoints/``,
    ``tb/`` (TensorBoard: ``rollout/ep_rew_mean`` is the true score).

    Args:
        job: the run (``PPOJob``: game, reward, recipe, seed, transform, profile, KL penalty, numerics, device).
        out_dir: the agent folder.
        progress: show a progress bar.
        resume: go on from the newest checkpoint of an unfinished run in ``out_dir`` started with the same settings
            (its ``run.json``; ``trex_bench.rl.resume``); a folder without checkpoints starts afresh. The card
            records the step it resumed from.
        online: the reward that learns during PPO (``job.reward == "online"``; ``trex_bench.rl.online``).
        log: receives one line saying which precision runs and why (``rl.precision.precision_line``).
        interim_every_s: save an interim checkpoint this often (seconds of training), deleted once the run ends
            (``rl.checkpoints.InterimCheckpoints``): a kill without warning loses at most this much training.

    Raises:
        ConfigError: a missing reward model, or one of another game or profile; a KL reference of another game or
            action set; a resume of a run started otherwise.
        KeyboardInterrupt: Ctrl-C (``core.interrupts.Terminated``: SIGTERM) while PPO learns, raised once the run
            has stopped at its next step inside a collection and saved a checkpoint there
            (``rl.checkpoints.InterimCheckpoints``); ``resume`` goes on from it.
    """
    out = Path(out_dir)
    s = _open(job, out, resume, online, log or (lambda _: None))
    try:
        model = _make_model(s.env, job, out, s.precision)
        rollout = job.cfg.n_envs * job.cfg.n_steps
        done = 0 if s.point is None else restore(model, s.point, rollout)
        if done:  # new env and sampling streams: a resumed run does not replay the games and draws of its start
            model.set_random_seed(resume_seed(job.seed, done))
        t0 = time.perf_counter()
        # Our own bar (trex_bench.core.progress), not SB3's progress_bar=True, which needs `rich`. A resumed learn()
        # keeps the step count, so lr and clip continue along their schedule and TensorBoard continues the same log.
        with stop_requests() as request:  # Ctrl-C or SIGTERM: stop at the next step inside a collection
            interim = InterimCheckpoints(request, out / CHECKPOINTS, s.states, done, rollout, interim_every_s)
            model.learn(
                job.cfg.total_steps - done,
                callback=[*_callbacks(job, out, progress, s, done), interim],
                progress_bar=False,
                tb_log_name="ppo",
                reset_num_timesteps=s.point is None,
            )
        if interim.stopped:
            request.raise_it()  # not a finished agent: no agent.zip, no card
        drop_interim(out / CHECKPOINTS)  # only a resume needs them; the grid stays (a demonstrator's demos)
        wall = time.perf_counter() - t0
    finally:
        s.env.close()
    atomic_write(out / AGENT_FILE, lambda p: model.save(p), suffix=".zip")
    norm = s.env.get_norm_state() if isinstance(s.env, LearnedRewardVecEnv) and job.transform == "normalized" else None
    if norm is not None:
        write_json(out / NORM_FILE, norm)
    if online is not None:
        online.save(out / ONLINE_DIR)
    write_json(out / "card.json", _card(job, s, model, done, wall, norm, online))
    if request.signal is not None:  # it came during the last update: the run is whole, and now stops its caller
        request.raise_it()
    return out


def _card(
    job: PPOJob, s: _Session, model: PPO, done: int, wall: float, norm: Any, online: OnlineReward | None
) -> dict[str, Any]:
    prof = get_profile(job.profile)
    kl_cb = next((c for c in s.callbacks if isinstance(c, KLToReferenceCallback)), None)
    cfg = job.cfg
    return {
        "kind": "agent",
        "game": job.game,
        "profile": prof.name,
        "profile_settings": prof.settings(),
        "training_env": TRAINING_ENV,
        "reward": s.started["reward"],
        "budget": cfg.name,
        "config": dataclasses.asdict(cfg),
        "seed": job.seed,
        "steps": int(model.num_timesteps),
        "schedule_steps": cfg.horizon,
        "stopped": f"time cap ({cfg.max_seconds:g} s)" if model.num_timesteps < cfg.total_steps else "total steps",
        "resumed_from": done or None,
        "resume_seed": resume_seed(job.seed, done) if done else None,
        "wall_s": round(wall, 3),
        "steps_per_s": round((model.num_timesteps - done) / max(wall, 1e-9), 1),
        "device": str(job.device),
        "channels_last": _channels_last(job),
        "precision": s.precision,
        "precision_probe": s.precision_record,
        "reward_norm": norm,
        "kl_to": s.started["kl_to"],
        "kl_beta": s.started["kl_beta"],
        "kl_mean": None if kl_cb is None else kl_summary(kl_cb.kl_history, kl_cb.history_from or 0),
        "online_reward": None if online is None else online.card(),
        "versions": versions(),
    }


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
