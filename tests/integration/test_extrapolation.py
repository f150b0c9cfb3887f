"""The extrapolation benchmark: split checks, metrics on a real replayed split, the Figure-3 plot, the table, the CLI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from trex_bench.core.errors import ConfigError
from trex_bench.reward.extrapolation import ExtrapolationResult, check_split, figure3, score_split, update_table
from trex_bench.reward.net import RewardNet


def _split(ds, lo=(0, 1), hi=(2, 3)):
    """demos = the episodes ``lo``, unseen = ``hi`` (as two sets of one run)."""
    order = np.argsort(ds.returns)
    pick = lambda idx: dataclasses.replace(ds, episodes=tuple(ds.episodes[order[i]] for i in idx))  # noqa: E731
    return pick(lo), pick(hi)


def test_split_checks_refuse_what_is_not_extrapolation(breakout_demos):
    demos, unseen = _split(breakout_demos)
    check_split(demos, unseen)  # fine
    with pytest.raises(ValueError, match="repeats 2 episode"):
        check_split(demos, demos)
    with pytest.raises(ValueError, match="one game"):
        check_split(demos, dataclasses.replace(unseen, game="pong"))
    with pytest.raises(ValueError, match="one run"):
        check_split(dataclasses.replace(demos, demonstrator="sb3:runA/checkpoints/ppo_1_steps.zip"),
                    dataclasses.replace(unseen, demonstrator="sb3:runB/checkpoints/ppo_9_steps.zip"))
    from trex_bench.demos.store import load_demos

    root = Path(__file__).resolve().parents[2] / "demos" / "breakout"
    early, later = load_demos(root / "ppo-checkpoints"), load_demos(root / "ppo-later")
    check_split(early, later)
    with pytest.raises(ValueError, match="swapped"):  # the unseen set is the run's later checkpoints
        check_split(later, early)
    same = dataclasses.replace(demos, episodes=(demos.episodes[0], demos.episodes[0]))
    with pytest.raises(ValueError, match="no ranking"):
        check_split(same, unseen)


def test_metrics_on_a_replayed_split_and_the_figure(breakout_demos, tmp_path):
    demos, unseen = _split(breakout_demos)
    torch.manual_seed(0)
    net = RewardNet("breakout").eval()
    r = score_split(net, "trex", 0, demos, unseen, cache_dir=tmp_path / "cache")
    assert isinstance(r, ExtrapolationResult) and (r.n_demos, r.n_unseen) == (2, 2)
    assert r.best_demo == max(e.ret for e in demos.episodes)
    assert r.n_beyond_best == sum(e.ret > r.best_demo for e in unseen.episodes)
    assert [e["set"] for e in r.episodes] == ["demo", "demo", "unseen", "unseen"]
    for k in ("spearman_mean_all", "spearman_sigmoid_sum_all", "snippet_accuracy_all", "sigmoid_constant_share_unseen"):
        assert r.metrics[k] is not None and np.isfinite(r.metrics[k]), k
    assert -1 <= r.metrics["spearman_mean_all"] <= 1
    if r.n_beyond_best:
        assert 0 <= r.metrics["beyond_best_accuracy"] <= 1
    png = figure3(r, tmp_path / "fig" / "s0.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_replaces_a_seed_and_keeps_the_rest(tmp_path):
    def res(seed, rho, method="trex"):
        return ExtrapolationResult("breakout", method, seed, 12, 39, 16.0, 20, {"spearman_mean_all": rho}, ())

    csv, md = tmp_path / "x.csv", tmp_path / "x.md"
    update_table([res(0, 0.5), res(1, 0.7)], csv, md)
    update_table([res(1, 0.9), res(-1, 0.8, "released-trex")], csv, md)
    import pandas as pd

    df = pd.read_csv(csv)
    assert sorted(zip(df["method"], df["seed"], df["spearman_mean_all"], strict=True)) == [
        ("released-trex", -1, 0.8), ("trex", 0, 0.5), ("trex", 1, 0.9)]
    text = md.read_text()
    assert "| breakout | trex | 2 | 12 / 39 (20) | 0.70 ± 0.28 |" in text and "released-trex | 1 |" in text


def test_cli_names_the_missing_sets(capsys):
    from trex_bench.cli import main

    assert main(["extrapolation", "mspacman", "--seeds", "0"]) == 2  # a game no demonstrator run is planned for
    err = capsys.readouterr().err
    assert "no committed demo set demos/mspacman/ppo-checkpoints" in err and "demos collect mspacman" in err
    assert main(["extrapolation", "nogame"]) == 2


def test_cli_refuses_a_wrong_reference_folder_before_training(tmp_path, capsys):
    """--reference is checked before any net trains (it was read after, and a wrong path printed a note, exit 0)."""
    from trex_bench.cli import main

    runs = tmp_path / "runs"
    assert main(["extrapolation", "breakout", "--reference", str(tmp_path / "nope"), "--runs", str(runs)]) == 2
    assert "breakout_progress_masking.params not found" in capsys.readouterr().err
    assert not runs.exists()


def test_drex_follows_its_own_protocol_and_reuses_a_finished_run(breakout_demos, tmp_path):
    """D-REX on one checkpoint's episodes: BC, noise rollouts, a reward ranked by noise; equal returns are fine."""
    from trex_bench.core.io import read_json
    from trex_bench.demos.store import save_demos
    from trex_bench.experiment.extrapolation import train_drex_or_reuse

    demos, unseen = _split(breakout_demos)
    one_checkpoint = dataclasses.replace(demos, episodes=(demos.episodes[0], demos.episodes[0]))
    check_split(one_checkpoint, unseen, need_ranking=False)  # D-REX never reads the demos' returns
    drex_dir = save_demos(demos, tmp_path / "drex-demos")
    out = tmp_path / "runs" / "breakout-drex-smoke-s0"
    reward = train_drex_or_reuse("breakout", drex_dir, out, "smoke", 0, tmp_path / "cache", progress=False)
    card = read_json(reward / "card.json")
    assert card["method"] == "drex" and card["ranking"]["source"] == "noise"
    assert (out / "bc").is_dir() and (out / "rollouts" / "demos" / "manifest.json").exists()
    assert [p.name for p in out.parent.iterdir()] == [out.name], "no temporary folder is left behind"
    mtime = (reward / "model.safetensors").stat().st_mtime_ns
    assert train_drex_or_reuse("breakout", drex_dir, out, "smoke", 0, tmp_path / "cache", progress=False) == reward
    assert (reward / "model.safetensors").stat().st_mtime_ns == mtime, "a finished run is reused, not retrained"
    with pytest.raises(ValueError, match="another D-REX run"):
        train_drex_or_reuse("breakout", drex_dir, out, "smoke", 1, tmp_path / "cache", progress=False)


def test_prefs_run_is_refused_unless_a_finished_prefs_run_of_the_game(tmp_path):
    from trex_bench.experiment.extrapolation import prefs_reward
    from trex_bench.experiment.resolver import resolve

    with pytest.raises(ConfigError, match="not a run folder"):
        prefs_reward(tmp_path, "breakout")
    resolve("breakout", "trex", "smoke").write(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="a trex run, not prefs"):
        prefs_reward(tmp_path, "breakout")
    resolve("pong", "prefs", "smoke").write(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="a pong run, not breakout"):
        prefs_reward(tmp_path, "breakout")
    resolve("breakout", "prefs", "smoke").write(tmp_path / "config.json")
    with pytest.raises(ConfigError, match="has not finished"):
        prefs_reward(tmp_path, "breakout")
