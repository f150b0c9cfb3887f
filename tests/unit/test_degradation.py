"""The D-REX degradation curve (trex_bench.demos.degradation): summary, CSV in the authors' layout, real reference files."""

from __future__ import annotations

import numpy as np
import pytest

from trex_bench.core.types import DemoSet, Episode
from trex_bench.demos.degradation import (
    degradation_command,
    degradation_curve,
    read_reference_degradation,
    write_degradation,
)


def _episode(ret: float, noise: float) -> Episode:
    rewards = np.array([ret, 0.0], np.float32)
    return Episode(seed=0, actions=np.zeros(2, np.uint8), rewards=rewards, hash_steps=np.array([0]),
                   frame_hashes=np.zeros(1, np.uint64), noise=noise)


def _hand_made() -> DemoSet:
    spec = [(10, 0.0), (14, 0.0), (5, 0.5), (7, 0.5), (9, 0.5), (1, 1.0)]
    return DemoSet(game="breakout", profile="paper", profile_settings={}, demonstrator="hand",
                   episodes=tuple(_episode(r, n) for r, n in spec))


def test_curve_of_a_hand_made_set():
    c = degradation_curve(_hand_made())
    assert c["noise"].tolist() == [1.0, 0.5, 0.0]
    assert c["mean"].tolist() == [1.0, 7.0, 12.0]
    assert c["n"].tolist() == [1, 3, 2]
    assert c["std"].tolist() == pytest.approx([0.0, np.std([5, 7, 9]), 2.0])


def test_csv_round_trips_in_the_reference_layout(tmp_path, reference_dir):
    ds = _hand_made()
    demo_set = DemoSet(game="breakout", profile="paper", profile_settings={}, demonstrator="demos",
                       episodes=(_episode(20, 0.0), _episode(30, 0.0)))
    ref = reference_dir / "drex" / "bc_degradation" / "breakout_batch_rewards.csv"
    csv_path, png_path = write_degradation(ds, tmp_path / "breakout_degradation", demo_set, reference_csv=ref)
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "demos, 20.0, 30.0"
    assert lines[1] == "0.0, 10.0, 14.0" and lines[-1] == "1.0, 1.0"
    demos, levels = read_reference_degradation(csv_path)
    assert demos.tolist() == [20.0, 30.0]
    assert {k: v.tolist() for k, v in levels.items()} == {0.0: [10.0, 14.0], 0.5: [5.0, 7.0, 9.0], 1.0: [1.0]}
    assert png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Without the demonstrations the "demos" row is left out.
    csv2, _ = write_degradation(ds, tmp_path / "no_demos")
    assert read_reference_degradation(csv2)[0] is None
    assert not csv2.read_text().startswith("demos")


def test_the_released_reference_files_parse(reference_dir):
    files = sorted((reference_dir / "drex" / "bc_degradation").glob("*_batch_rewards.csv"))
    assert len(files) == 7
    for f in files:
        demos, levels = read_reference_degradation(f)
        assert demos is not None and len(demos) == 10, f.name
        assert len(levels) == 21 and {0.01, 0.05, 0.15, 1.0} <= set(levels), f.name
        assert all(len(v) == 20 for v in levels.values()), f.name
    demos, levels = read_reference_degradation(reference_dir / "drex" / "bc_degradation" / "breakout_batch_rewards.csv")
    assert demos.mean() == pytest.approx(34.5)  # D-REX paper: Breakout demo average 34.5, best 59
    assert demos.max() == 59.0
    assert levels[0.01].mean() > levels[0.5].mean() > levels[1.0].mean()


def test_bad_reference_rows_are_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("demos, 1.0, 2.0\n1.5, 3.0\n")
    with pytest.raises(ValueError, match="bad.csv:2"):
        read_reference_degradation(bad)
    bad.write_text("0.5, 1.0, oops\n")
    with pytest.raises(ValueError, match="bad.csv:1"):
        read_reference_degradation(bad)
    bad.write_text("demos, 1.0\n")
    with pytest.raises(ValueError, match="no noise rows"):
        read_reference_degradation(bad)


def test_scripted_breakout_return_falls_with_noise(tmp_path):
    """ε ∈ {0, 0.5, 1}, 6 episodes each (max 2000 steps): the mean true return strictly decreases with ε."""
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.policies import EpsilonGreedy, ScriptedBreakout
    from trex_bench.demos.store import merge_demo_sets, save_demos

    rng = np.random.default_rng(0)
    parts = [
        collect("breakout", EpsilonGreedy(ScriptedBreakout(), eps, 4, rng) if eps > 0 else ScriptedBreakout(),
                CollectConfig(6, seed=100 + i, noise=eps, n_envs=6, max_steps=2000), progress=False)
        for i, eps in enumerate([0.0, 0.5, 1.0])
    ]
    ds = merge_demo_sets(parts)
    curve = degradation_curve(ds)
    print("\n" + "\n".join(f"ε {r.noise:.2f}: {r.mean:.2f} ± {r.std:.2f} (n={r.n})" for r in curve.itertuples()))
    assert curve["noise"].tolist() == [1.0, 0.5, 0.0]
    assert curve["n"].tolist() == [6, 6, 6]
    means = curve["mean"].to_numpy()
    assert means[0] < means[1] < means[2]
    # The CLI entry writes both files from a saved set.
    save_demos(ds, tmp_path / "noise")
    lines = degradation_command(tmp_path / "noise", tmp_path / "curve")
    csv_path = tmp_path / "curve.csv"
    assert lines[-1] == f"wrote {csv_path} and {tmp_path / 'curve.png'}" and lines[1].startswith("  ε ")
    assert csv_path.exists() and (tmp_path / "curve.png").exists()
    assert sorted(read_reference_degradation(csv_path)[1]) == [0.0, 0.5, 1.0]
