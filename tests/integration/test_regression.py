"""Regression checks (issue 18): each check fails when its input is perturbed on purpose, and the update command
refuses to run without a reason. The perturbed runs are compared with the committed results/regression.json."""

from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from trex_bench.cli import main
from trex_bench.regression.checks import (
    CHECKS,
    EXPECTATIONS,
    FROZEN_CSV,
    CheckSkipped,
    Measured,
    PPOSpec,
    RewardSpec,
    measure_demo_set,
    measure_ppo,
    measure_reward,
    measure_tables,
)
from trex_bench.regression.expectations import compare, compare_all, load_expectations
from trex_bench.regression.extrapolation import ExtrapolationSpec, measure_extrapolation, measure_released

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def expected() -> dict:
    from trex_bench.regression.numerics import numerics, pinned_numerics

    # unpinned (tests/conftest.py pins them before torch loads), every exact metric below would fail whatever the
    # perturbation: the tests would prove nothing. (Not `from conftest import …`: two conftest modules share the name.)
    assert numerics() == pinned_numerics(), numerics()
    return load_expectations(ROOT / EXPECTATIONS)


def failing(expected: dict, check: str, measured: dict[str, Measured]) -> dict[str, str]:
    """Failing metrics of one check's measurement against the committed expectations: {metric: detail}."""
    return {r.metric: r.detail for r in compare_all(expected, {check: measured}) if not r.ok}


def test_demo_replay_fails_on_a_flipped_action_bit(tmp_path, expected):
    demos = tmp_path / "scripted-noise"
    shutil.copytree(ROOT / "demos/breakout/scripted-noise", demos)
    path = demos / "ep_0000.npz"
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    # Step 60 of this random-policy episode, RIGHT -> LEFT: the replay leaves its record at step 75. (Flips at steps
    # 5-50 are undone before the next hashed frame, the paddle being at a wall; the content hash still catches them.)
    assert arrays["actions"][60] == 2
    arrays["actions"][60] ^= 1
    np.savez_compressed(path, **arrays)

    measured = {f"breakout/scripted-noise.{k}": v for k, v in measure_demo_set(demos).items()}
    bad = {k: v for k, v in failing(expected, "demos", measured).items() if k.startswith("breakout/scripted-noise.")}
    assert set(bad) == {"breakout/scripted-noise.episodes_ok", "breakout/scripted-noise.facts_sha256"}
    assert bad["breakout/scripted-noise.episodes_ok"] == "off by -1"


def test_trex_weights_hash_fails_on_a_changed_learning_rate(expected):
    lr = expected["metrics"]["reward.trex.weights_sha256"]  # the entry exists before we spend seconds training
    assert lr["tolerance"] == "exact"
    bad = failing(expected, "reward.trex", measure_reward(ROOT, RewardSpec("trex", overrides={"lr": 2e-3})))
    assert "weights_sha256" in bad


def test_drex_weights_hash_fails_on_a_different_mask_row(expected):
    from trex_bench.core.games import get_game

    g = get_game("breakout")
    moved = dataclasses.replace(g, mask_top=g.mask_top + 1)  # row 10 (the top wall) zeroed too
    bad = failing(expected, "reward.drex", measure_reward(ROOT, RewardSpec("drex", game=moved)))
    assert "weights_sha256" in bad


def test_ppo_losses_fail_on_a_different_seed(expected):
    bad = failing(expected, "ppo.true", measure_ppo(ROOT, PPOSpec(seed=1)))
    assert {"policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl"} <= set(bad)


def test_ppo_on_a_learned_reward_fails_on_a_shifted_wrapper_reward(monkeypatch, expected):
    from trex_bench.rl.wrappers import LearnedRewardVecEnv

    assert expected["metrics"]["ppo.learned.value_loss"]["tolerance"] == "rel"
    score = LearnedRewardVecEnv.score
    # r-hat moved by 0.01 before the sigmoid: PPO is paid ~0.0025 more per step, a change no crash would reveal.
    monkeypatch.setattr(LearnedRewardVecEnv, "score", lambda self, stacks: score(self, stacks) + np.float32(0.01))
    bad = failing(expected, "ppo.learned", measure_ppo(ROOT, PPOSpec(eval_episodes=0, reward=RewardSpec("trex"))))
    assert "value_loss" in bad


