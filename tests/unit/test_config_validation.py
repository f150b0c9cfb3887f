"""One config validation: a value in a ``--config`` file is checked exactly as the same value from the command line
or from Python, for every stage config (reward, bc, ppo, eval, kl), before the first folder is made; and the inputs a
run only read late (``--kl-to``, ``--cache``, ``extrapolation --results``) are checked before any work too."""

from __future__ import annotations

import json
import math

import pytest

from trex_bench.bc.config import BCConfig
from trex_bench.cli import main
from trex_bench.core.errors import ConfigError
from trex_bench.experiment.config import ExperimentConfig
from trex_bench.experiment.resolver import resolve
from trex_bench.reward.config import TrainConfig
from trex_bench.rl.config import KLSpec, PPOConfig


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _edited(tmp_path, method, path, value):
    """``resolve(breakout, method, smoke)`` as JSON with one value set at ``path`` (``("ppo", "gamma")``), written as
    a config file the way a user would edit one (``NaN``/``Infinity`` as Python's json writes them)."""
    data = resolve("breakout", method, "smoke").to_json()
    *outer, key = path
    node = data
    for name in outer:
        node = node[name]
    node[key] = value
    (tmp_path / "config.json").write_text(json.dumps(data))
    return tmp_path / "config.json"


CASES = [
    ("trex", ("reward", "lr"), math.inf, "TrainConfig.lr must be a finite number, got inf"),
    ("trex", ("reward", "lr"), math.nan, "TrainConfig.lr must be a finite number, got nan"),
    ("trex", ("reward", "val_frac"), 1.5, "TrainConfig.val_frac must be in [0, 1), got 1.5"),
    ("trex", ("reward", "n_pairs"), "many", "TrainConfig.n_pairs must be an integer, got 'many'"),
    ("trex", ("reward", "select"), "best", "TrainConfig.select must be one of val_accuracy, val_loss, last"),
    ("bc", ("bc", "lr"), -1, "BCConfig.lr must be > 0, got -1"),
    ("bc", ("bc", "max_seconds"), math.inf, "BCConfig.max_seconds must be a finite number, got inf"),
    ("constant", ("ppo", "learning_rate"), math.nan, "PPOConfig.learning_rate must be a finite number, got nan"),
    ("constant", ("ppo", "learning_rate"), -1, "PPOConfig.learning_rate must be > 0, got -1"),
    ("constant", ("ppo", "total_steps"), "many", "PPOConfig.total_steps must be an integer, got 'many'"),
    ("constant", ("ppo", "gamma"), 2.0, "PPOConfig.gamma must be > 0 and <= 1, got 2.0"),
    ("constant", ("ppo", "linear_lr"), "yes", "PPOConfig.linear_lr must be true or false, got 'yes'"),
    ("constant", ("eval", "episodes"), True, "evaluation episodes must be an integer >= 1, got True"),
    ("constant", ("kl",), {"to": "bc", "beta": math.nan}, "--kl-beta must be a finite number > 0"),
    ("constant", ("kl",), {"to": 5, "beta": 0.1}, "KLSpec.to must be a BC model folder"),
    ("constant", ("seed",), True, "ExperimentConfig.seed must be an integer, got True"),
    ("constant", ("device",), "bogus", "not a torch device: 'bogus'"),
    ("constant", ("demos",), 7, "demos must be a path"),
]


@pytest.mark.parametrize("method, path, value, expected", CASES, ids=[".".join(c[1]) + f"={c[2]!r}" for c in CASES])
def test_a_config_file_value_is_validated_before_any_folder(tmp_path, capsys, method, path, value, expected):
    config = _edited(tmp_path, method, path, value)
    err = _err(capsys, ["pipeline", "--config", str(config), "--out", str(tmp_path / "run"),
                        "--leaderboard", str(tmp_path / "lb.csv"), "--no-progress"])
    assert str(config) in err and expected in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]  # no run folder, no leaderboard


