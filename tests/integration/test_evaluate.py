"""Evaluation harness: exactly N full games, the first N started, seeded, compared with the demos."""

from __future__ import annotations

from pathlib import Path

import pytest

from trex_bench.core.io import read_json
from trex_bench.evaluation.evaluate import episode_seed, evaluate_agent
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import train_ppo


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory):
    cfg = PPOConfig("tiny", total_steps=32, n_envs=2, n_steps=16, batch_size=16, n_epochs=1)
    return train_ppo(PPOJob("breakout", cfg, seed=0), tmp_path_factory.mktemp("agent"), progress=False)


def test_exactly_the_first_n_started_episodes(agent_dir):
    rep = evaluate_agent(agent_dir, episodes=3, seed=5, n_envs=2)
    assert rep["episodes"] == 3 and len(rep["returns"]) == 3 and len(rep["lengths"]) == 3
    # the first 2 games are the envs' seeded starts, the 3rd the next game of whichever env finished first
    starts = sorted(map(tuple, rep["episode_starts"]))
    assert sorted(s for s, r in starts if r == 0) == sorted(episode_seed(5, k) for k in range(2))
    assert [r for _, r in starts].count(1) == 1
    assert all(length > 0 for length in rep["lengths"]) and all(r >= 0 for r in rep["returns"])
    assert rep["mean"] == pytest.approx(sum(rep["returns"]) / 3)
    assert rep["min"] <= rep["mean"] <= rep["max"]
    assert rep["best_demo"] is None and rep["beats_best_demo"] is None
    assert rep["human_normalized"] == pytest.approx((rep["mean"] - 1.7) / (30.5 - 1.7))
    on_disk = read_json(agent_dir / "eval.json")
    assert on_disk["returns"] == rep["returns"] and "stochastic" in on_disk["protocol"]


def test_full_games_not_lives_and_same_seed_same_games(agent_dir, tmp_path):
    a = evaluate_agent(agent_dir, episodes=2, seed=1, n_envs=4, out=tmp_path / "a.json")  # n_envs capped at 2
    b = evaluate_agent(agent_dir, episodes=2, seed=1, n_envs=2, out=tmp_path)
    assert a["n_envs"] == 2 and (tmp_path / "a.json").exists() and (tmp_path / "eval.json").exists()
    assert a["returns"] == b["returns"] and a["lengths"] == b["lengths"]
    # a Breakout game has 5 lives: far longer than the tens of steps one life lasts for a near-random policy
    assert min(a["lengths"]) > 100


def test_compares_with_the_demo_set(agent_dir, tmp_path, breakout_demos):
    from trex_bench.demos.store import save_demos

    demos = save_demos(breakout_demos, tmp_path / "demos")
    rep = evaluate_agent(agent_dir, episodes=2, seed=0, n_envs=2, demos_dir=demos, out=tmp_path, deterministic=False)
    assert rep["best_demo"] == pytest.approx(float(breakout_demos.returns.max()))
    assert rep["avg_demo"] == pytest.approx(float(breakout_demos.returns.mean()))
    assert rep["beats_best_demo"] == (rep["mean"] > rep["best_demo"])
    assert rep["demos_hash"] == breakout_demos.content_hash()


def test_bad_input(agent_dir, tmp_path):
    with pytest.raises(ValueError, match="not an agent folder"):
        evaluate_agent(tmp_path)
    with pytest.raises(ValueError, match=">= 1"):
        evaluate_agent(agent_dir, episodes=0)


