"""Behaviour cloning: the D-REX demonstrator clone, and the RLHF "SFT" policy π_0 of the KL penalty.

A Nature-DQN CNN (Mnih et al. 2015) classifies a frame stack into action logits and is trained with cross-entropy
on the (observation t, action t) pairs of a demo set (D-REX §4, PAPERS.md: Adam lr 1e-4, batch 32, early stopping
on a held-out split)::

    uint8 [N,4,84,84] /255 → Conv(4→32, 8, s4) → Conv(32→64, 4, s2) → Conv(64→64, 3, s1)
                           → Linear(3136→512) → Linear(512→A)

with ReLU between layers. Two bugs of the released D-REX code are avoided on purpose:

* its final save overwrote the best (early-stopped) checkpoint, so the released clone is the *last* one; here the
  weights of the best validation loss are the ones returned and saved;
* it acted with the argmax *index* over a reduced action set as if it were an env action; here actions are indices
  into the game's minimal action set from the demo file to the logits to ``act`` (the env's action space), and the
  model card records the action meanings so a model of another action set is refused on load.

The held-out split is by *episode*: frames of one episode are strongly correlated, so a split by frame would
measure memorisation, not generalisation, and early stopping would never trigger.
"""

from __future__ import annotations

import copy
import math
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trex_bench.bc.config import BCConfig
from trex_bench.core.errors import ConfigError
from trex_bench.core.io import finite_or_none
from trex_bench.core.training import StopRule, default_init_
from trex_bench.core.types import DemoSet

__all__ = [
    "BCConfig",
    "BCNet",
    "BCPolicy",
    "StackSource",
    "action_set",
    "train_bc",
    "evaluate_bc",
]


class StackSource(Protocol):
    """What BC needs from a frame cache: observation stacks by (episode, step) (``demos.frames.FrameCache``)."""

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray: ...


def action_set(game: str, profile: str = "paper") -> list[str]:
    """Names of the actions the env of ``game`` under ``profile`` exposes, in index order (e.g. NOOP FIRE RIGHT LEFT).

    Read from ALE itself, so the names and their order are exactly those of ``make_vec_env``'s action indices.
    """
    import ale_py
    from ale_py import ALEInterface, roms

    from trex_bench.core.envs import get_profile
    from trex_bench.core.games import get_game

    ale = ALEInterface()
    ale.setLoggerMode(ale_py.LoggerMode.Error)
    ale.loadROM(roms.get_rom_path(get_game(game).ale_id))
    acts = ale.getLegalActionSet() if get_profile(profile).full_action_space else ale.getMinimalActionSet()
    return [a.name for a in acts]


class BCNet(nn.Module):
    """Nature-DQN CNN (Mnih et al. 2015): uint8 stacks [N, 4, 84, 84] → action logits [N, n_actions]."""

    def __init__(self, n_actions: int) -> None:
        super().__init__()
        if n_actions < 2:
            raise ConfigError(f"BCNet needs >= 2 actions, got {n_actions}")
        self.n_actions = n_actions
        self.conv1 = nn.Conv2d(4, 32, 8, stride=4)
        self.conv2 = nn.Conv2d(32, 64, 4, stride=2)
        self.conv3 = nn.Conv2d(64, 64, 3, stride=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 512)
        self.fc2 = nn.Linear(512, n_actions)

    def forward(self, stacks: torch.Tensor) -> torch.Tensor:
        """Logits float [N, A] of uint8 (or float 0–255) stacks."""
        x = stacks.float() / 255.0
        if self.conv1.weight.is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)
        x = F.relu(self.conv1(x))
        x = F.relu(self.conv2(x))
        x = F.relu(self.conv3(x))
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def init_bc_net(n_actions: int, generator: torch.Generator) -> BCNet:
    """A BCNet initialised like PyTorch's default (Kaiming-uniform, a=√5) but from ``generator``, not global RNG."""
    net = BCNet(n_actions)
    default_init_(net, generator)
    return net