@pytest.mark.parametrize("build", [
    lambda: TrainConfig(lr=math.inf),
    lambda: TrainConfig(val_frac=1.5),
    lambda: BCConfig(batch_size=True),
    lambda: PPOConfig("x", total_steps="many"),
    lambda: PPOConfig("x", total_steps=64, n_envs=2, n_steps=32, batch_size=32, max_grad_norm=math.nan),
    lambda: KLSpec("bc", math.inf),
    lambda: resolve("breakout", "constant", "smoke", seed=True),
    lambda: resolve("breakout", "constant", "smoke", device="bogus"),
    lambda: resolve("breakout", "constant", "smoke", eval_episodes=True),
])
def test_the_same_checks_hold_whatever_built_the_config(build):
    with pytest.raises(ConfigError):
        build()


def test_a_directory_as_the_config_path_is_named_so(tmp_path, capsys):
    assert "is a directory" in _err(capsys, ["pipeline", "--config", str(tmp_path)])


def test_the_config_files_device_is_kept_unless_device_is_given(tmp_path):
    from trex_bench.cli import build_parser
    from trex_bench.cli.pipeline import experiment

    resolve("breakout", "constant", "smoke", device="cuda:0").write(tmp_path / "c.json")
    args = build_parser().parse_args(["pipeline", "--config", str(tmp_path / "c.json")])
    args.argv = ["trex-bench", "pipeline", "--config", str(tmp_path / "c.json")]
    assert experiment(args).device == "cuda:0"  # it used to become "cpu" silently
    args = build_parser().parse_args(["pipeline", "--config", str(tmp_path / "c.json"), "--device", "cpu"])
    args.argv = ["trex-bench", "pipeline", "--config", str(tmp_path / "c.json"), "--device", "cpu"]
    assert experiment(args).device == "cpu"


@pytest.fixture
def reward_and_agent(tmp_path):
    from trex_bench.reward.net import RewardNet, save_model

    reward = save_model(RewardNet("breakout"), tmp_path / "reward", {"profile": "paper", "method": "trex"})
    (tmp_path / "agent").mkdir()
    (tmp_path / "agent" / "card.json").write_text(json.dumps({"kind": "agent", "game": "breakout"}))
    return {"reward": reward, "agent": tmp_path / "agent"}


@pytest.mark.parametrize("what, words", [("reward", "is a reward model"), ("agent", "is an agent")])
def test_kl_to_that_is_not_a_bc_policy_is_refused_before_any_folder(tmp_path, capsys, reward_and_agent, what, words):
    err = _err(capsys, ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--kl-to",
                        str(reward_and_agent[what]), "--kl-beta", "0.1", "--out", str(tmp_path / "run"),
                        "--leaderboard", str(tmp_path / "lb.csv")])
    assert words in err and "not a BC policy" in err and not (tmp_path / "run").exists()
    # a sweep plans nothing with it, also in a dry run and also when its only β is 0
    for betas in ("0,0.1", "0"):
        err = _err(capsys, ["sweep", "--games", "breakout", "--methods", "constant", "--budget", "smoke",
                            "--kl-to", str(reward_and_agent[what]), "--kl-betas", betas, "--dry-run",
                            "--root", str(tmp_path / "runs")])
        assert words in err and not (tmp_path / "runs").exists()


def test_cache_that_is_a_file_is_refused_before_any_folder(tmp_path, capsys):
    (tmp_path / "cache").write_text("x")
    err = _err(capsys, ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--cache",
                        str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--leaderboard",
                        str(tmp_path / "lb.csv")])
    assert "is a file, not a folder" in err and not (tmp_path / "run").exists()


def test_extrapolation_results_that_cannot_be_written_are_refused_before_training(tmp_path, capsys):
    (tmp_path / "results").write_text("a file where the results folder should be")
    err = _err(capsys, ["extrapolation", "breakout", "--seeds", "0", "--budget", "smoke", "--no-progress",
                        "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "results")])
    assert "results is a file" in err and not (tmp_path / "runs").exists()


def test_json_never_gets_nan_or_infinity(tmp_path):
    from trex_bench.core.io import write_json

    with pytest.raises(ValueError, match=r"metrics\.members\[1\]\.loss is not a finite number"):
        write_json(tmp_path / "x.json", {"metrics": {"members": [{"loss": 1.0}, {"loss": math.nan}]}})
    assert not (tmp_path / "x.json").exists()
    assert ExperimentConfig  # the config module's JSON goes through write_json too
