"""RLHF-style KL penalty to a reference (behaviour-cloned) policy, added to PPO's reward.

Ziegler et al. 2019 and Ouyang et al. 2022 train the policy with PPO on::

    r̂_t = r_t − β · (log π_θ(a_t|s_t) − log π_0(a_t|s_t)),        a_t ~ π_θ(·|s_t)

whose expectation over a_t is r_t − β·KL(π_θ(·|s_t) ‖ π_0(·|s_t)): the per-step, single-sample estimate of
the KL to the SFT policy π_0 (here the behaviour clone of ``trex_bench.bc.train``). ``kl_penalty`` is that one line and
``KLToReferenceCallback`` applies it to every step of an SB3 rollout.

**Why in the reward and not in the loss.** Both papers put the term in the reward, and so does this module. In the
reward, the penalty is a cost the agent *pays in the future* too: GAE propagates it backwards, the value function
learns to predict it, and the policy is pushed away from states where it will have to diverge from π_0, not only
from divergent actions in the current state. A loss term β·KL(π_θ‖π_0)(s_t) would regularise each visited state
independently (a myopic, state-wise trust region, as in TRPO-style or "KL-regularised BC" objectives) and would
require editing SB3's ``PPO.train``; in the reward it is a post-processing of the rollout buffer through SB3's own
seam (a callback), and the PPO loss, clipping and value loss stay exactly SB3's. The price: the sample estimate is
computed with the *behaviour* policy's log-probs (the π_θ that acted, stored in the buffer), so within the update
epochs it is held fixed, as in the papers' implementations.

SB3's ``OnPolicyAlgorithm.collect_rollouts`` computes returns and advantages *before* it calls
``callback.on_rollout_end()``, so the callback recomputes them after editing the rewards, with the same last values
and dones (``self.locals["values"]``, ``self.locals["dones"]``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback

from trex_bench.core.errors import ConfigError
from trex_bench.core.games import get_game
from trex_bench.core.io import file_hash, read_json, write_json

__all__ = ["ReferencePolicy", "kl_penalty", "KLToReferenceCallback", "kl_reference", "KL_HISTORY_FILE"]

KL_HISTORY_FILE = "kl_history.json"  # in a checkpoint's state folder (``rl.checkpoints.CheckpointState``)

ArrayT = TypeVar("ArrayT", np.ndarray, torch.Tensor)


@runtime_checkable
class ReferencePolicy(Protocol):
    """A frozen reference policy π_0: anything that scores actions (``trex_bench.bc.train.BCPolicy`` is one).

    ``log_prob(obs, actions)`` takes uint8 stacks [N, 4, 84, 84] (numpy or torch) and action indices [N] of the
    env's action space, and returns log π_0(a|s) as a float tensor [N] (any device).
    """

    def log_prob(self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> torch.Tensor: ...


def kl_penalty(logp_theta: ArrayT, logp_ref: ArrayT, beta: float) -> ArrayT:
    """Per-step KL penalty β·(log π_θ(a|s) − log π_0(a|s)), to be *subtracted* from the reward.

    With a ~ π_θ(·|s) its expectation is β·KL(π_θ(·|s) ‖ π_0(·|s)) ≥ 0 (Ziegler et al. 2019 eq. 2;
    Ouyang et al. 2022 eq. 2); a single sample may be negative.

    Args:
        logp_theta: log π_θ(a_t|s_t) of the acting policy, any shape.
        logp_ref: log π_0(a_t|s_t) of the reference, same shape.
        beta: the KL coefficient β ≥ 0.

    Returns:
        β·(logp_theta − logp_ref), same type and shape.
    """
    return beta * (logp_theta - logp_ref)


class KLToReferenceCallback(BaseCallback):
    """SB3 callback: r_t ← r_t − β·(log π_θ(a_t|s_t) − log π_0(a_t|s_t)) for every step of each rollout.

    At ``_on_rollout_end`` (after SB3 computed GAE on the original rewards) it scores every (obs, action) of
    ``model.rollout_buffer`` under the reference in batches, subtracts ``kl_penalty`` using the buffer's stored
    ``log_probs`` (π_θ at rollout time, the behaviour policy), recomputes returns and advantages with the same last
    values and dones, and logs ``kl_to_bc/kl`` (mean of log π_θ − log π_0) and ``kl_to_bc/penalty``
    (mean β·that).

    Args:
        reference: the frozen π_0.
        beta: the KL coefficient β ≥ 0.
        batch_size: observations per reference forward pass.
        verbose: SB3 verbosity.

    Attributes:
        kl_history: mean per-step KL estimate of each rollout so far; saved beside each checkpoint and loaded when a
            run goes on from one (``save``/``load``), so a resumed run's card covers the whole run.
        history_from: the agent step the history begins at: 0, or the step a run resumed from when its checkpoint held
            no history (``None`` from ``load`` until training starts and that step is known).
    """

    def __init__(self, reference: ReferencePolicy, beta: float, batch_size: int = 256, verbose: int = 0) -> None:
        super().__init__(verbose)
        if not np.isfinite(beta) or beta < 0:
            raise ConfigError(f"the KL coefficient beta must be a finite number >= 0, got {beta}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not isinstance(reference, ReferencePolicy):
            raise TypeError(f"reference must have log_prob(obs, actions), got {type(reference).__name__}")
        self.reference, self.beta, self.batch_size = reference, float(beta), batch_size
        self.kl_history: list[float] = []
        self.history_from: int | None = 0

    def save(self, folder: Path) -> None:
        """Write ``kl_history`` into a checkpoint's state folder (called before the checkpoint is written)."""
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / KL_HISTORY_FILE, {"kl_history": self.kl_history, "history_from": self.history_from})

    def load(self, folder: Path) -> None:
        """Take the history ``save`` wrote beside the checkpoint a run goes on from. Without one (a checkpoint written
        before the history was kept), it begins again at the resume and ``history_from`` says so in the card."""
        path = folder / KL_HISTORY_FILE
        if path.is_file():
            saved = read_json(path)
            self.kl_history = [float(v) for v in saved["kl_history"]]
            self.history_from = int(saved.get("history_from", 0))
        else:
            self.kl_history, self.history_from = [], None

    def _on_training_start(self) -> None:
        if self.history_from is None:
            self.history_from = int(self.model.num_timesteps)

    def _on_step(self) -> bool:
        return True

    def reference_log_probs(self, buffer: RolloutBuffer) -> np.ndarray:
        """log π_0(a_t|s_t) float32 [n_steps, n_envs] for every step of ``buffer`` (no gradients)."""
        n_steps, n_envs = buffer.rewards.shape
        obs = buffer.observations.reshape(n_steps * n_envs, *buffer.obs_shape)
        actions = buffer.actions.reshape(n_steps * n_envs).astype(np.int64)  # Discrete: action_dim 1
        out = []
        with torch.no_grad():
            for i in range(0, len(obs), self.batch_size):
                lp = self.reference.log_prob(obs[i : i + self.batch_size], actions[i : i + self.batch_size])
                out.append(torch.as_tensor(lp).detach().float().cpu().reshape(-1).numpy())
        logp = np.concatenate(out)
        if logp.shape != (n_steps * n_envs,):
            raise ConfigError(f"reference.log_prob returned {logp.shape[0]} values for {n_steps * n_envs} steps")
        return logp.reshape(n_steps, n_envs)

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        logp_ref = self.reference_log_probs(buffer)
        log_ratio = buffer.log_probs - logp_ref  # per-step estimate of KL(π_θ ‖ π_0)
        penalty = kl_penalty(buffer.log_probs, logp_ref, self.beta).astype(np.float32)
        buffer.rewards -= penalty  # r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_0(a_t|s_t))
        # GAE was computed on r_t before this callback ran; redo it on r̂_t with the same bootstrap.
        buffer.compute_returns_and_advantage(last_values=self.locals["values"], dones=self.locals["dones"])
        kl = float(log_ratio.mean())
        self.kl_history.append(kl)
        self.logger.record("kl_to_bc/kl", kl)
        self.logger.record("kl_to_bc/penalty", float(penalty.mean()))


