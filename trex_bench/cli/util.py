"""argparse types shared by the command modules: bad values fail with a one-line message."""

from __future__ import annotations

import argparse


def torch_device(text: str) -> str:
    """A torch device this torch build can use (``cpu``, ``cuda``, ``cuda:1``, ``mps``)."""
    import torch

    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError) as e:
        raise argparse.ArgumentTypeError(f"not a torch device: {text!r} (e.g. cpu, cuda, cuda:0)") from e
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: this torch build or machine has no CUDA device; use cpu")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text!r}: MPS is not available here; use cpu")
    return text


def positive_int(text: str) -> int:
    """An int >= 1."""
    v = int(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {v}")
    return v


def nonneg_int(text: str) -> int:
    """An int >= 0."""
    v = int(text)
    if v < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {v}")
    return v


def seed(text: str) -> int:
    """A seed in [0, 2**32 - 1] (``trex_bench.experiment.config.MAX_SEED``): one limit for every command."""
    from trex_bench.experiment.config import MAX_SEED

    try:
        v = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an integer seed: {text!r}") from e
    if not 0 <= v <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"must be in [0, {MAX_SEED}], got {v}")
    return v


def positive_seconds(text: str) -> float:
    """A finite number of seconds > 0 (``--max-seconds``)."""
    v = float(text)
    if not 0.0 < v < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text}")
    return v


def noise_levels(text: str) -> list[float]:
    """One ε or a comma-separated schedule of them, each in [0, 1] (e.g. ``1.0,0.75,0.5,0.25,0.01,noop``);
    ``noop`` is D-REX's no-op bin (``types.NOOP_NOISE``)."""
    from trex_bench.core.types import NOOP_NOISE

    tokens = [x.strip() for x in text.split(",") if x.strip()]
    if not tokens:
        raise argparse.ArgumentTypeError("no noise level given")
    levels = []
    for x in tokens:
        if x.lower() == "noop":
            levels.append(NOOP_NOISE)
            continue
        try:
            eps = float(x)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not 'noop', a number or comma-separated ones: {text!r}") from e
        if not 0.0 <= eps <= 1.0:  # a typed 2.0 is refused: only 'noop' names the no-op bin
            raise argparse.ArgumentTypeError(f"noise must be in [0, 1], got {eps}")
        levels.append(eps)
    return levels


MAX_SEEDS = 1_000  # a sweep's seed list; `--seeds 0-100000000` once grew a dry run to 19 GB


def seed_list(text: str) -> list[int]:
    """``0,1,2`` or a range ``0-4`` (inclusive); at most ``MAX_SEEDS`` seeds in all, each a valid seed."""
    from trex_bench.experiment.config import MAX_SEED

    out: list[int] = []
    for item in [w.strip() for w in text.split(",") if w.strip()]:
        lo, sep, hi = item.partition("-")
        try:
            span = range(int(lo), int(hi) + 1) if sep else range(int(lo), int(lo) + 1)
        except ValueError as e:
            raise argparse.ArgumentTypeError(f"not a seed or seed range: {item!r}") from e
        if not span or span.start < 0 or span.stop - 1 > MAX_SEED:
            raise argparse.ArgumentTypeError(f"seeds must be in [0, {MAX_SEED}] and ranges ascending: {item!r}")
        if len(out) + len(span) > MAX_SEEDS:
            raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds per sweep, got {item!r} (each seed is a run)")
        out.extend(span)
    if not out:
        raise argparse.ArgumentTypeError(f"no seed given: {text!r} (e.g. 0, 0-2 or 0,3)")
    return out