class BCPolicy:
    """A cloned policy: a ``Demonstrator`` (``act``/``describe``) plus ``log_prob`` for a KL penalty to it.

    Args:
        net: the trained classifier (put in eval mode here).
        game: canonical game id.
        action_meanings: names of the action indices (len = the net's outputs), or None when unknown.
        rng: draws the sampled actions (needed unless ``deterministic``).
        device: where the net runs.
        deterministic: act by argmax instead of sampling from the softmax.
        source: where it was loaded from (for ``describe``).
    """

    def __init__(
        self,
        net: BCNet,
        game: str,
        action_meanings: list[str] | None = None,
        rng: np.random.Generator | None = None,
        device: str | torch.device = "cpu",
        deterministic: bool = False,
        source: str | None = None,
    ) -> None:
        if action_meanings is not None and len(action_meanings) != net.n_actions:
            raise ConfigError(f"{len(action_meanings)} action meanings for a net of {net.n_actions} actions")
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.game, self.action_meanings, self.rng = game, action_meanings, rng
        self.deterministic, self.source = deterministic, source

    @property
    def n_actions(self) -> int:
        """Size of the action set the policy acts in."""
        return self.net.n_actions

    def _as_tensor(self, obs: np.ndarray | torch.Tensor) -> torch.Tensor:
        obs = torch.as_tensor(obs)
        if obs.ndim != 4 or tuple(obs.shape[1:]) != (4, 84, 84):
            raise ConfigError(f"expected observations [N, 4, 84, 84], got {tuple(obs.shape)}")
        return obs.to(self.device)

    @torch.no_grad()
    def log_probs(self, obs: np.ndarray | torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        """log π_0(·|s): float [N, A] on the policy's device, without gradients (π_0 is a frozen reference)."""
        obs = self._as_tensor(obs)
        out = [F.log_softmax(self.net(obs[i : i + batch_size]), dim=1) for i in range(0, len(obs), batch_size)]
        return torch.cat(out) if out else torch.zeros(0, self.n_actions, device=self.device)

    def log_prob(self, obs: np.ndarray | torch.Tensor, actions: np.ndarray | torch.Tensor) -> torch.Tensor:
        """log π_0(a|s): float [N] for action indices [N] (the per-step term of the RLHF KL estimate)."""
        a = torch.as_tensor(actions, device=self.device).long().reshape(-1)
        lp = self.log_probs(obs)
        if len(a) != len(lp):
            raise ConfigError(f"{len(a)} actions for {len(lp)} observations")
        if len(a) and (int(a.min()) < 0 or int(a.max()) >= self.n_actions):
            raise ConfigError(
                f"actions must be indices in [0, {self.n_actions}), got {a.min().item()}..{a.max().item()}"
            )
        return lp.gather(1, a[:, None]).squeeze(1)

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions int64 [N]: argmax when deterministic, else a draw from softmax(logits) with ``rng``."""
        lp = self.log_probs(obs)
        if self.deterministic:
            return lp.argmax(1).cpu().numpy().astype(np.int64)
        if self.rng is None:
            raise ConfigError("a sampling BCPolicy needs an rng (or deterministic=True)")
        cdf = lp.exp().cumsum(1).cpu().numpy()
        u = self.rng.random(len(cdf)) * cdf[:, -1]  # scale by the total so rounding never picks index A
        return np.minimum((cdf < u[:, None]).sum(1), self.n_actions - 1).astype(np.int64)

    def describe(self) -> str:
        """One line for a demo-set manifest."""
        mode = "argmax" if self.deterministic else "sample"
        return f"bc:{self.source} ({mode})" if self.source else f"bc({self.game}, {self.n_actions} actions, {mode})"


def _pairs(demos: DemoSet, episodes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(episode, step, action) of every step t < T of ``episodes``: observation t and the action taken at it."""
    ep = np.concatenate([np.full(demos.episodes[e].length, e, np.int64) for e in episodes])
    t = np.concatenate([np.arange(demos.episodes[e].length, dtype=np.int64) for e in episodes])
    a = np.concatenate([demos.episodes[e].actions.astype(np.int64) for e in episodes])
    return ep, t, a


@torch.no_grad()
def _score(
    net: nn.Module,
    source: StackSource,
    ep: np.ndarray,
    t: np.ndarray,
    a: np.ndarray,
    device: torch.device,
    chunk: int = 256,
) -> tuple[float, float]:
    """(accuracy of the argmax, mean cross-entropy) of ``net`` on the pairs."""
    was_training = net.training
    net.eval()
    correct, loss = 0.0, 0.0
    for i in range(0, len(ep), chunk):
        x = torch.from_numpy(source.stacks(ep[i : i + chunk], t[i : i + chunk])).to(device)
        y = torch.from_numpy(a[i : i + chunk]).to(device)
        logits = net(x)
        loss += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += float((logits.argmax(1) == y).sum())
    net.train(was_training)
    n = max(len(ep), 1)
    return correct / n, loss / n


def evaluate_bc(
    policy: BCPolicy, source: StackSource, demos: DemoSet, episodes: list[int] | np.ndarray | None = None
) -> dict[str, float]:
    """Accuracy (argmax vs the recorded action) and mean cross-entropy of ``policy`` on episodes of ``demos``."""
    episodes = np.arange(len(demos.episodes)) if episodes is None else np.asarray(episodes, np.int64)
    acc, loss = _score(policy.net, source, *_pairs(demos, episodes), policy.device)
    return dict(accuracy=acc, loss=loss)


Pairs = tuple[np.ndarray, np.ndarray, np.ndarray]


def _split(demos: DemoSet, cfg: BCConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, Pairs, Pairs]:
    """The held-out split by episode: (train episodes, validation episodes, their (episode, step, action) pairs);
    at most ``cfg.max_val_samples`` validation pairs, a fixed random subset."""
    order = rng.permutation(len(demos.episodes))
    n_val = max(1, round(cfg.val_frac * len(order)))
    val_eps, train_eps = np.sort(order[:n_val]), np.sort(order[n_val:])
    tr_ep, tr_t, tr_a = _pairs(demos, train_eps)
    va_ep, va_t, va_a = _pairs(demos, val_eps)
    if len(va_ep) > cfg.max_val_samples:
        keep = np.sort(rng.choice(len(va_ep), cfg.max_val_samples, replace=False))
        va_ep, va_t, va_a = va_ep[keep], va_t[keep], va_a[keep]
    return train_eps, val_eps, (tr_ep, tr_t, tr_a), (va_ep, va_t, va_a)


def _action_meanings(demos: DemoSet, given: list[str] | None) -> list[str]:
    """The env's action names (read from ALE unless given), refusing a recorded action outside them."""
    meanings = given if given is not None else action_set(demos.game, demos.profile)
    top = max(int(e.actions.max()) for e in demos.episodes)
    if top >= len(meanings):
        raise ConfigError(
            f"demo action {top} is outside the {len(meanings)}-action set of {demos.game} ({', '.join(meanings)})"
        )
    return meanings


class _BestWeights:
    """Validation checks of a BC run: the log of every check and a copy of the weights of the lowest validation
    loss, restored at the end (the released D-REX code saved the *final* weights over its best checkpoint, silently
    undoing its own early stopping)."""

    def __init__(self, net: nn.Module, cache: StackSource, val: Pairs, rule: StopRule, device: torch.device) -> None:
        self.net, self.cache, self.val, self.rule, self.device = net, cache, val, rule, device
        self.loss, self.acc, self.step, self.state = math.inf, float("nan"), 0, None
        self.log: list[dict[str, float]] = []
        self.train_loss = float("nan")

    def check(self, step: int) -> None:
        acc, vloss = _score(self.net, self.cache, *self.val, self.device)
        self.log.append(
            dict(
                step=step,
                val_accuracy=acc,
                val_loss=vloss,
                train_loss=finite_or_none(self.train_loss),
                seconds=self.rule.elapsed(),
            )
        )
        improved = vloss < self.loss
        if improved:
            self.loss, self.acc, self.step, self.state = vloss, acc, step, copy.deepcopy(self.net.state_dict())
        self.rule.record(improved)


def _optimise(
    net: nn.Module, cache: StackSource, train: Pairs, cfg: BCConfig, rng: np.random.Generator, best: _BestWeights, bar
) -> tuple[int, str]:
    """Adam on the cross-entropy of shuffled passes over ``train`` until ``cfg.max_steps`` or the stop rule; returns
    (steps taken, why it stopped)."""
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    tr_ep, tr_t, tr_a = train
    perm = np.empty(0, np.int64)
    step = 0
    for step in range(1, cfg.max_steps + 1):
        if len(perm) < cfg.batch_size:  # shuffled passes over the training pairs
            perm = np.concatenate([perm, rng.permutation(len(tr_ep))])
        idx, perm = perm[: cfg.batch_size], perm[cfg.batch_size :]
        x = torch.from_numpy(cache.stacks(tr_ep[idx], tr_t[idx])).to(best.device)
        loss = F.cross_entropy(net(x), torch.from_numpy(tr_a[idx]).to(best.device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        best.train_loss = loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{best.train_loss:.3f}", val_loss=f"{best.loss:.3f}")
        reason = best.rule.after_step(step, best.check)
        if reason is not None:
            return step, reason
    return step, "completed"


def train_bc(
    cache: StackSource,
    demos: DemoSet,
    cfg: BCConfig,
    rng: np.random.Generator,
    device: str | torch.device = "cpu",
    *,
    action_meanings: list[str] | None = None,
    progress: bool = False,
) -> tuple[BCPolicy, dict[str, Any]]:
    """Clone the demonstrator of ``demos``: cross-entropy on (observation t, action t), early stopping by episode.

    Args:
        cache: the demo set's frames (a ``FrameCache`` of ``demos``).
        demos: the demo set; its actions are indices into the env's action set.
        cfg: the recipe.
        rng: all randomness: the episode split, batch order, validation subset and (via a derived
            ``torch.Generator``) the initial weights; also the sampling rng of the returned policy.
        device: where to train.
        action_meanings: the env's action names (default: read from ALE for the demo set's game and profile);
            their count is the number of logits.
        progress: show a tqdm bar.

    Returns:
        ``(policy, metrics)``: the policy holds the weights of the *lowest validation loss* seen (not the last
        ones), on CPU; metrics hold the split, the best step, validation/training accuracy, the majority-class
        baseline and the log of every check.

    Raises:
        ValueError: fewer than 2 episodes (no by-episode split), or a recorded action outside the action set.
    """
    from trex_bench.core.progress import progress_bar

    device = torch.device(device)
    if len(demos.episodes) < 2:
        raise ConfigError("behaviour cloning needs >= 2 episodes: the held-out split is by episode")
    meanings = _action_meanings(demos, action_meanings)
    train_eps, val_eps, train, val = _split(demos, cfg, rng)
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    net = init_bc_net(len(meanings), gen).to(device).train()
    if cfg.channels_last:
        net = net.to(memory_format=torch.channels_last)
    best = _BestWeights(
        net, cache, val, StopRule(cfg.eval_every, cfg.patience, cfg.max_seconds, "lower validation loss"), device
    )
    best.check(0)
    bar = progress_bar(cfg.max_steps, "bc", "step", enabled=progress)
    step, stopped = _optimise(net, cache, train, cfg, rng, best, bar)
    bar.close()
    if best.log[-1]["step"] != step:
        best.check(step)
    wall = best.rule.elapsed()
    net.load_state_dict(best.state)
    net = net.to(memory_format=torch.contiguous_format).cpu().eval()
    metrics = _metrics(net, cache, train, val, best, rng, len(meanings)) | dict(
        steps=step,
        train_episodes=train_eps.tolist(),
        val_episodes=val_eps.tolist(),
        stopped=stopped,
        wall_seconds=wall,
        log=best.log,
    )
    return BCPolicy(net, demos.game, list(meanings), rng=rng), metrics


def _metrics(
    net: nn.Module, cache: StackSource, train: Pairs, val: Pairs, best: _BestWeights, rng: np.random.Generator, n: int
) -> dict[str, Any]:
    """The kept weights' scores: validation (best check), training (a random 2 000-pair subset), majority class."""
    tr_ep, tr_t, tr_a = train
    sub = np.sort(rng.choice(len(tr_ep), min(len(tr_ep), 2000), replace=False))
    train_acc, train_loss = _score(net, cache, tr_ep[sub], tr_t[sub], tr_a[sub], torch.device("cpu"))
    majority = int(np.bincount(tr_a, minlength=n).argmax())
    return dict(
        best_step=int(best.step),
        best_val_loss=finite_or_none(best.loss),
        val_accuracy=finite_or_none(best.acc),  # None: no check ever improved (a NaN validation loss)
        train_accuracy=train_acc,
        train_loss=train_loss,
        majority_action=majority,
        majority_val_accuracy=float(np.mean(val[2] == majority)),
        chance_accuracy=1.0 / n,
        n_train_pairs=int(len(tr_ep)),
        n_val_pairs=int(len(val[0])),
    )
