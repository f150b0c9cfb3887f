"""GAIL (Ho & Ermon 2016), the IRL baseline of T-REX's Table 1: a discriminator reward + SB3 PPO, alternating.

imitation's ``AdversarialTrainer`` in three small parts, behind ``trex_bench.rl.online.OnlineReward``:

* ``GAILRewardVecEnv`` pays PPO r(s_t, a_t) = softplus(logit D(s_t, a_t)) (``rl.discriminator.gail_reward``) for all
  envs in one forward pass. The action of step t belongs with observation t, the one it was taken on, so the
  wrapper keeps the observation it last returned and pairs it with the actions of ``step_async``; the observation
  ``step_wait`` returns is the next one's (for an env whose game just ended, the next game's first stack, which is
  also the stack SB3's rollout buffer pairs with the next action). True reward in ``info["true_reward"]``.
* ``GAILCallback`` trains D at the end of every PPO rollout, on the (s, a) pairs SB3's rollout buffer just stored.
* ``GAILReward`` owns D, its Adam optimiser, the demo (s, a) pairs and the held-out split; it saves and loads them
  (safetensors + JSON) and reports what it learned.

Demo pairs: episode e's observation t (t = 0 is the reset observation; ``FrameCache.stacks``) with
``episode.actions[t]``, the action the demonstrator chose on it (``demos.collect`` records ``act(obs)`` then steps),
for t < the episode's length; its last observation has no action and is left out.

Each rollout, before D trains on it, its held-out accuracy is measured: a fixed held-out slice of demo pairs
(whole chunks, never trained on) against the rollout's pairs (not yet trained on) — both sides unseen. Everything
is logged under ``gail/`` in SB3's logger (TensorBoard).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.games import Game, get_game
from trex_bench.core.io import read_json, write_json
from trex_bench.core.training import default_init_
from trex_bench.core.types import DemoSet
from trex_bench.demos.frames import gather_stacks
from trex_bench.reward.bradley_terry import FrameSource
from trex_bench.rl.discriminator import (
    Discriminator,
    discriminator_loss,
    gail_reward,
    load_optimizer,
    load_tensors,
    optimizer_tensors,
    save_tensors,
)
from trex_bench.rl.gail_config import GAILConfig
from trex_bench.rl.wrappers import RewardReplacer

__all__ = ["GAILConfig", "GAILReward", "GAILRewardVecEnv", "GAILCallback", "demo_pairs"]

STATE_SCHEMA = 1


def demo_pairs(demos: DemoSet) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(episode, observation, action) int64 [N] of every demo step: observation t with ``actions[t]``, t < length."""
    lengths = demos.lengths
    ep = np.repeat(np.arange(len(lengths)), lengths)
    t = np.arange(len(ep)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    actions = np.concatenate([e.actions for e in demos.episodes]).astype(np.int64)
    return ep, t, actions


class GAILRewardVecEnv(RewardReplacer):
    """PPO's reward r(s_t, a_t) = softplus(logit D(s_t, a_t)) for every env in one batched forward pass.

    ``info["discriminator_logit"]`` holds each step's logit. A FIRE the training env forces after a lost life is
    scored with the action the policy chose, as the rollout buffer (and so D's training data) records it.
    """

    def __init__(self, venv: VecEnv, disc: Discriminator, device: str | torch.device = "cpu") -> None:
        super().__init__(venv)
        self.disc, self.device = disc, torch.device(device)
        self._obs: np.ndarray | None = None  # the observation each env's next action is taken on
        self._actions = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self) -> np.ndarray:  # noqa: D102
        self._obs = self.venv.reset()
        return self._obs

    def step_async(self, actions: np.ndarray) -> None:  # noqa: D102
        self._actions = np.asarray(actions, dtype=np.int64).reshape(self.num_envs).copy()
        self.venv.step_async(actions)

    @torch.no_grad()
    def _reward(self, obs, true_r, dones, infos):  # noqa: D102
        if self._obs is None:
            raise RuntimeError("reset() the env before stepping it")
        taken_on = torch.as_tensor(self._obs, device=self.device)
        logits = self.disc(taken_on, torch.as_tensor(self._actions, device=self.device)).float().cpu()
        self._obs = obs  # after a game over: the next game's first stack, where the next action is taken
        for i, info in enumerate(infos):
            info["discriminator_logit"] = float(logits[i])
        return gail_reward(logits).numpy().astype(np.float32)


class GAILCallback(BaseCallback):
    """Trains the discriminator on each rollout's (s, a) pairs at ``_on_rollout_end``; logs ``gail/*``."""

    def __init__(self, gail: GAILReward) -> None:
        super().__init__()
        self.gail = gail

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        buffer = self.model.rollout_buffer
        obs = buffer.observations.reshape(-1, *buffer.obs_shape)
        actions = buffer.actions.reshape(-1).astype(np.int64)  # Discrete: one action per step
        for key, value in self.gail.update(obs, actions).items():
            self.logger.record(f"gail/{key}", value)


