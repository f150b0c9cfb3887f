"""The regression checks' shared pieces: a measured value, a skipped check, and the determinism helpers.

Kept apart from ``trex_bench.regression`` so that the check modules (``regression_extrapolation``) and the runner
import them without importing each other.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["Value", "Tolerance", "Measured", "CheckSkipped", "one_torch_thread", "state_sha256"]

Value = int | float | str
Tolerance = Literal["exact", "rel", "band"]


class CheckSkipped(Exception):
    """A check cannot run here (an input outside the repository is absent); the message says which and why."""


@dataclass(frozen=True)
class Measured:
    """One measured value and how it is compared with its expectation."""

    value: Value
    tolerance: Tolerance = "exact"


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread while a check runs (bitwise reproducible reductions), then the caller's setting back."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def state_sha256(model: Any) -> str:
    """SHA-256 over the state dict's names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        t = v.detach().cpu().contiguous()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()