def kl_reference(
    kl_to: str | Path | ReferencePolicy, game: str, n_actions: int, device: str | torch.device = "cpu"
) -> tuple[ReferencePolicy, dict[str, Any]]:
    """Resolve the reference π_0 of the KL penalty and describe it for the card.

    Args:
        kl_to: a BC model folder (``trex_bench.bc.train.save_bc``) or any ``ReferencePolicy`` object (tests, custom
            references; its ``game``/``n_actions`` attributes are checked when it has them).
        game: canonical id of the game PPO trains on.
        n_actions: size of the env's action space.
        device: where a loaded BC net runs.

    Returns:
        ``(reference, description)``.

    Raises:
        ValueError: a missing folder, or a reference of another game or action-set size (naming both).
    """
    if isinstance(kl_to, (str, Path)):
        from trex_bench.bc.folder import load_bc  # lazily: only a KL run needs the BC module

        folder = Path(kl_to)
        if not folder.exists():
            raise ConfigError(f"kl_to must be a BC model folder; {folder} does not exist")
        ref = load_bc(folder, game=game, n_actions=n_actions, device=device, deterministic=True)
        card = read_json(folder / "card.json")
        return ref, {
            "source": "bc",
            "path": str(folder),
            "card_hash": file_hash(folder / "card.json"),
            "weights_hash": file_hash(folder / "model.safetensors"),
            "game": card.get("game"),
            "profile": card.get("profile"),
            "n_actions": card.get("n_actions"),
        }
    if not isinstance(kl_to, ReferencePolicy):
        raise ConfigError(f"kl_to must be a BC model folder or have log_prob(obs, actions); got {type(kl_to).__name__}")
    ref_game, ref_n = getattr(kl_to, "game", None), getattr(kl_to, "n_actions", None)
    if ref_game is not None and get_game(ref_game).id != game:
        raise ConfigError(f"the KL reference is a policy of {get_game(ref_game).id}, not {game}")
    if ref_n is not None and int(ref_n) != n_actions:
        raise ConfigError(f"the KL reference is a policy over {ref_n} actions, but this env has {n_actions}")
    desc = getattr(kl_to, "describe", None)
    return kl_to, {
        "source": "object",
        "path": None,
        "type": type(kl_to).__name__,
        "describe": desc() if callable(desc) else None,
        "game": ref_game,
        "n_actions": ref_n,
    }


def kl_summary(history: list[float], history_from: int = 0) -> dict[str, float | int]:
    """Mean per-step KL estimate (log π_θ − log π_0) over the first, last and all rollouts of a run (of those from
    agent step ``history_from`` on, where that is not 0)."""
    since = {"from_step": history_from} if history_from else {}
    if not history:
        return {"rollouts": 0, **since}
    return {
        **since,
        "rollouts": len(history),
        "first": round(history[0], 6),
        "last": round(history[-1], 6),
        "mean": round(sum(history) / len(history), 6),
    }
