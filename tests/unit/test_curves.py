"""Learning curves from TensorBoard logs: read, grouped and plotted; a run without a log is skipped and named."""

from __future__ import annotations

import json

import pytest
from torch.utils.tensorboard import SummaryWriter

from trex_bench.analysis.curves import TRUE_SCORE_TAG, collect_curves, plot_curves, read_curve


def _run(root, name, method, points, seed=0, tag=TRUE_SCORE_TAG):
    run = root / name
    (run / "agent").mkdir(parents=True)
    row = dict(game="breakout", method=method, budget="quick", schedule_steps=10_000_000, seed=seed,
               best_demo=15.0, avg_demo=5.8)
    (run / "summary.json").write_text(json.dumps({"row": row}))
    if points is not None:
        w = SummaryWriter(str(run / "agent" / "tb" / "ppo_1"))
        for step, value in points:
            w.add_scalar(tag, value, step)
        w.close()
    return run


def test_curve_is_read_from_the_tensorboard_log(tmp_path):
    run = _run(tmp_path, "breakout-trex-quick-s0", "trex", [(1024, 0.5), (2048, 1.5), (4096, 3.0)])
    c = read_curve(run)
    assert c.steps == (1024, 2048, 4096) and c.scores == pytest.approx((0.5, 1.5, 3.0))
    assert (c.game, c.method, c.budget, c.horizon, c.best_demo) == ("breakout", "trex", "quick", "10,000,000", 15.0)


def test_runs_without_logs_are_skipped_and_named(tmp_path):
    _run(tmp_path, "a-trex", "trex", [(1024, 1.0), (2048, 2.0)])
    _run(tmp_path, "b-constant", "constant", [(1024, 1.0)], seed=1)
    _run(tmp_path, "c-no-tb", "ppo-true", None)
    _run(tmp_path, "d-other-tag", "ppo-true", [(1024, 1.0)], tag="train/loss")
    (tmp_path / "extrapolation").mkdir()  # not a pipeline run: ignored silently
    curves, skipped = collect_curves(tmp_path)
    assert sorted(c.run for c in curves) == ["a-trex", "b-constant"]
    assert [name for name, _ in skipped] == ["c-no-tb", "d-other-tag"]
    assert "no TensorBoard log" in skipped[0][1] and TRUE_SCORE_TAG in skipped[1][1]
    files = plot_curves(curves, tmp_path / "plots")
    assert [f.name for f in files] == ["breakout-quick-10000000.png"]  # both methods on one figure
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not a folder"):
        collect_curves(tmp_path / "nope")
