"""The Bradley-Terry model over snippet pairs (T-REX eq. 1), shared by every trainer of a reward net.

For a pair τ_a, τ_b the loss is cross-entropy on the logits [Σ_{s∈τ_a} r(s), Σ_{s∈τ_b} r(s)] with the
preferred side as the label. Snippets overlap heavily, so every *distinct* frame stack of a batch is scored once in
one forward pass and the per-snippet sums are built with ``index_add_``.

The frame source is anything with ``.frames`` (uint8 [F, 84, 84]), ``.offsets``, ``.lengths`` and
``.stack_index(ep, t)`` (e.g. ``trex_bench.demos.frames.FrameCache``), so tests can train on synthetic frames.
"""

from __future__ import annotations

import contextlib
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from trex_bench.core.games import Game
from trex_bench.core.training import default_init_
from trex_bench.core.types import SnippetPairs
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.net import RewardNet

__all__ = ["FrameSource", "bradley_terry_loss", "evaluate_pairs", "gather_stacks", "init_net", "snippet_returns"]


class FrameSource(Protocol):
    """What the trainer needs from a frame cache."""

    frames: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray

    def stack_index(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray: ...


def bradley_terry_loss(ret_a: torch.Tensor, ret_b: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
    """T-REX eq. 1: mean cross-entropy of softmax([R_a, R_b]) against the preferred side (label 1 = b)."""
    return F.cross_entropy(torch.stack([ret_a, ret_b], dim=1).float(), label)


def init_net(game: Game | str, arch: str, generator: torch.Generator) -> RewardNet:
    """A RewardNet initialised like PyTorch's default (Kaiming-uniform, a=√5) but from ``generator``, not the
    global RNG."""
    net = RewardNet(game, arch)  # type: ignore[arg-type]
    default_init_(net, generator)
    return net


def _frame_positions(pairs: SnippetPairs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(episode, observation, snippet id) of every frame of every snippet; snippet 2k is side a of pair k, 2k+1 b."""
    n = len(pairs)
    ep = np.stack([pairs.ep_a, pairs.ep_b], 1).reshape(-1)
    start = np.stack([pairs.start_a, pairs.start_b], 1).reshape(-1)
    length = np.repeat(pairs.length, 2)
    snippet = np.repeat(np.arange(2 * n), length)
    first = np.cumsum(length) - length
    t = start[snippet] + pairs.stride * (np.arange(len(snippet)) - first[snippet])
    return ep[snippet], t, snippet


def gather_stacks(source: FrameSource, index: np.ndarray) -> np.ndarray:
    """The frame stacks at ``index`` (from ``source.stack_index``); a negative index is a zero frame."""
    out = source.frames[np.maximum(index, 0)]
    out[index < 0] = 0  # zero-filled stack at reset, as the env's frame stack does
    return out


def snippet_returns(
    model: nn.Module,
    source: FrameSource,
    pairs: SnippetPairs,
    device: torch.device,
    bf16: bool = False,
    channels_last: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Σ r over each snippet of ``pairs``: returns (R_a [N], R_b [N], distinct stacks scored).

    Each distinct (episode, observation) stack is scored once; duplicates across overlapping snippets share it.
    """
    ep, t, snippet = _frame_positions(pairs)
    key = source.offsets[ep] + t  # global row of a stack's newest frame identifies the stack
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    stacks = torch.from_numpy(gather_stacks(source, source.stack_index(ep[first], t[first]))).to(device)
    if channels_last:
        stacks = stacks.contiguous(memory_format=torch.channels_last)
    ctx = torch.autocast(device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    with ctx:
        r = model(stacks).float()
    per_frame = r[torch.from_numpy(inverse.reshape(-1)).to(device)]
    sums = torch.zeros(2 * len(pairs), device=device, dtype=r.dtype).index_add_(
        0, torch.from_numpy(snippet).to(device), per_frame
    )
    sums = sums.view(-1, 2)
    return sums[:, 0], sums[:, 1], len(first)


@torch.no_grad()
def evaluate_pairs(
    model: nn.Module, source: FrameSource, pairs: SnippetPairs, cfg: TrainConfig, device: torch.device, chunk: int = 64
) -> tuple[float, float]:
    """(pair accuracy, mean loss) on ``pairs``; a tie of the two sums counts as wrong."""
    model.eval()
    correct, loss = 0.0, 0.0
    for i in range(0, len(pairs), chunk):
        p = pairs.subset(np.arange(i, min(i + chunk, len(pairs))))
        ra, rb, _ = snippet_returns(model, source, p, device, cfg.bf16, cfg.channels_last)
        label = torch.from_numpy(p.label).to(device)
        loss += float(bradley_terry_loss(ra, rb, label)) * len(p)
        correct += float(((rb > ra).long() == label).logical_and(ra != rb).sum())
    model.train()
    return correct / max(len(pairs), 1), loss / max(len(pairs), 1)
