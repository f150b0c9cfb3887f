"""Reward learning from ranked demos: batched Bradley-Terry steps (``trex_bench.reward.bradley_terry``) on
index-only snippet pairs, validation, early stopping and the choice of the kept weights, one net or an ensemble.
"""

from __future__ import annotations

import copy
import functools
import math
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trex_bench.core.errors import ConfigError
from trex_bench.core.games import Game
from trex_bench.core.io import finite_or_none
from trex_bench.core.training import StopRule
from trex_bench.core.types import Ranking, SnippetPairs
from trex_bench.reward.bradley_terry import FrameSource, bradley_terry_loss, evaluate_pairs, init_net, snippet_returns
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.net import RewardEnsemble, RewardNet
from trex_bench.reward.snippets import (
    bootstrap_resample,
    held_out_rankings,
    latest_checkpoint_episodes,
    sample_snippet_pairs,
    split_by_episode_pairs,
    whole_trajectory_pairs,
)

__all__ = ["sample_split", "train_reward"]


def _sample(
    source: FrameSource, ranking: Ranking, cfg: TrainConfig, n_pairs: int, rng: np.random.Generator
) -> SnippetPairs:
    if cfg.whole_trajectory:
        return whole_trajectory_pairs(ranking, source.lengths, n_pairs, cfg.stride, rng)
    return sample_snippet_pairs(ranking, source.lengths, n_pairs, cfg.min_len, cfg.max_len, cfg.stride, rng)


def sample_split(
    source: FrameSource,
    ranking: Ranking,
    cfg: TrainConfig,
    rng: np.random.Generator,
    checkpoints: np.ndarray | None = None,
) -> tuple[SnippetPairs, SnippetPairs]:
    """(train, val) snippet pairs of ``ranking`` under ``cfg.validation``.

    ``episodes``: ``n_pairs`` pairs, a ``val_frac`` share of the episode pairs held out (``split_by_episode_pairs``).
    ``latest``: the latest checkpoint's episodes (``checkpoints``: int [E], one per episode) never train; the
    ``n_pairs · (1 − val_frac)`` training pairs come from the preferences among the others, the rest from the
    preferences of a held-out episode against a training one, so both choices train on as many pairs.

    Raises:
        ConfigError: ``latest`` without every episode's checkpoint number, or with nothing left to train or validate.
    """
    if cfg.validation == "episodes":
        return split_by_episode_pairs(_sample(source, ranking, cfg, cfg.n_pairs, rng), cfg.val_frac, rng)
    if checkpoints is None:
        raise ConfigError("validation 'latest' needs the demos' checkpoint numbers; use validation 'episodes'")
    train_rank, val_rank = held_out_rankings(ranking, latest_checkpoint_episodes(checkpoints))
    n_val = min(max(round(cfg.val_frac * cfg.n_pairs), 1), cfg.n_pairs - 1)
    if n_val < 1:
        raise ConfigError("validation 'latest' needs n_pairs >= 2 (one to train on, one to validate)")
    return _sample(source, train_rank, cfg, cfg.n_pairs - n_val, rng), _sample(source, val_rank, cfg, n_val, rng)


def train_reward(
    source: FrameSource,
    ranking: Ranking | None,
    cfg: TrainConfig,
    game: Game | str,
    rng: np.random.Generator,
    device: str | torch.device = "cpu",
    *,
    progress: bool = False,
    log_dir: str | Path | None = None,
    tensorboard: bool = False,
    pairs: tuple[SnippetPairs, SnippetPairs] | None = None,
    checkpoints: np.ndarray | None = None,
) -> tuple[RewardNet | RewardEnsemble, dict[str, Any]]:
    """Learn r(s) from ranked episodes with batched Bradley-Terry steps, validation and early stopping.

    Args:
        source: frames (a ``FrameCache`` or any ``FrameSource``).
        ranking: preferences over the source's episodes (None when ``pairs`` is given).
        cfg: the training config.
        game: the game (its score mask is part of the net).
        rng: all randomness: pair sampling, split, batch order and (through a derived ``torch.Generator``) init.
        device: where to train.
        progress: show a tqdm bar.
        log_dir: where to write ``train_log.json`` (and TensorBoard events when ``tensorboard``).
        pairs: (train, val) snippet pairs to use instead of sampling (the benchmark shares them between recipes;
            the labeling page's answers are pairs of clips).
        checkpoints: int [E], each episode's demonstrator checkpoint (``cfg.validation="latest"`` needs them).

    Returns:
        ``(model, metrics)``: a ``RewardNet`` (or ``RewardEnsemble`` when ``cfg.ensemble > 1``) on CPU in eval mode,
        holding the weights of the best validation accuracy; metrics per member plus their summary. With
        ``cfg.bootstrap`` each member trains on its own resample of the training pairs (``bootstrap_resample``).
    """
    device = torch.device(device)
    if pairs is None:
        if ranking is None:
            raise ConfigError("train_reward needs a ranking to sample snippet pairs from, or the pairs themselves")
        train_p, val_p = sample_split(source, ranking, cfg, rng, checkpoints)
    else:
        train_p, val_p = pairs
    nets, runs = [], []
    writer = None
    if tensorboard and log_dir is not None:
        try:
            from torch.utils.tensorboard import SummaryWriter

            writer = SummaryWriter(str(Path(log_dir) / "tensorboard"))
        except ImportError:  # tensorboard is optional
            writer = None
    try:
        for k in range(cfg.ensemble):
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            member_p = bootstrap_resample(train_p, rng) if cfg.bootstrap else train_p
            net, m = _train_one(source, member_p, val_p, cfg, game, rng, gen, device, progress, writer, k)
            m.update(train_pairs=_digest(member_p), distinct_train_pairs=_n_distinct(member_p))
            nets.append(net)
            runs.append(m)
    finally:
        if writer is not None:
            writer.close()
    metrics: dict[str, Any] = dict(
        n_train_pairs=len(train_p),
        n_val_pairs=len(val_p),
        members=runs,
        val_accuracy=finite_or_none(
            np.mean([np.nan if r["best_val_accuracy"] is None else r["best_val_accuracy"] for r in runs])
        ),  # None: no validation pairs
        train_accuracy=float(np.mean([r["train_accuracy"] for r in runs])),
        wall_seconds=float(sum(r["wall_seconds"] for r in runs)),
        stopped=[r["stopped"] for r in runs],
    )
    if cfg.validation == "latest" and checkpoints is not None:
        metrics["held_out_episodes"] = latest_checkpoint_episodes(checkpoints).tolist()
    if log_dir is not None:
        from trex_bench.core.io import write_json

        write_json(Path(log_dir) / "train_log.json", dict(config=asdict(cfg), metrics=metrics))
    model: RewardNet | RewardEnsemble = nets[0] if len(nets) == 1 else RewardEnsemble(nets)
    return model.eval(), metrics


