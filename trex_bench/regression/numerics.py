"""The regression checks' shared pieces: a measured value, a skipped check, and the determinism helpers.

Kept apart from ``trex_bench.regression.checks`` so that the check modules (``regression.extrapolation``) and the
runner import them without importing each other.

Why the numerics are pinned: an exact weight hash recorded on one CPU can fail on another (the T-REX net's hash, and
through it the learned-reward PPO losses, moved between an AMD EPYC and an AVX-512 Intel Xeon). Three things pick float
kernels by the CPU they find: torch's own vectorised kernels (AVX2 or AVX-512 lanes: another summation order), MKL's
GEMM (its ISA branch; on this Xeon ``MKL_ENABLE_INSTRUCTIONS=AVX2`` alone moved the hash) and oneDNN's JIT convolutions
(ISA, and blocking from the cache sizes). The checks run with torch's kernels at AVX2 (``ATEN_CPU_CAPABILITY``), MKL in
its conditional-numerical-reproducibility branch ``COMPATIBLE`` (the one branch Intel documents as the same on Intel and
compatible processors; ``MKL_CBWR``) and oneDNN off (convolutions by im2col and the pinned GEMM). Both variables are
read once, at torch's first use, so ``pin_numerics`` must run before torch is imported: ``trex-bench regression`` calls
it first.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "Value",
    "Tolerance",
    "Measured",
    "CheckSkipped",
    "PINNED_ENV",
    "pin_numerics",
    "pinned_numerics",
    "numerics",
    "reproducible_torch",
    "state_sha256",
]

# read by torch (ATen's kernel dispatch) and MKL at their first use; see the module's docstring
PINNED_ENV = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "COMPATIBLE,STRICT"}

Value = int | float | str
Tolerance = Literal["exact", "rel", "band"]


class CheckSkipped(Exception):
    """A check cannot run here (an input outside the repository is absent); the message says which and why."""


@dataclass(frozen=True)
class Measured:
    """One measured value and how it is compared with its expectation."""

    value: Value
    tolerance: Tolerance = "exact"


def pin_numerics() -> str | None:
    """Pin the CPU float kernels (``PINNED_ENV``) before torch loads; a line saying why not where they could not be.

    Where torch is already imported (a test, a notebook) its kernels are chosen and the variables would be ignored:
    nothing is changed then, and the line says so; so it does where the CPU lacks AVX2.
    """
    if "torch" in sys.modules:
        got = numerics()
        return None if got == pinned_numerics() else f"torch was loaded before the numerics were pinned ({got})"
    os.environ.update(PINNED_ENV)
    got = numerics()
    return None if got == pinned_numerics() else f"this CPU runs {got}, not {pinned_numerics()}"


def pinned_numerics() -> str:
    """The numerics the expectations are recorded with, as ``numerics`` words them."""
    return f"ATen {PINNED_ENV['ATEN_CPU_CAPABILITY'].upper()}, MKL_CBWR={PINNED_ENV['MKL_CBWR']}"


def numerics() -> str:
    """This process's float kernels, in one line: ATen's dispatch level and MKL's reproducibility branch."""
    import torch

    cbwr = os.environ.get("MKL_CBWR", "unset")
    return f"ATen {torch.backends.cpu.get_cpu_capability()}, MKL_CBWR={cbwr}"


@contextlib.contextmanager
def reproducible_torch() -> Iterator[None]:
    """One intra-op thread and oneDNN off while a check runs, then the caller's settings back.

    One thread: MKL and torch reduce in a fixed order. oneDNN off: its JIT convolutions block by the CPU's cache
    sizes, so convolutions go through im2col and MKL's GEMM, whose branch ``pin_numerics`` fixes.
    """
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with warnings.catch_warnings():
            # flags() also sets oneDNN's TF32 switch, which warns that TF32 needs an Intel GPU: not our concern
            warnings.filterwarnings("ignore", message="TF32 acceleration on top of oneDNN")
            with torch.backends.mkldnn.flags(enabled=False):
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
