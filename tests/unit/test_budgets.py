"""Budgets are counts of steps, and the CPU/GPU ones are prefixes of the full-length PPO schedule.

Issue: `quick`/`small` annealed lr and clip to 0 over their own 120k/500k steps (a shrunken run, half the score), and
the reward budgets stopped at a wall-time cap (the same seed gave another net on a busy machine).
"""

from __future__ import annotations

import csv
import time

import numpy as np
import pytest
import torch

from trex_bench.core.io import stable_hash
from trex_bench.evaluation.leaderboard import (
    COLUMNS,
    LEGACY_COLUMNS,
    append_row,
    read_leaderboard,
)
from trex_bench.evaluation.summary import summarize_rows
from trex_bench.experiment.budgets import BUDGETS as BUDGET_TABLE
from trex_bench.experiment.budgets import ZOO_HORIZON, bc_config, reward_config
from trex_bench.reward.train import train_reward

BUDGETS = {name: b.ppo for name, b in BUDGET_TABLE.items()}


@pytest.mark.parametrize("budget", ["quick", "small", "medium", "long", "gpu"])
def test_a_budget_is_the_first_n_steps_of_the_full_length_schedule(budget):
    cfg = BUDGETS[budget]
    full = cfg.replace(total_steps=ZOO_HORIZON, schedule_steps=None)  # the whole rl-zoo3 run
    assert cfg.horizon == ZOO_HORIZON and cfg.total_steps < ZOO_HORIZON
    for n in (0, 1_024, cfg.total_steps // 2, cfg.total_steps):
        assert cfg.lr_at(n) == pytest.approx(full.lr_at(n), rel=1e-9, abs=1e-15)
        assert cfg.clip_at(n) == pytest.approx(full.clip_at(n), rel=1e-9, abs=1e-15)
        assert cfg.lr_at(n) == pytest.approx(2.5e-4 * (1 - n / ZOO_HORIZON), rel=1e-9)
    # at its last step a prefix (at most a quarter of the schedule) is still near its start, not annealed to 0
    assert cfg.lr_at(cfg.total_steps) >= 0.75 * cfg.learning_rate


def test_a_run_annealed_over_its_own_length_still_ends_at_zero():
    own = BUDGETS["small"].replace(schedule_steps=None)
    assert own.lr_at(own.total_steps) == pytest.approx(0.0, abs=1e-15)
    with pytest.raises(ValueError, match="prefix"):
        BUDGETS["small"].replace(schedule_steps=1_000)


def test_no_named_budget_has_a_wall_time_cap():
    assert all(c.max_seconds is None for c in BUDGETS.values())
    for budget in BUDGET_TABLE:
        for method in ("trex", "drex"):
            assert reward_config(budget, method).max_seconds is None, (budget, method)
    assert all(bc_config(b).max_seconds is None for b in BUDGET_TABLE)


class _SlowFrames:
    """A frame source that sleeps on every lookup: a busy machine."""

    def __init__(self, source, delay: float) -> None:
        self.source, self.delay = source, delay
        self.frames, self.offsets, self.lengths = source.frames, source.offsets, source.lengths

    def stack_index(self, ep, t):
        time.sleep(self.delay)
        return self.source.stack_index(ep, t)


def test_the_same_seed_gives_bit_identical_reward_weights_however_slow_the_machine(breakout_demos, tmp_path):
    from trex_bench.demos.frames import FrameCache
    from trex_bench.reward.ranking import by_return

    cache = FrameCache(breakout_demos, tmp_path / "cache")
    cfg = reward_config("smoke", n_pairs=120, passes=2.0)
    weights = []
    for source in (cache, _SlowFrames(cache, delay=0.02)):
        net, metrics = train_reward(source, by_return(breakout_demos), cfg, "breakout",
                                                 np.random.default_rng(7))
        weights.append({k: v.clone() for k, v in net.state_dict().items()})
        assert metrics["stopped"] != ["time cap"]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def _row(seed=0, mean=5.0, schedule_steps=None, **kw):
    return dict(game="breakout", method="ppo-true", seed=seed, mean=mean, n_episodes=30, best_demo=16.0,
                avg_demo=7.25, budget="small", rl_steps=500_736, env_profile="paper", reward_transform="clip",
                config_hash=stable_hash({"s": schedule_steps}), schedule_steps=schedule_steps) | kw


def test_rows_of_another_schedule_horizon_are_never_grouped(tmp_path):
    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0, mean=8.7, schedule_steps=None))  # annealed over its own 500k (before the change)
    append_row(path, _row(seed=0, mean=16.3, schedule_steps=ZOO_HORIZON))
    out = summarize_rows(read_leaderboard(path), ("game", "method", "budget"))
    assert len(out) == 2 and sorted(out["mean"]) == [8.7, 16.3]
    assert out["superseded"].sum() == 0  # the prefix run did not supersede the old seed-0 row, nor the reverse


def test_a_leaderboard_with_the_old_header_still_reads_and_is_upgraded_on_append(tmp_path):
    path = tmp_path / "lb.csv"
    old_row = {c: "" for c in LEGACY_COLUMNS} | {"game": "breakout", "method": "trex", "seed": "0", "mean": "4.2",
                                                   "budget": "small", "rl_steps": "500736"}
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(LEGACY_COLUMNS)
        w.writerow([old_row[c] for c in LEGACY_COLUMNS])
    before = path.read_text()
    df = read_leaderboard(path)
    assert list(df.columns) == list(COLUMNS) and df.loc[0, "mean"] == 4.2 and np.isnan(df.loc[0, "schedule_steps"])
    assert path.read_text() == before  # reading never rewrites
    append_row(path, _row(schedule_steps=ZOO_HORIZON))
    rows = list(csv.reader(path.open(newline="")))
    assert tuple(rows[0]) == COLUMNS and all(len(r) == len(COLUMNS) for r in rows)
    assert rows[1][: len(LEGACY_COLUMNS)] == [old_row[c] for c in LEGACY_COLUMNS]
    assert rows[1][len(LEGACY_COLUMNS):] == ["", "", ""]
    assert rows[2][COLUMNS.index("schedule_steps")] == str(ZOO_HORIZON)


def test_a_demonstrator_run_on_to_a_named_budgets_length_takes_its_name():
    """Enduro's `medium` demonstrator, run on to 50 checkpoints every 50k steps, is a `long` run: its row says so."""
    from trex_bench.experiment.demonstrators import demonstrator_config

    cfg = demonstrator_config("medium", checkpoints=50, checkpoint_every=50_000)
    assert (cfg.name, cfg.total_steps, cfg.checkpoint_every) == ("long", 2_500_000, 50_000)
    assert cfg.replace(checkpoint_every=BUDGETS["long"].checkpoint_every) == BUDGETS["long"]
    within = demonstrator_config("medium", checkpoints=12, checkpoint_every=50_000)  # 600k: inside medium's 1M
    assert (within.name, within.total_steps) == ("medium", 1_000_000)
    odd = demonstrator_config("small", checkpoints=30, checkpoint_every=20_000)  # 600k: no budget is that long
    assert (odd.name, odd.total_steps) == ("small", 600_000) and "run on to 600,000 steps" in odd.source