def test_ppo_on_a_learned_reward_fails_on_another_transform(expected):
    spec = PPOSpec(eval_episodes=0, reward=RewardSpec("trex"), transform="raw")  # r-hat itself, not sigmoid(r-hat)
    bad = failing(expected, "ppo.learned", measure_ppo(ROOT, spec))
    assert {"value_loss", "policy_gradient_loss"} <= set(bad)


def test_released_net_fails_on_a_moved_mask_row(expected, reference_dir):
    assert failing(expected, "released.breakout", measure_released(ROOT, "breakout", reference_dir)) == {}
    bad = failing(expected, "released.breakout", measure_released(ROOT, "breakout", reference_dir, mask_shift=1))
    assert "pred_mean" in bad


def test_released_check_is_skipped_loudly_without_the_reference(tmp_path, capsys, expected):
    with pytest.raises(CheckSkipped, match="released nets are not at"):
        measure_released(ROOT, "breakout", tmp_path / "absent")
    root = tmp_path / "clone"  # a clone with no ../shared/reference beside it
    root.mkdir()
    assert main(["regression", "check", "--only", "released.breakout", "--root", str(root),
                 "--expectations", str(ROOT / EXPECTATIONS)]) == 0
    captured = capsys.readouterr()
    assert "SKIPPED released.breakout" in captured.err and "1 check(s) skipped" in captured.out


def test_extrapolation_fails_on_a_reversed_ranking(expected):
    from trex_bench.core.types import Ranking
    from trex_bench.reward.ranking import by_return

    def reversed_return(ds):
        r = by_return(ds)
        return Ranking(r.n_episodes, r.pairs[:, ::-1].copy(), "reversed return")

    assert expected["metrics"]["extrap.breakout.spearman_mean_unseen"]["tolerance"] == "band"
    bad = failing(expected, "extrap.breakout", measure_extrapolation(ROOT, ExtrapolationSpec(ranker=reversed_return)))
    assert "weights_sha256" in bad
    assert "below the band" in bad["spearman_mean_unseen"]


def test_cli_names_every_check():
    from trex_bench.cli.regression import CHECK_NAMES

    assert CHECK_NAMES == tuple(c.name for c in CHECKS)


