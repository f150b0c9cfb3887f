"""Shared fixtures of tests/unit (fakes, no emulator) and tests/integration (ALE, pipelines): the pinned numerics, one
torch thread, the reference folder, a small scripted Breakout demo set made once per session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from trex_bench.regression.numerics import pin_numerics

# Before anything loads torch: the regression tests compare runs in this process with results/regression.json,
# which was measured with these float kernels (trex_bench/regression/numerics.py says why; ~10% slower PPO tests).
NUMERICS_NOT_PINNED = pin_numerics()


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Tests run tiny batches on 2 cores: one intra-op thread is far faster than two fighting over a busy core."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference"


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    """The authors' released artefacts (../shared/reference); tests that need them skip loudly when absent."""
    if not REFERENCE.exists():
        pytest.skip(f"reference artefacts not found at {REFERENCE}")
    return REFERENCE


@pytest.fixture(scope="session")
def breakout_demos():
    """4 short scripted Breakout episodes (ε = 0.25), as a DemoSet."""
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.policies import EpsilonGreedy, ScriptedBreakout

    rng = np.random.default_rng(0)
    return collect("breakout", EpsilonGreedy(ScriptedBreakout(), 0.25, 4, rng), CollectConfig(4, seed=0, noise=0.25, max_steps=400), progress=False)

