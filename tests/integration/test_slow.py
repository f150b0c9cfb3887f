"""Slow checks (`make test-slow`): the performance claims of the reward-learning issue, at full size."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_40k_pairs_of_length_200_train_within_2_gib(tmp_path):
    """Pairs are indices and frames are uint8 once: 40 000 pairs of span ≤ 200 fit in 2 GiB resident memory."""
    script = textwrap.dedent(f"""
        import resource, numpy as np
        from trex_bench.demos.frames import FrameCache
        from trex_bench.demos.store import load_demos
        from trex_bench.experiment.pipeline import default_demos
        from trex_bench.reward.ranking import by_return
        from trex_bench.experiment.budgets import reward_config
from trex_bench.reward.train import train_reward
        ds = load_demos(default_demos("breakout").parent / "scripted-noise")
        cache = FrameCache(ds, {str(tmp_path)!r})
        cfg = reward_config("quick", n_pairs=40000, min_len=100, max_len=200, max_steps=5, max_seconds=None, val_frac=0.01)
        train_reward(cache, by_return(ds), cfg, "breakout", np.random.default_rng(0))
        print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    kb = int(out.split("MAXRSS_KB")[1].split()[0])
    print(f"40 000 pairs of span 100–200: peak resident memory {kb / 1024:.0f} MiB")
    assert kb < 2 * 1024 * 1024, f"peak resident memory {kb / 1024:.0f} MiB"


def test_quick_reward_ranks_held_out_breakout_episodes(tmp_path):
    """T-REX at the `quick` budget on the 12 committed demos, scored on 12 episodes it never saw.

    Measured (2 cores, 2026-11-26, 127 s incl. the 100 s training cap): Spearman vs true return 0.97 for the mean
    per-frame reward, 0.94 for the sigmoid sum, matched-progress pair accuracy 0.90 (variants: weight decay 1e-2,
    snippets of 10–40 or lr 1e-4 gave 0.93–0.97). The issue's target is 0.9 for the per-frame mean within 5 minutes.
    """
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.policies import EpsilonGreedy, ScriptedBreakout
    from trex_bench.demos.store import load_demos, merge_demo_sets
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.experiment.pipeline import default_demos
    from trex_bench.reward.fidelity import fidelity_report
    from trex_bench.reward.ranking import by_return
    from trex_bench.reward.train import train_reward

    train = load_demos(default_demos("breakout").parent / "scripted-noise")
    rng = np.random.default_rng(7)
    held_out = merge_demo_sets([
        collect("breakout", EpsilonGreedy(ScriptedBreakout(), eps, 4, rng), CollectConfig(2, seed=70 + i, noise=eps), progress=False)
        for i, eps in enumerate((1.0, 0.5, 0.25, 0.1, 0.05, 0.0))
    ])
    model, _ = train_reward(FrameCache(train, tmp_path), by_return(train), reward_config("quick"), "breakout", np.random.default_rng(0))
    report = fidelity_report(model, held_out, FrameCache(held_out, tmp_path))
    corr = report["correlations"]
    assert corr["pred_mean"]["spearman"] >= 0.9
    assert corr["pred_sigmoid_sum"]["spearman"] >= 0.85
    assert report["pairwise"]["accuracy"] >= 0.8