def test_tables_pass_on_the_frozen_csv_and_fail_on_a_changed_cell(tmp_path, expected):
    baselines = ROOT / "baselines"
    assert failing(expected, "tables", measure_tables(ROOT / FROZEN_CSV, baselines)) == {}
    with open(ROOT / FROZEN_CSV, newline="") as f:
        rows = list(csv.reader(f))
    h = rows[0]
    # the file's last plain T-REX row: the latest of its seed, so the summary and the T-REX table count it
    last = max(i for i, r in enumerate(rows) if i and r[h.index("method")] == "trex"
               and r[h.index("ranking_source")] == "return" and "+kl" not in r[h.index("reward_transform")])
    rows[last][h.index("mean")] = str(float(rows[last][h.index("mean")]) + 1.0)  # its score moves by one point
    changed = tmp_path / "leaderboard.csv"
    with open(changed, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    bad = failing(expected, "tables", measure_tables(changed, baselines))
    assert "summary_sha256" in bad and "trex_sha256" in bad


@pytest.mark.slow
def test_fidelity_band_fails_on_a_reversed_ranking(expected):
    from trex_bench.core.types import Ranking
    from trex_bench.reward.ranking import by_return

    def reversed_return(ds):
        r = by_return(ds)
        return Ranking(r.n_episodes, r.pairs[:, ::-1].copy(), "reversed return")

    bad = failing(expected, "reward.trex", measure_reward(ROOT, RewardSpec("trex", ranker=reversed_return)))
    assert "below the band" in bad["spearman"]


def test_compare_says_by_how_much():
    band = {"expected": 0.8, "tolerance": "band", "band": [0.7, 0.9]}
    assert compare("r", "spearman", band, Measured(0.75, "band")).ok
    low = compare("r", "spearman", band, Measured(0.4, "band"))
    assert not low.ok and low.detail == "0.3 below the band's low end 0.7"
    rel = {"expected": 0.5, "tolerance": "rel"}
    assert compare("p", "value_loss", rel, Measured(0.500004, "rel")).ok
    assert not compare("p", "value_loss", rel, Measured(0.50001, "rel")).ok
    assert not compare("p", "new_metric", None, Measured(1)).ok


def test_update_refuses_without_a_reason(tmp_path, capsys):
    out = tmp_path / "regression.json"
    for extra in ([], ["--reason", ""], ["--reason", "   "]):
        assert main(["regression", "update", "--only", "tables", "--expectations", str(out), "--root", str(ROOT),
                     *extra]) == 2
        assert "without a reason" in capsys.readouterr().err
    assert not out.exists()


def test_check_exits_1_naming_the_failing_metric(tmp_path, capsys, expected):
    doc = json.loads(json.dumps(expected))
    doc["metrics"]["tables.trex_sha256"]["expected"] = "0" * 64
    path = tmp_path / "regression.json"
    path.write_text(json.dumps(doc))
    assert main(["regression", "check", "--only", "tables", "--expectations", str(path), "--root", str(ROOT)]) == 1
    captured = capsys.readouterr()
    assert "tables.trex_sha256" in captured.err and "hash differs" in captured.err
    assert "tables.summary_sha256" not in captured.err  # only the tampered metric fails
    assert main(["regression", "check", "--only", "tables", "--root", str(ROOT),
                 "--expectations", str(ROOT / EXPECTATIONS)]) == 0


def test_weight_hash_holds_where_mkl_and_onednn_would_pick_other_kernels(expected):
    """Another CPU, emulated: MKL and oneDNN held to AVX2 (an AVX2-only CPU, or a vendor whose MKL branch differs).

    Unpinned, ``MKL_ENABLE_INSTRUCTIONS=AVX2`` alone moved this hash on an AVX-512 Xeon (2026-12-02); pinned, the
    check passes against the expectations recorded on whatever CPU wrote them.
    """
    assert expected["metrics"]["reward.trex.weights_sha256"]["tolerance"] == "exact"
    env = {**os.environ, "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2", "OMP_NUM_THREADS": "1"}
    for name in ("ATEN_CPU_CAPABILITY", "MKL_CBWR"):  # the CLI must pin them itself, not inherit this process's
        env.pop(name, None)
    r = subprocess.run([sys.executable, "-m", "trex_bench", "regression", "check", "--only", "reward.trex",
                        "--root", str(ROOT), "--expectations", str(ROOT / EXPECTATIONS)],
                       env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ATen AVX2, MKL_CBWR=COMPATIBLE,STRICT" in r.stdout and "warning" not in r.stderr


def test_pinning_after_torch_loaded_changes_nothing_and_says_so(monkeypatch):
    from trex_bench.regression.numerics import PINNED_ENV, pin_numerics

    assert pin_numerics() is None  # this process was pinned by conftest before torch loaded
    monkeypatch.setenv("MKL_CBWR", "AUTO")  # as if torch had loaded with another MKL branch
    why = pin_numerics()
    assert why is not None and "torch was loaded before the numerics were pinned" in why
    assert os.environ["MKL_CBWR"] == "AUTO" != PINNED_ENV["MKL_CBWR"]  # nothing changed behind torch's back


def test_workers_measure_what_one_process_measures(tmp_path, expected):
    """``--workers 2`` spreads the checks (and the demo sets) over spawned processes: the same values, the same keys,
    in the same order, and a skipped check still reported as skipped."""
    from trex_bench.regression.runner import run_checks

    one = run_checks(ROOT, ["ppo.true", "tables"], workers=1)
    two = run_checks(ROOT, ["ppo.true", "tables"], workers=2)
    assert two[0] == one[0] and list(two[0]) == ["ppo.true", "tables"]
    assert not failing(expected, "ppo.true", two[0]["ppo.true"])

    root = tmp_path / "root"
    for name in ("breakout/scripted-noise", "breakout/ppo-checkpoints"):
        shutil.copytree(ROOT / "demos" / name, root / "demos" / name)
    measured, seconds, skipped = run_checks(root, ["demos", "released.breakout"], workers=2)
    assert sorted(measured["demos"]) == sorted(
        f"breakout/{s}.{m}" for s in ("ppo-checkpoints", "scripted-noise") for m in ("episodes_ok", "facts_sha256")
    )
    bad = failing(expected, "demos", measured["demos"])
    assert not {k: v for k, v in bad.items() if k in measured["demos"]} and seconds["demos"] > 0
    assert "released.breakout" in skipped and "released.breakout" not in measured  # no ../shared/reference there
