"""Learning curves: read from TensorBoard logs (finished runs and runs in progress), exported to small CSVs that the
report draws without the run folders, plotted beside rl-zoo3's curve; first_above finds where a curve stays up."""

from __future__ import annotations

import json

import pytest
from torch.utils.tensorboard import SummaryWriter

from trex_bench.analysis.curve_plots import plot_curves
from trex_bench.analysis.curves import (
    MAX_POINTS,
    TRUE_SCORE_TAG,
    collect_curves,
    export_curve,
    first_above,
    load_curves,
    load_references,
    read_curve,
    read_curve_csv,
    value_at,
)
from trex_bench.cli import main


def _tb(folder, points, tag=TRUE_SCORE_TAG):
    w = SummaryWriter(str(folder))
    for step, value in points:
        w.add_scalar(tag, value, step)
    w.close()


def _run(root, name, method, points, seed=0, tag=TRUE_SCORE_TAG, budget="quick"):
    run = root / name
    (run / "agent").mkdir(parents=True)
    row = dict(game="breakout", method=method, budget=budget, schedule_steps=10_000_000, seed=seed,
               best_demo=15.0, avg_demo=5.8)
    (run / "summary.json").write_text(json.dumps({"row": row}))
    if points is not None:
        _tb(run / "agent" / "tb" / "ppo_1", points, tag)
    return run


def _running(root, name, points, demos="demos/breakout/set", kl_beta=0.0):
    """A run folder as `trex-bench pipeline` leaves it while PPO runs: config.json, .agent.tmp/{run.json,tb}."""
    run = root / "runs" / name
    (run / ".agent.tmp").mkdir(parents=True)
    (run / "config.json").write_text(json.dumps({"game": "breakout", "method": "trex", "budget": "long", "seed": 1,
                                                 "demos": demos, "profile": "paper", "ranking": ""}))
    reward = {"source": "model", "method": "trex", "transform": "sigmoid"}
    (run / ".agent.tmp" / "run.json").write_text(json.dumps({"game": "breakout", "seed": 1, "reward": reward,
                                                             "kl_beta": kl_beta, "precision": "bf16",
                                                             "config": {"schedule_steps": 10_000_000}}))
    manifest = root / demos / "manifest.json"
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"episodes": [{"return": r} for r in (2.0, 4.0, 9.0)]}))
    _tb(run / ".agent.tmp" / "tb" / "ppo_1", points)
    return run


def test_curve_is_read_from_the_tensorboard_log(tmp_path):
    run = _run(tmp_path, "breakout-trex-quick-s0", "trex", [(1024, 0.5), (2048, 1.5), (4096, 3.0)])
    c = read_curve(run)
    assert c.steps == (1024, 2048, 4096) and c.scores == pytest.approx((0.5, 1.5, 3.0))
    assert (c.game, c.method, c.budget, c.horizon, c.best_demo) == ("breakout", "trex", "quick", "10,000,000", 15.0)
    assert c.finished


def test_a_run_in_progress_is_read_from_its_temporary_agent_folder(tmp_path):
    run = _running(tmp_path, "breakout-trex-long-s1", [(1024, 1.0), (2048, 2.0)])
    c = read_curve(run)
    assert not c.finished and c.steps[-1] == 2048
    assert (c.method, c.budget, c.seed, c.precision, c.horizon) == ("trex", "long", 1, "bf16", "10,000,000")
    assert (c.best_demo, c.avg_demo) == (9.0, 5.0), "the demo set's returns, read from its manifest"


def test_a_variants_curve_is_never_the_methods(tmp_path):
    """A KL-penalised T-REX run in progress has no row to tell it apart: its curve carries the variant, kept in its
    export, drawn under its own name, and left out of the beyond-the-demonstrator table's T-REX line."""
    from trex_bench.analysis.results_doc import _beats

    steps = [1024 * i for i in range(1, 7)]
    kl = read_curve(_running(tmp_path, "breakout-trex-kl0.1-long-s1", [(s, 50.0) for s in steps], kl_beta=0.1))
    plain = read_curve(_running(tmp_path, "breakout-trex-long-s1", [(s, 2.0) for s in steps]))
    assert (kl.method, kl.variant, plain.variant) == ("trex", "trex (sigmoid+kl0.1)", "")
    assert read_curve_csv(export_curve(kl, tmp_path / "curves")).variant == "trex (sigmoid+kl0.1)"
    import pandas as pd

    from trex_bench.evaluation.leaderboard import COLUMNS

    lines = "\n".join(_beats(pd.DataFrame(columns=COLUMNS), [kl, plain], {}, {}, tmp_path, tmp_path / "plots"))
    # The plain curve (2.0, under the best demo 9), not the KL one (50 from its first point).
    assert "| breakout | trex | 9 | — (running) | — | never by 6,144 steps (run in progress) |" in lines


def test_a_run_between_ppo_and_its_evaluation_keeps_its_demo_lines(tmp_path):
    """PPO wrote agent/card.json, the evaluation has not written summary.json: the demo returns come from the config."""
    run = _running(tmp_path, "breakout-trex-long-s1", [(1024, 1.0), (2048, 2.0)])
    (run / ".agent.tmp").rename(run / "agent")
    (run / "agent" / "card.json").write_text(json.dumps({"game": "breakout", "budget": "long", "seed": 1,
                                                         "reward": {"source": "model", "method": "trex"}}))
    c = read_curve(run)
    assert c.finished and c.steps[-1] == 2048
    assert (c.best_demo, c.avg_demo) == (9.0, 5.0)


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
    assert [f.name for f in files] == ["breakout-quick.png"]  # both methods on one figure
    assert files[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="not a folder"):
        collect_curves(tmp_path / "nope")