def _rows(pairs: SnippetPairs) -> np.ndarray:
    return np.stack([pairs.ep_a, pairs.start_a, pairs.ep_b, pairs.start_b, pairs.length, pairs.label], 1)


def _digest(pairs: SnippetPairs) -> str:
    """16 hex digits naming a training set (its pairs in order): bootstrap members' sets differ, plain ones match."""
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(_rows(pairs), dtype=np.int64).tobytes()).hexdigest()[:16]


def _n_distinct(pairs: SnippetPairs) -> int:
    return len(np.unique(_rows(pairs), axis=0))


def _improved(select: str, acc: float, vloss: float, best_acc: float, best_loss: float) -> bool:
    """Whether a validation check beats the kept weights under ``TrainConfig.select``."""
    if select == "val_loss":
        return vloss < best_loss
    if select == "last":
        return True
    return acc > best_acc or (acc == best_acc and vloss < best_loss)


def _finite_step(net: nn.Module, opt: torch.optim.Optimizer, loss: torch.Tensor) -> bool:
    """One Adam step; if it makes any weight non-finite, undo it and return False."""
    prev = [p.detach().clone() for p in net.parameters()]
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    if all(bool(torch.isfinite(p).all()) for p in net.parameters()):
        return True
    with torch.no_grad():
        for p, q in zip(net.parameters(), prev, strict=True):
            p.copy_(q)
    return False


@dataclass
class _Kept:
    """The weights a net keeps (``TrainConfig.select``) and the validation check that chose them."""

    state: dict[str, torch.Tensor]
    acc: float = -1.0
    loss: float = math.inf
    step: int = 0


@dataclass
class _Validation:
    """One net's validation checks: each is logged (and sent to TensorBoard), and the net's weights are kept when
    they improve under ``cfg.select``; ``rule`` counts the checks since the last improvement."""

    source: FrameSource
    pairs: SnippetPairs
    cfg: TrainConfig
    device: torch.device
    rule: StopRule
    kept: _Kept
    writer: Any = None
    member: int = 0
    log: list[dict[str, Any]] = field(default_factory=list)

    def check(self, net: nn.Module, step: int, train_loss: float) -> None:
        """Validate ``net`` after ``step`` optimiser steps (``train_loss``: the last step's loss)."""
        if not len(self.pairs):  # nothing to validate on: the latest weights are the kept ones
            self.kept = _Kept(copy.deepcopy(net.state_dict()), float("nan"), self.kept.loss, step)
            return
        acc, vloss = evaluate_pairs(net, self.source, self.pairs, self.cfg, self.device)
        self.log.append(
            dict(
                step=step,
                val_accuracy=acc,
                val_loss=vloss,
                train_loss=finite_or_none(train_loss),
                seconds=self.rule.elapsed(),
            )
        )
        if self.writer is not None:
            self.writer.add_scalar(f"member{self.member}/val_accuracy", acc, step)
            self.writer.add_scalar(f"member{self.member}/val_loss", vloss, step)
        improved = _improved(self.cfg.select, acc, vloss, self.kept.acc, self.kept.loss)
        if improved:
            self.kept = _Kept(copy.deepcopy(net.state_dict()), acc, vloss, step)
        self.rule.record(improved)


