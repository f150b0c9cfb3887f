"""Deep RL from human preferences (Christiano et al. 2017) as an ``OnlineReward``: PPO on a reward that keeps
learning from answers about clips of the agent's own, current play.

The roles are small objects, as in imitation's ``preference_comparisons``: the clip store and the query selection
(``reward.segments``, ``reward.pref_ensemble.select_queries``: the fragmenter), the labeler
(``reward.preferences.Labeler``: the preference gatherer), the ensemble (``PreferenceEnsemble``: the reward
trainer) and SB3's PPO (the agent trainer); a test swaps any of them for a fake.

* ``wrap(venv)`` → ``PreferenceRewardVecEnv``: records every step's reached frame, true reward and action in the
  store, keeps the true reward in ``info["true_reward"]`` and pays the normalised ensemble mean r̂ of the reached
  stack. Under PPO (the callback) the paying is deferred to the rollout's end: one batched forward pass per member
  over the whole rollout instead of one per step, written into PPO's buffer before its update.
* ``callback()`` → ``PreferenceReward.update`` at each rollout's end: score the rollout, fit the normalisation on it
  (zero mean, ``reward_std``; §2.2.1, A.2) and relabel PPO's buffer (rewards and advantages); ask the labels due by
  now (the first batch from the untrained policy, before PPO's first update), the most disputed of
  ``candidates_factor`` × as many random pairs of the newest clips; read new answers from ``labels.csv``; train
  each member on its bootstrap of the labels (``pretrain_epochs`` passes over the first labels, after which the
  rollout is scored again so that PPO's first update already sees the pretrained reward; then
  ``train_pairs_per_step`` pairs per agent step); log labels, accuracy and disagreement under ``prefs/``.
* ``save``/``load``: nets and Adam moments (safetensors), counters, bootstrap weights, normalisation and random
  states (JSON).

The loop's folder is a pairs folder in the project's one preference format (``reward.clip_pairs``,
``reward.labels``): ``pairs.json`` lists every query asked (two clip ids, the GIFs a person watches, the step,
P̂ and disagreement at asking), ``clips/`` holds each queried clip's data (``.npz``, what the nets train on) and,
when a person labels, its GIF, and ``labels.csv`` the answers. So ``trex-bench label serve RUN`` shows a person the
agent's own clips while PPO waits, and a killed or paused run resumes with every query and answer it had; all of
it is append-only and written whole.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.buffers import RolloutBuffer
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecEnv

from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.games import Game, get_game
from trex_bench.core.io import atomic_write, read_json, write_json
from trex_bench.reward.clip_pairs import ClipPair, frame_ms
from trex_bench.reward.labels import Label
from trex_bench.reward.pref_ensemble import (
    EnsembleNormalizer,
    LabelBuffer,
    PaidReward,
    PreferenceEnsemble,
    select_queries,
)
from trex_bench.reward.preferences import Labeler, QueryFolder, SyntheticLabeler
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.reward.segments import RolloutStore
from trex_bench.rl.preference_env import PreferenceCallback, PreferenceRewardVecEnv

__all__ = ["PreferenceReward", "load_paid_reward"]

STATE_SCHEMA = 1
_COUNTERS = ("version", "last_step", "pretrained", "n_asked", "n_used")


class PreferenceReward:
    """The online preference loop (``trex_bench.rl.online.OnlineReward``).

    Args:
        game: the game (its score rows are masked by the reward nets).
        cfg: the loop's settings.
        run_dir: the loop's pairs folder: ``pairs.json``, ``clips/`` and ``labels.csv`` (see the module).
        labeler: who answers (``HumanLabeler``, ``SyntheticLabeler``); None: the synthetic oracle with
            ``cfg.label_noise``.
        rng: all of the loop's randomness (net init, queries, bootstrap, minibatches).
        device: where the reward nets run.
        resume: go on from the queries and labels already in ``run_dir`` (otherwise a folder holding any is
            refused).

    Raises:
        ConfigError: queries or labels in ``run_dir`` without ``resume``.
        DataError: ``run_dir`` holds a pairs folder of a demo set or of another game, or labels naming clips that
            its ``pairs.json`` does not ask about.
    """

    name = "prefs"

    def __init__(
        self,
        game: Game | str,
        cfg: PrefsConfig,
        run_dir: str | Path,
        labeler: Labeler | None,
        rng: np.random.Generator,
        device: str | torch.device = "cpu",
        resume: bool = False,
    ) -> None:
        self.game = get_game(game) if isinstance(game, str) else game
        self.cfg, self.rng, self.run_dir = cfg, rng, Path(run_dir)
        self.labeler = labeler or SyntheticLabeler(cfg.label_noise, np.random.default_rng(rng.integers(2**62)))
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        self.ensemble = PreferenceEnsemble(self.game, cfg, generator, device)
        self.normalizer = EnsembleNormalizer(cfg.ensemble_size, cfg.reward_std)
        self.folder = QueryFolder(self.run_dir, self.game.id)
        self.labels_path, self.bank = self.folder.labels, self.folder.bank
        self.buffer = LabelBuffer(cfg.label_buffer, cfg.ensemble_size)
        self.store = RolloutStore(1, cfg.recent_steps, cfg.ensemble_size)  # replaced by wrap()
        self.env: PreferenceRewardVecEnv | None = None
        self.version, self.last_step, self.pretrained = 0, 0, False
        self.deferred = False  # the callback scores each rollout at its end (set when PPO starts)
        self.consumed: set[int] = set()
        self.n_used = 0
        self.outcomes: deque[bool] = deque(maxlen=cfg.accuracy_window)
        answered = self.folder.answers()  # checked now: a row naming a query never asked fails here, not later
        if (self.folder.queries or answered) and not resume:
            raise ConfigError(
                f"{self.run_dir} already holds preference queries or labels; resume to go on from "
                "them, or use a new folder"
            )
        self.n_asked = len(self.folder.queries)

    # -- OnlineReward ---------------------------------------------------------------------------------------------
    def wrap(self, venv: VecEnv) -> VecEnv:
        """``venv`` paying the learned reward (see ``PreferenceRewardVecEnv``)."""
        self.store = RolloutStore(venv.num_envs, self.cfg.recent_steps, self.cfg.ensemble_size)
        profile = getattr(venv, "profile", None)  # AtariVecEnv's; a GIF plays at the game's speed
        if profile is not None:
            self.bank.frame_ms = frame_ms(profile.frameskip)
        self.env = PreferenceRewardVecEnv(venv, self)
        return self.env

    def callback(self) -> BaseCallback:
        """The SB3 callback that asks, collects, trains and relabels at each rollout's end."""
        return PreferenceCallback(self)

    def grow(self, capacity: int) -> None:
        """Keep at least ``capacity`` frames per env (the callback asks for two rollouts' worth)."""
        self.store.ensure_capacity(capacity)
        if self.env is not None and self.env.step_log.maxlen < self.store.capacity:
            self.env.step_log = deque(self.env.step_log, maxlen=self.store.capacity)

    def update(
        self,
        step: int,
        rollout: RolloutBuffer | None = None,
        last_values: torch.Tensor | None = None,
        dones: np.ndarray | None = None,
    ) -> dict[str, float]:
        """One round at agent step ``step``: score and relabel the rollout just collected, ask the labels now due,
        wait for the first batch's answers (until the first training), collect answers, train; its metrics.
        ``rollout``: PPO's buffer of that rollout, relabelled in place.

        Raises:
            LabelsPending: the labeler gave up waiting for the first batch (the run pauses; see ``HumanLabeler``).
        """
        t0 = time.perf_counter()
        steps = [] if self.env is None else list(self.env.step_log)
        if rollout is not None:
            steps = steps[-rollout.buffer_size :]
        if self.env is not None:
            self.env.step_log.clear()
        metrics = self._pay(steps, rollout, last_values, dones)
        metrics.update(self._ask(step))
        if not self.pretrained and self.folder.queries:  # PPO's first update needs the first batch's answers
            self.labeler.wait(self.folder.first_batch(), self.labels_path)
        metrics.update(self._collect())
        first = not self.pretrained
        trained = self._train(step)
        metrics.update(trained)
        if trained:
            self.version += 1
            if first:  # PPO's first update already learns from the pretrained nets (App. A: pretraining)
                self._pay(steps, rollout, last_values, dones)
        self.bank.retain(self.buffer.clips())
        metrics.update(
            labels=float(self.n_used),
            labels_asked=float(self.n_asked),
            labels_due=float(self.cfg.labels_due(step)),
            accuracy=self.accuracy(),
            seconds=time.perf_counter() - t0,
        )
        return metrics

    def accuracy(self) -> float:
        """Share of the newest strict answers the ensemble predicted when it asked (held out: not yet trained on)."""
        return float(np.mean(self.outcomes)) if self.outcomes else math.nan

    # -- the round's steps ----------------------------------------------------------------------------------------
    def _ask(self, step: int) -> dict[str, float]:
        """Pose the queries due by ``step``: the most disputed of ``candidates_factor`` × as many random pairs."""
        n = self.cfg.labels_due(step) - self.n_asked
        if n < 1 or self.env is None:
            return {}
        length = self.cfg.segment_length
        picks = select_queries(self.store, length, n, self.cfg.candidates_factor, self.version, self.rng)
        new: list[ClipPair] = []
        for env_a, end_a, env_b, end_b, p_right, var in picks:
            left, right = self.store.clip(env_a, end_a, length), self.store.clip(env_b, end_b, length)
            files = [self.bank.put(c, animate=self.labeler.watches) for c in (left, right)]
            new.append(ClipPair(left.clip, right.clip, *files, step=int(step), p_right=p_right, disagreement=var))
        if not new:
            return {}
        self.n_asked += len(new)
        self.labeler.ask(self.folder.add(new), self.bank, self.labels_path)
        return {"asked": float(len(new)), "disagreement": float(np.mean([q.disagreement for q in new]))}

    def _collect(self) -> dict[str, float]:
        """Read answers not seen yet from ``labels.csv`` into the buffer; score the ensemble's predictions."""
        new = [lab for lab in self.folder.answers() if lab.pair not in self.consumed]  # a pair's first answer stands
        self.consumed |= {lab.pair for lab in new}
        usable = [lab for lab in new if lab.target is not None]
        for lab in usable:  # fails loudly, naming the file, when a labelled clip is missing
            self.bank.get(lab.left)
            self.bank.get(lab.right)
        for lab in usable:
            q = self.folder.queries[lab.pair]
            if lab.answer != "equal" and not math.isnan(q.p_right):
                self.outcomes.append((q.p_right > 0.5) == (lab.answer == "right"))
        self.buffer.add(usable, self.rng)
        self.n_used += len(usable)
        return {"answered": float(len(new))}

    def _train(self, step: int) -> dict[str, float]:
        """``pretrain_epochs`` passes over the first labels, then ``train_pairs_per_step`` pairs per agent step."""
        gap, self.last_step = step - self.last_step, step
        if not len(self.buffer):
            return {}
        if self.pretrained:
            pairs = math.ceil(self.cfg.train_pairs_per_step * gap)
        else:
            pairs, self.pretrained = math.ceil(self.cfg.pretrain_epochs * len(self.buffer)), True
        return self.ensemble.train(self.buffer, self.bank, pairs, self.rng)

    def _pay(
        self,
        steps: list[tuple[np.ndarray, np.ndarray]],
        rollout: RolloutBuffer | None,
        last_values: torch.Tensor | None,
        dones: np.ndarray | None,
    ) -> dict[str, float]:
        """Score the rollout's reached stacks with the current nets (those not scored yet), re-fit the normalisation
        on them (zero mean, ``reward_std``) and write the paid reward into PPO's buffer (rewards and advantages)."""
        if not steps:
            return {}
        heads = np.stack([h for h, _ in steps])  # [T, E]
        env = np.broadcast_to(np.arange(heads.shape[1]), heads.shape).ravel()
        h = heads.ravel()
        if not self.store.stored(env, h).all():
            raise RuntimeError(f"the clip store ({self.store.capacity} frames per env) no longer holds the rollout")
        stale = self.store.version[env, h % self.store.capacity] != self.version
        if stale.any():
            self.store.update(
                env[stale], h[stale], self.ensemble.score(self.store.stacks(env[stale], h[stale])), self.version
            )
        rhat = self.store.rhat[:, env, h % self.store.capacity]
        self.normalizer.fit(rhat)
        new = self.normalizer(rhat).reshape(heads.shape)
        if rollout is not None:
            if rollout.rewards.shape != heads.shape:
                raise RuntimeError(f"the reward wrapper saw {heads.shape} steps of a {rollout.rewards.shape} rollout")
            rollout.rewards += new - np.stack([p for _, p in steps])  # keeps SB3's time-limit bootstrap term
            rollout.compute_returns_and_advantage(last_values=last_values, dones=dones)
        for (_, paid), row in zip(steps, new, strict=True):
            paid[:] = row
        return {"rhat_mean": float(rhat.mean()), "rhat_std": float(rhat.std()), "scored": float(stale.sum())}

    # -- state ---------------------------------------------------------------------------------------------------
    def save(self, folder: Path) -> None:
        """Write nets + Adam moments (``ensemble.safetensors``) and counters (``state.json``) into ``folder``."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        tensors = self.ensemble.tensors()
        atomic_write(folder / "ensemble.safetensors", lambda p: save_file(tensors, str(p)), suffix=".safetensors")
        state: dict[str, Any] = {name: getattr(self, name) for name in _COUNTERS}
        state.update(kind="prefs-state", schema_version=STATE_SCHEMA, game=self.game.id)
        state.update(config=dataclasses.asdict(self.cfg), consumed=sorted(self.consumed), outcomes=list(self.outcomes))
        state.update(buffer=dict(pairs=[lab.pair for lab in self.buffer.labels], weights=self.buffer.weights.tolist()))
        state.update(normalizer=self.normalizer.state(), rng=self.rng.bit_generator.state, labeler=self.labeler.state())
        write_json(folder / "state.json", state)

    def load(self, folder: Path) -> None:
        """Restore what ``save`` wrote, with the labels from ``labels.csv`` (DataError naming what is wrong)."""
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        folder = Path(folder)
        state = _read_state(folder, self.game, self.cfg)
        try:
            self.ensemble.load_tensors(load_file(str(folder / "ensemble.safetensors")))
            rows = {lab.pair: lab for lab in self.folder.answers()}
            labels: list[Label] = [rows[p] for p in state["buffer"]["pairs"]]
            weights = np.asarray(state["buffer"]["weights"], dtype=np.int64).reshape(self.cfg.ensemble_size, -1)
            self.normalizer.restore(state["normalizer"])
            self.rng.bit_generator.state = state["rng"]
        except (SafetensorError, RuntimeError, KeyError, ValueError, TypeError) as e:
            raise DataError(f"{folder}: cannot restore the preference loop ({type(e).__name__}: {e})") from e
        self.buffer = LabelBuffer(self.cfg.label_buffer, self.cfg.ensemble_size)
        self.buffer.add(labels, self.rng, weights=weights)
        for lab in labels:
            self.bank.get(lab.left)
            self.bank.get(lab.right)
        n_asked = self.n_asked
        for name in _COUNTERS:
            setattr(self, name, state[name])
        self.n_asked = max(n_asked, self.n_asked)  # queries asked after the checkpoint keep their numbers
        self.consumed = set(state["consumed"])
        self.outcomes = deque(state["outcomes"], maxlen=self.cfg.accuracy_window)
        self.labeler.restore(state["labeler"])

    def card(self) -> dict[str, Any]:
        """Facts for the agent card: labels asked/used, held-out accuracy, the config."""
        accuracy = None if not self.outcomes else round(self.accuracy(), 4)
        out = dict(method="prefs", labeler=self.labeler.name, label_noise=getattr(self.labeler, "label_noise", None))
        out.update(labels_asked=self.n_asked, labels_answered=len(self.consumed), labels_used=self.n_used)
        out.update(labels_in_buffer=len(self.buffer), accuracy=accuracy, accuracy_n=len(self.outcomes))
        # The pairs folder by name: the card sits beside it, and the stage folder that held both is renamed when done.
        out.update(reward_updates=self.version, pairs=self.run_dir.name, config=dataclasses.asdict(self.cfg))
        return out


def _read_state(folder: Path, game: Game, cfg: PrefsConfig) -> dict[str, Any]:
    """``state.json`` of a loop state that ``PreferenceReward.save`` wrote into ``folder`` for ``game`` and ``cfg``."""
    for name in ("state.json", "ensemble.safetensors"):
        if not (folder / name).exists():
            raise DataError(f"{folder}: not a preference-loop state ({name} is missing)")
    state = read_json(folder / "state.json")
    if not isinstance(state, dict) or state.get("kind") != "prefs-state" or state.get("schema_version") != 1:
        raise DataError(f"{folder}/state.json is not a preference-loop state of schema {STATE_SCHEMA}")
    if state.get("config") != dataclasses.asdict(cfg) or state.get("game") != game.id:
        raise ConfigError(f"{folder} was saved by a preference loop with another game or config")
    return state


def load_paid_reward(folder: str | Path, game: Game | str, cfg: PrefsConfig) -> PaidReward:
    """The reward a loop saved in ``folder`` paid PPO (its nets and normalisation), to score like any reward net.

    Raises:
        DataError: ``folder`` holds no loop state, or one that cannot be read.
        ConfigError: the state was saved for another game or loop config.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder, game = Path(folder), get_game(game) if isinstance(game, str) else game
    state = _read_state(folder, game, cfg)
    ensemble = PreferenceEnsemble(game, cfg, torch.Generator().manual_seed(0))
    normalizer = EnsembleNormalizer(cfg.ensemble_size, cfg.reward_std)
    try:
        ensemble.load_tensors(load_file(str(folder / "ensemble.safetensors")))
        normalizer.restore(state["normalizer"])
    except (SafetensorError, RuntimeError, KeyError, ValueError, TypeError) as e:
        raise DataError(f"{folder}: cannot restore the preference loop's reward ({type(e).__name__}: {e})") from e
    return PaidReward(game, ensemble, normalizer)