def test_export_keeps_at_most_max_points_and_reads_back(tmp_path):
    points = [(1024 * (i + 1), float(i % 50)) for i in range(2442)]  # a 2.5M-step run: one point per rollout
    c = read_curve(_run(tmp_path, "breakout-trex-long-s0", "trex", points, budget="long"))
    path = export_curve(c, tmp_path / "curves")
    lines = path.read_text().splitlines()
    assert lines[0] == "step,true_score" and len(lines) - 1 <= MAX_POINTS
    assert lines[1] == "1024,0" and lines[-1] == f"{1024 * 2442},41", "the first and the last point are kept"
    side = json.loads(path.with_suffix(".json").read_text())
    assert side["finished"] is True and side["step_reached"] == 1024 * 2442 and side["kept_every"] == 5
    assert {"run", "game", "method", "budget", "seed", "schedule_steps", "precision", "best_demo", "avg_demo",
            "source"} <= set(side)
    back = read_curve_csv(path)
    assert (back.run, back.method, back.budget, back.horizon, back.best_demo) == (c.run, "trex", "long",
                                                                                  "10,000,000", 15.0)
    assert back.steps[::100] == c.steps[::500] and len(back.steps) == len(lines) - 1


def test_export_of_one_run_leaves_the_others_files_alone(tmp_path):
    out = tmp_path / "curves"
    out.mkdir()
    (out / "other.csv").write_text("step,true_score\n1,2\n")
    (out / "other.json").write_text("{}")
    run = _running(tmp_path, "qbert-trex-long-s0", [(1024, 1.0), (2048, 2.0)])
    assert main(["curves", "export", "--runs", str(run.parent), "--out", str(out)]) == 0
    assert (out / "other.csv").read_text() == "step,true_score\n1,2\n" and (out / "other.json").read_text() == "{}"
    side = json.loads((out / "qbert-trex-long-s0.json").read_text())
    assert side["finished"] is False and side["step_reached"] == 2048
    with pytest.raises(ValueError, match="the sidecar lacks run, game"):
        read_curve_csv(out / "other.csv")
    (out / "other.json").unlink()
    with pytest.raises(ValueError, match="no sidecar"):
        read_curve_csv(out / "other.csv")


def test_first_above_needs_k_consecutive_points_above():
    steps = [10, 20, 30, 40, 50, 60, 70, 80]
    assert first_above(steps, [0, 9, 9, 0, 9, 9, 9, 9], 5, k=3) == 50, "a dip restarts the count"
    assert first_above(steps, [9] * 8, 5, k=5) == 10
    assert first_above(steps, [0, 0, 0, 0, 9, 9, 9, 9], 5, k=5) is None, "four at the end are not five"
    assert first_above(steps, [5] * 8, 5, k=1) is None, "equal to the threshold is not above it"
    assert first_above([], [], 0) is None
    with pytest.raises(ValueError, match="k must be"):
        first_above(steps, [9] * 8, 5, k=0)
    assert value_at(steps, [float(s) for s in steps], 55) == 50.0 and value_at(steps, steps, 5) is None


def test_plot_draws_every_curve_beside_rlzoo3_and_the_cli_too(tmp_path, capsys):
    runs = tmp_path / "runs"
    _run(runs, "breakout-trex-long-s0", "trex", [(1024, 1.0), (500_000, 9.0)], budget="long")
    curves = tmp_path / "results" / "curves"
    export_curve(read_curve(runs / "breakout-trex-long-s0"), curves)
    (curves / "rlzoo3").mkdir()
    (curves / "rlzoo3" / "breakout.csv").write_text("step,score\n1000000,25\n2000000,58\n2500000,81\n")
    refs = load_references(curves / "rlzoo3")
    assert refs["breakout"].scores == (25.0, 58.0, 81.0)
    assert [c.run for c in load_curves(curves)] == ["breakout-trex-long-s0"]
    figs = tmp_path / "plots"
    assert main(["curves", "plot", "--curves", str(curves), "--out", str(figs)]) == 0
    assert (figs / "breakout-long.png").read_bytes()[:4] == b"\x89PNG" and "wrote" in capsys.readouterr().out
    (tmp_path / "file").write_text("")
    assert main(["curves", "plot", "--curves", str(curves), "--out", str(tmp_path / "file" / "x")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["curves", "export", "--runs", str(tmp_path / "nope")]) == 2
    capsys.readouterr()
    assert main(["curves", "plot", "--curves", str(tmp_path / "nope"), "--out", str(tmp_path / "empty")]) == 2
    assert "is not a folder of exported curves" in capsys.readouterr().err and not (tmp_path / "empty").exists()


def test_the_demo_lines_are_the_shared_sets_never_drexs_own():
    """D-REX's curve carries its own demonstrator's set (Qbert: best 400); the figure's demo lines are the set the
    other methods are judged on (425), whichever curve comes first; a D-REX figure alone names its set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from trex_bench.analysis.curve_plots import _draw_demos
    from trex_bench.analysis.curves import Curve

    def curve(method: str, best: float, avg: float) -> Curve:
        return Curve(f"qbert-{method}-small-s0", "qbert", method, "small", "10,000,000", 0, (1024,), (1.0,), best, avg)

    drex, gail = curve("drex", 400.0, 305.0), curve("gail", 425.0, 291.7)
    for curves, labels in (
        ([drex, gail], ["best demo 425", "average demo 292"]),
        ([drex], ["best demo 400 (drex's own set)", "average demo 305 (drex's own set)"]),
    ):
        fig, ax = plt.subplots()
        _draw_demos(ax, curves)
        assert [line.get_label() for line in ax.get_lines()] == labels
        plt.close(fig)