class GAILReward:
    """GAIL as an ``OnlineReward``: discriminator, optimiser, demo pairs and held-out split of one run.

    Args:
        game: the game (its mask; the action set's size comes from the demo set's env profile).
        demos: the expert demonstrations.
        frames: their replayed frames (a ``FrameCache`` of ``demos``, or any ``reward.train.FrameSource``).
        cfg: the discriminator's settings.
        rng: draws D's initial weights, the held-out split and every minibatch; its state is saved with the rest.
        device: where D trains and scores.
        n_actions: the action set's size (None: read from ALE for the demo set's profile).
    """

    name = "gail"

    def __init__(
        self,
        game: Game | str,
        demos: DemoSet,
        frames: FrameSource,
        cfg: GAILConfig,
        rng: np.random.Generator,
        device: str | torch.device = "cpu",
        n_actions: int | None = None,
    ) -> None:
        self.game = get_game(game) if isinstance(game, str) else game
        if demos.game != self.game.id:
            raise ConfigError(f"the demo set is of {demos.game}, not {self.game.id}")
        if n_actions is None:
            from trex_bench.bc.train import action_set

            n_actions = len(action_set(self.game.id, demos.profile))
        self.cfg, self.rng, self.frames, self.n_actions = cfg, rng, frames, int(n_actions)
        self.demos_hash = demos.content_hash()
        self.ep, self.t, self.actions = demo_pairs(demos)
        if np.any(self.actions >= self.n_actions):
            raise DataError(f"the demo set plays actions outside {self.game.id}'s {self.n_actions}")
        self.train_index, self.heldout_index = self._split()
        self.device = torch.device(device)
        disc = Discriminator(self.game, 0 if cfg.state_only else self.n_actions, cfg.arch)
        default_init_(disc, torch.Generator().manual_seed(int(rng.integers(2**63 - 1))))
        if self.device.type == "cpu":  # NHWC convolutions, as the PPO policy and LearnedRewardVecEnv on CPU
            disc = disc.to(memory_format=torch.channels_last)
        self.disc = disc.to(self.device)
        self.opt = torch.optim.Adam(self.disc.parameters(), lr=cfg.learning_rate)
        self.rollouts, self.steps, self.history = 0, 0, []  # history: held-out accuracy of each rollout
        self.last: dict[str, float] = {}

    def _split(self) -> tuple[np.ndarray, np.ndarray]:
        """Train and held-out pair indices: whole chunks of ``heldout_chunk`` steps held out; a fixed subsample of
        at most ``heldout_size`` of the held-out pairs is what the accuracy scores."""
        chunk = self.ep * (int(self.t.max()) // self.cfg.heldout_chunk + 1) + self.t // self.cfg.heldout_chunk
        ids, of_pair = np.unique(chunk, return_inverse=True)
        if len(ids) < 2:
            raise DataError(f"the demo set is too short to hold out a chunk of {self.cfg.heldout_chunk} steps")
        n_hold = min(max(1, round(self.cfg.heldout_fraction * len(ids))), len(ids) - 1)
        held = np.isin(of_pair, self.rng.choice(len(ids), n_hold, replace=False))
        heldout = np.flatnonzero(held)
        keep = self.rng.choice(len(heldout), min(len(heldout), self.cfg.heldout_size), replace=False)
        return np.flatnonzero(~held), np.sort(heldout[keep])

    # -- the OnlineReward protocol ------------------------------------------------------------------------------
    def wrap(self, venv: VecEnv) -> VecEnv:
        """``venv`` paying r(s, a) = softplus(logit D(s, a)) (``GAILRewardVecEnv``)."""
        if getattr(venv.action_space, "n", None) != self.n_actions:
            raise ConfigError(f"the env has {venv.action_space} actions, the discriminator {self.n_actions}")
        return GAILRewardVecEnv(venv, self.disc, self.device)

    def callback(self) -> BaseCallback:
        """Trains D after every PPO rollout (``GAILCallback``)."""
        return GAILCallback(self)

    # -- learning -----------------------------------------------------------------------------------------------
    def _logits(self, stacks: np.ndarray, actions: np.ndarray) -> torch.Tensor:
        return self.disc(torch.as_tensor(stacks, device=self.device), torch.as_tensor(actions, device=self.device))

    def demo_batch(self, index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Demo stacks uint8 [n, 4, 84, 84] and actions [n] of pair indices ``index``."""
        return gather_stacks(self.frames.frames, self.frames.stack_index(self.ep[index], self.t[index])), self.actions[
            index
        ]

    def update(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, float]:
        """One round for D on a rollout's pairs (uint8 [N, 4, 84, 84], actions [N]): held-out accuracy, then train."""
        stats = self.evaluate(obs, actions)
        stats.update(self._train(obs, actions))
        self.rollouts += 1
        self.history.append(stats["heldout_acc"])
        self.last = stats
        return stats

    @torch.no_grad()
    def evaluate(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, float]:
        """Held-out accuracy of D (held-out demo pairs vs a sample of these policy pairs) and the mean reward each
        side would be paid; draws the policy sample from ``rng``."""
        pick = self.rng.choice(len(obs), min(len(obs), self.cfg.heldout_size), replace=False)
        expert = self._logits(*self.demo_batch(self.heldout_index)).float()
        policy = self._logits(obs[pick], actions[pick]).float()
        acc_e, acc_p = float((expert > 0).float().mean()), float((policy < 0).float().mean())
        return {
            "heldout_acc": (acc_e + acc_p) / 2,  # balanced: a constant guess scores ½ whatever the two sides' sizes
            "heldout_acc_expert": acc_e,
            "heldout_acc_policy": acc_p,
            "reward_expert": float(gail_reward(expert).mean()),
            "reward_policy": float(gail_reward(policy).mean()),
            # a collapsing D pays the policy nothing: the share of its pairs paid under 0.01 shows it in TensorBoard
            "reward_policy_vanished": float((gail_reward(policy) < 0.01).float().mean()),
        }

    def _train(self, obs: np.ndarray, actions: np.ndarray) -> dict[str, float]:
        """``cfg.epochs`` passes over the policy pairs, each minibatch half policy, half random demo pairs."""
        half = self.cfg.batch_size // 2
        losses, correct, seen = [], 0, 0
        for _ in range(self.cfg.epochs):
            order = self.rng.permutation(len(obs))
            for start in range(0, len(obs), half):
                pol = order[start : start + half]
                stacks, acts = self.demo_batch(self.rng.choice(self.train_index, len(pol)))
                expert = torch.cat([torch.ones(len(pol)), torch.zeros(len(pol))]).to(self.device)
                logits = self._logits(np.concatenate([stacks, obs[pol]]), np.concatenate([acts, actions[pol]]))
                loss = discriminator_loss(logits, expert, self.cfg.label_smoothing)
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.steps += 1
                losses.append(loss.item())
                correct += int(((logits.detach() > 0).float() == expert).sum())
                seen += len(expert)
        return {"disc_loss": float(np.mean(losses)), "disc_acc": correct / seen, "disc_steps": float(self.steps)}

    # -- state on disk ------------------------------------------------------------------------------------------
    def _fingerprint(self) -> dict[str, Any]:
        """What a saved state must match to be loaded here: settings, demo set and held-out split."""
        split = hashlib.sha256(self.train_index.tobytes() + self.heldout_index.tobytes()).hexdigest()[:16]
        return {
            "config": dataclasses.asdict(self.cfg),
            "demos_hash": self.demos_hash,
            "split_hash": split,
            "n_actions": self.n_actions,
        }

    def save(self, folder: Path) -> None:
        """``discriminator.safetensors``, ``optimizer.safetensors`` and ``state.json`` (counters, rng, checks)."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        save_tensors(folder / "discriminator.safetensors", self.disc.state_dict())
        tensors, groups = optimizer_tensors(self.opt)
        save_tensors(folder / "optimizer.safetensors", tensors)
        state = {"kind": "gail_state", "schema_version": STATE_SCHEMA, **self._fingerprint(), "param_groups": groups}
        state.update(rollouts=self.rollouts, steps=self.steps, history=self.history, last=self.last)
        state["rng"] = self.rng.bit_generator.state
        write_json(folder / "state.json", state)  # written last: a folder with a state.json is complete

    def load(self, folder: Path) -> None:
        """Restore what ``save`` wrote; ``DataError`` naming ``folder`` when it is missing, corrupt or another run's."""
        folder = Path(folder)
        if not (folder / "state.json").is_file():
            raise DataError(f"{folder}: no GAIL state (state.json is missing)")
        try:
            state = read_json(folder / "state.json")
        except ValueError as e:
            raise DataError(f"{folder}/state.json: {e}") from e
        if not isinstance(state, dict) or state.get("kind") != "gail_state":
            raise DataError(f"{folder}/state.json is not a GAIL state")
        mine = self._fingerprint()
        for key, value in mine.items():
            if state.get(key) != value:
                raise DataError(f"{folder}: saved by a GAIL run with another {key} ({state.get(key)!r}, not {value!r})")
        try:
            self.disc.load_state_dict(load_tensors(folder / "discriminator.safetensors"))
            load_optimizer(self.opt, load_tensors(folder / "optimizer.safetensors"), state["param_groups"])
            self.rng.bit_generator.state = state["rng"]
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise DataError(f"{folder}: GAIL state does not fit this discriminator ({e})") from e
        self.rollouts, self.steps = int(state["rollouts"]), int(state["steps"])
        self.history, self.last = list(state["history"]), dict(state["last"])

    def card(self) -> dict[str, Any]:
        """JSON-able facts for the agent card: settings, data, rounds and the held-out accuracy's course."""
        h = self.history
        return {
            "method": "gail",
            "reward": "softplus(logit D(s, a)) = -log(1 - D(s, a))",
            **self._fingerprint(),
            "train_pairs": len(self.train_index),
            "heldout_pairs": len(self.heldout_index),
            "rollouts": self.rollouts,
            "disc_steps": self.steps,
            "heldout_acc": {"first": h[0], "last": h[-1], "mean": float(np.mean(h))} if h else None,
            "last": self.last,
        }