@dataclass(frozen=True)
class _Steps:
    """How one net's optimiser loop ended: steps taken (the last finite one), why it stopped, distinct frame stacks
    scored, and the last step's loss."""

    steps: int
    stopped: str
    frames_scored: int
    last_loss: float


def _new_net(game: Game | str, cfg: TrainConfig, gen: torch.Generator, device: torch.device) -> RewardNet:
    net = init_net(game, cfg.method, gen).to(device)
    return net.to(memory_format=torch.channels_last) if cfg.channels_last else net


def _batch_order(n_train: int, cfg: TrainConfig, rng: np.random.Generator) -> tuple[int, np.ndarray]:
    """(steps, pair order): the passes are one shuffled stream of pairs cut into batches, ceil(passes·N / B) steps,
    every batch non-empty (counting ceil(N / B) steps per pass ran past the stream's end into empty batches: a NaN
    loss at the last steps); ``max_steps`` caps them."""
    total = math.ceil(cfg.passes * n_train / cfg.batch_pairs)
    if cfg.max_steps is not None:
        total = min(total, cfg.max_steps)
    order = np.concatenate([rng.permutation(n_train) for _ in range(math.ceil(cfg.passes))])
    return total, order


def _optimise(
    net: nn.Module,
    source: FrameSource,
    train_p: SnippetPairs,
    order: np.ndarray,
    total: int,
    val: _Validation,
    progress: bool,
) -> _Steps:
    """Adam steps on the batches of ``order`` until ``total``, a non-finite loss or weights (that step undone), or
    ``val.rule``'s early stop or time cap; validations as the rule schedules them."""
    from trex_bench.core.progress import progress_bar

    cfg, device, writer = val.cfg, val.device, val.writer
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    stopped, frames_scored, last_loss = "completed", 0, float("nan")
    bar = progress_bar(total, f"reward net {val.member}", "step", enabled=progress)
    step = 0
    for step in range(1, total + 1):
        batch = train_p.subset(order[(step - 1) * cfg.batch_pairs : step * cfg.batch_pairs])
        ra, rb, n_unique = snippet_returns(net, source, batch, device, cfg.bf16, cfg.channels_last)
        loss = bradley_terry_loss(ra, rb, torch.from_numpy(batch.label).to(device))
        if not torch.isfinite(loss):
            stopped = f"non-finite loss at step {step}; kept the weights of step {step - 1}"
            step -= 1
            break
        if not _finite_step(net, opt, loss):
            stopped = f"non-finite weights after step {step}; kept the weights of step {step - 1}"
            step -= 1
            break
        last_loss = loss.item()
        frames_scored += n_unique
        if writer is not None:
            writer.add_scalar(f"member{val.member}/train_loss", last_loss, step)
        bar.update(1)
        bar.set_postfix(loss=f"{last_loss:.3f}", val_acc=f"{val.kept.acc:.3f}")
        reason = val.rule.after_step(step, functools.partial(val.check, net, train_loss=last_loss))
        if reason is not None:
            stopped = reason
            break
    bar.close()
    return _Steps(step, stopped, frames_scored, last_loss)


def _train_one(
    source: FrameSource,
    train_p: SnippetPairs,
    val_p: SnippetPairs,
    cfg: TrainConfig,
    game: Game | str,
    rng: np.random.Generator,
    gen: torch.Generator,
    device: torch.device,
    progress: bool,
    writer: Any,
    member: int,
) -> tuple[RewardNet, dict[str, Any]]:
    """One net: Adam on shuffled batches of ``train_p``; keep the weights of the best validation accuracy."""
    net = _new_net(game, cfg, gen, device)
    total, order = _batch_order(len(train_p), cfg, rng)
    rule = StopRule(cfg.eval_every, cfg.patience, cfg.max_seconds, "validation gain")
    val = _Validation(source, val_p, cfg, device, rule, _Kept(copy.deepcopy(net.state_dict())), writer, member)
    val.check(net, 0, float("nan"))
    run = _optimise(net, source, train_p, order, total, val, progress)
    if run.stopped.startswith("non-finite"):
        warnings.warn(f"reward training stopped: {run.stopped}", RuntimeWarning, stacklevel=2)
    if not val.log or val.log[-1]["step"] != run.steps:
        val.check(net, run.steps, run.last_loss)
    wall = rule.elapsed()
    net.load_state_dict(val.kept.state)
    net = net.to(memory_format=torch.contiguous_format).cpu().eval()
    train_acc, _ = evaluate_pairs(
        net,
        source,
        train_p.subset(np.arange(min(len(train_p), 500))),
        replace(cfg, bf16=False, channels_last=False),
        torch.device("cpu"),
    )
    return net, dict(
        steps=run.steps,
        best_step=int(val.kept.step),
        best_val_accuracy=finite_or_none(val.kept.acc),  # JSON has no NaN: None where nothing was validated
        best_val_loss=finite_or_none(val.kept.loss),
        train_accuracy=train_acc,
        stopped=run.stopped,
        wall_seconds=wall,
        pairs_per_second=run.steps * cfg.batch_pairs / max(wall, 1e-9),
        frames_per_second=run.frames_scored / max(wall, 1e-9),
        log=val.log,
    )