def test_cli_trains_and_evaluates(tmp_path, capsys):
    from trex_bench.cli import main

    out = tmp_path / "agent"
    assert main(["rl", "train", "breakout", "--reward", "constant", "--budget", "smoke", "--seed", "0",
                 "--out", str(out), "--no-progress"]) == 0
    assert (out / "agent.zip").exists()
    assert main(["evaluate", "--agent", str(out), "--episodes", "2", "--envs", "2", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "2 full games" in text and str(out / "eval.json") in text
    assert main(["rl", "train", "pong", "--reward", str(tmp_path / "none"), "--budget", "smoke", "--seed", "0",
                 "--out", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_appends_the_agents_row_with_its_method(agent_dir, tmp_path, capsys):
    """A demonstrator run's final agent becomes its game's ppo-true row (`evaluate --leaderboard`)."""
    from trex_bench.cli import main
    from trex_bench.evaluation.leaderboard import read_leaderboard

    lb = tmp_path / "lb.csv"
    demos = Path(__file__).resolve().parents[2] / "demos" / "breakout" / "scripted-noise"
    assert main(["evaluate", "--agent", str(agent_dir), "--episodes", "2", "--out", str(tmp_path / "e.json"),
                 "--leaderboard", str(lb)]) == 2  # no --demos: refused before playing
    assert main(["evaluate", "--agent", str(agent_dir), "--episodes", "2", "--out", str(tmp_path / "e.json"),
                 "--demos", str(demos), "--leaderboard", str(lb), "--deterministic"]) == 2  # off the protocol
    assert "drop --deterministic" in capsys.readouterr().err
    assert not lb.exists() and not (tmp_path / "e.json").exists()
    assert main(["evaluate", "--agent", str(agent_dir), "--episodes", "2", "--out", str(tmp_path / "e.json"),
                 "--demos", str(demos), "--leaderboard", str(lb), "--no-progress"]) == 0
    df = read_leaderboard(lb)
    assert len(df) == 1 and df.loc[0, "method"] == "ppo-true" and df.loc[0, "best_demo"] == 23.0
    assert df.loc[0, "reward_transform"] == "clip"  # as the pipeline's ppo-true rows: the same variant
    assert df.loc[0, "n_episodes"] == 2 and df.loc[0, "schedule_steps"] > 0


# -- a BC policy is checked against the game it is played on (issue 16, D8) -------------------------------------
@pytest.fixture
def bc_dir(tmp_path):
    import numpy as np

    from trex_bench.bc.folder import save_bc
    from trex_bench.bc.train import BCNet, BCPolicy

    policy = BCPolicy(BCNet(4), "breakout", ["NOOP", "FIRE", "RIGHT", "LEFT"], rng=np.random.default_rng(0))
    return save_bc(policy, tmp_path / "bc", dict(profile="paper"))


def _edit_card(folder, **changes):
    import json

    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, **changes}))


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(game="pong"), "over 4 actions, but this env has 6"),  # a Breakout clone's card edited to say pong
        (dict(action_meanings=["LEFT", "RIGHT", "FIRE", "NOOP"]), "over actions LEFT RIGHT FIRE NOOP, but breakout"),
    ],
    ids=["other-game", "other-action-order"],
)
def test_bc_policy_over_another_action_set_is_refused(bc_dir, tmp_path, capsys, changes, match):
    from trex_bench.cli import main

    _edit_card(bc_dir, **changes)
    with pytest.raises(ValueError, match=match):
        evaluate_agent(bc_dir, episodes=1, n_envs=1, out=tmp_path / "e.json")
    assert main(["evaluate", "--agent", str(bc_dir), "--episodes", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(bc_dir) in err
    assert not (tmp_path / "e.json").exists() and not (bc_dir / "eval.json").exists()


def test_agent_of_another_game_than_asked_is_refused(bc_dir, tmp_path, capsys):
    from trex_bench.cli import main

    with pytest.raises(ValueError, match="an agent of breakout, not pong"):
        evaluate_agent(bc_dir, episodes=1, n_envs=1, out=tmp_path / "e.json", game="pong")
    assert main(["evaluate", "--agent", str(bc_dir), "--game", "pong", "--no-progress"]) == 2
    assert "not pong" in capsys.readouterr().err
    rep = evaluate_agent(bc_dir, episodes=1, n_envs=1, out=tmp_path / "e.json", game="breakout")
    assert rep["game"] == "breakout" and rep["episodes"] == 1
