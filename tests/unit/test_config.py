"""The one experiment config (issue 14): one budget table, one resolver, JSON round trip, run names, early checks."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from trex_bench.core.errors import ConfigError, TrexBenchError
from trex_bench.experiment import budgets, config
from trex_bench.experiment.budgets import BUDGETS
from trex_bench.experiment.config import REPO_DEMOS, ExperimentConfig
from trex_bench.experiment.naming import run_name
from trex_bench.experiment.resolver import resolve


def test_the_budget_table_is_the_only_one():
    """Stage modules sit below the experiment layer and keep no view of the budget table of their own."""
    from trex_bench.bc import train as bc_train
    from trex_bench.reward import drex
    from trex_bench.reward import train as reward_train
    from trex_bench.rl import ppo

    for module in (bc_train, drex, reward_train, ppo):
        assert not {"BUDGETS", "BC_BUDGETS", "DREX_ROLLOUTS", "budget_config", "get_ppo_config"} & set(vars(module))
    for name, b in BUDGETS.items():
        assert budgets.ppo_config(name) == b.ppo and budgets.bc_config(name).lr == b.bc.get("lr", budgets.bc_config(name).lr)
    # paper-zoo was a PPO-only budget the pipeline refused; now every budget resolves for every method
    for method in config.METHODS:
        assert resolve("breakout", method, "paper-zoo").budget == "paper-zoo"


def test_the_cli_choices_come_from_the_table():
    from trex_bench.cli import build_parser

    sub = build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for command in ("pipeline", "sweep"):
        budget = next(a for a in sub[command]._actions if a.dest == "budget")
        assert list(budget.choices) == list(BUDGETS)
    for group in ("reward", "bc"):
        train = sub[group]._subparsers._group_actions[0].choices["train"]  # type: ignore[union-attr]
        assert list(next(a for a in train._actions if a.dest == "budget").choices) == list(BUDGETS)


@pytest.mark.parametrize("method", list(config.METHODS))
def test_json_round_trip(method, tmp_path):
    cfg = resolve("breakout", method, "quick", 3, eval_episodes=5, profile="machado", precision="bf16")
    assert ExperimentConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    cfg.write(tmp_path / "config.json")
    assert ExperimentConfig.read(tmp_path / "config.json") == cfg


@pytest.mark.parametrize(("edit", "msg"), [
    (lambda d: d.update(schema=99), "schema"),
    (lambda d: d.update(colour="red"), "unknown experiment config keys: colour"),
    (lambda d: d.pop("eval"), "lacks: eval"),
    (lambda d: d["reward"].update(lr=-1.0), "TrainConfig.lr must be > 0, got -1.0"),
    (lambda d: d["reward"].update(speed=3), "reward"),
    (lambda d: d.update(seed=-1), "--seed"),
    (lambda d: d.update(bc={"lr": 1e-4}), "does not run a bc stage"),
])
def test_a_bad_config_file_is_one_config_error(edit, msg):
    data = resolve("breakout", "trex", "smoke").to_json()
    edit(data)
    with pytest.raises(ConfigError, match=msg):
        ExperimentConfig.from_json(data)


def test_editing_a_budgets_reward_value_changes_the_reward_config(monkeypatch):
    """The reward stage is keyed by the resolved ``TrainConfig`` (pipeline._reward_stage): an edited budget value
    reaches it, so ``--resume`` retrains instead of reusing a stale net (tests/test_protocol.py runs it)."""
    before = resolve("breakout", "trex", "smoke").reward
    edited = dataclasses.replace(BUDGETS["smoke"], reward=dict(BUDGETS["smoke"].reward) | {"lr": 5e-4})
    monkeypatch.setitem(BUDGETS, "smoke", edited)
    after = resolve("breakout", "trex", "smoke").reward
    assert after.lr == 5e-4 and dataclasses.asdict(after) != dataclasses.asdict(before)


def _name(**kw) -> str:
    return run_name(resolve(**({"game": "breakout", "method": "constant", "budget": "smoke"} | kw)))


def test_run_names_differ_by_profile_eval_episodes_and_kl_folder(tmp_path):
    """Issue 14: two experiments differing only here shared one folder, and a sweep skipped the second."""
    kl = dict(kl_beta=0.1)
    names = [
        _name(),
        _name(profile="machado"),
        _name(eval_episodes=7),
        _name(kl_to=tmp_path / "bc-a", **kl),
        _name(kl_to=tmp_path / "bc-b", **kl),
        _name(seed=1),
        _name(ppo={"n_epochs": 3}),  # an edited stage config (e.g. from a config.json)
    ]
    assert len(set(names)) == len(names), names
    assert _name() == "breakout-constant-smoke-s0" == _name(eval_episodes=2)  # smoke's own default: the same run
    assert _name(profile="machado") == "breakout-constant-machado-smoke-s0"
    assert _name(eval_episodes=7).startswith("breakout-constant-smoke-s0-")  # readable prefix + short hash
    assert _name(device="cuda") == _name()  # where it runs is not the experiment


def test_one_seed_limit_and_finite_kl_beta():
    with pytest.raises(ConfigError, match="--seed"):
        resolve("breakout", "trex", "smoke", 2**32)
    for beta in (float("inf"), float("nan")):
        with pytest.raises(ConfigError, match="finite"):
            resolve("breakout", "constant", "smoke", kl_to="bc", kl_beta=beta)
    assert issubclass(ConfigError, TrexBenchError) and issubclass(ConfigError, ValueError)


@pytest.mark.parametrize("kw", [
    dict(device="bogus"),
    dict(method="trex", ranking="checkpoint", demos=REPO_DEMOS / "breakout" / "scripted-noise"),  # no checkpoint indices
    dict(method="constant", kl_to="no-such-bc", kl_beta=0.1),
])
def test_pipeline_refuses_before_making_any_folder(tmp_path, kw):
    """D6: a bad option used to be found after folders were made (and a rerun was refused as "already exists")."""
    from trex_bench.experiment.options import PipelineConfig
    from trex_bench.experiment.pipeline import run_pipeline

    cfg = PipelineConfig(**({"game": "breakout", "method": "constant", "budget": "smoke"} | kw))
    with pytest.raises(ConfigError):
        run_pipeline(cfg.resolve(), out=tmp_path / "run", leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    assert not (tmp_path / "run").exists()


def test_pipeline_config_option_runs_the_file(tmp_path):
    """``pipeline --config FILE`` is the experiment of the file; other experiment options with it are refused."""
    from trex_bench.cli import build_parser
    from trex_bench.cli.pipeline import experiment

    cfg = resolve("breakout", "drex", "smoke", 4, profile="machado", eval_episodes=3)
    cfg.write(tmp_path / "run.json")
    assert experiment(build_parser().parse_args(["pipeline", "--config", str(tmp_path / "run.json")])) == cfg
    with pytest.raises(ConfigError, match="drop method"):
        experiment(build_parser().parse_args(["pipeline", "--config", str(tmp_path / "run.json"), "--method", "bc"]))
    with pytest.raises(ConfigError, match="needs game"):
        experiment(build_parser().parse_args(["pipeline", "--method", "bc", "--budget", "smoke"]))


def test_profile_machado_reaches_the_env_at_smoke(tmp_path, monkeypatch):
    """``pipeline --profile machado`` was unreachable (no flag; the sweep never passed one). Now the agent's card and
    the row show the sticky-action profile it was trained and evaluated under."""
    import numpy as np

    from trex_bench.cli import main
    from trex_bench.core.io import read_json
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.policies import RandomPolicy
    from trex_bench.demos.store import save_demos
    from trex_bench.rl.config import PPOConfig

    tiny = PPOConfig("smoke", total_steps=64, n_envs=2, n_steps=32, batch_size=32, n_epochs=1)  # seconds, not a minute
    monkeypatch.setitem(BUDGETS, "smoke", dataclasses.replace(BUDGETS["smoke"], ppo=tiny))
    cc = CollectConfig(episodes=2, seed=0, profile="machado", max_steps=60, n_envs=2)
    save_demos(collect("breakout", RandomPolicy(4, np.random.default_rng(0)), cc, progress=False), tmp_path / "demos")
    rc = main(["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--profile", "machado",
               "--demos", str(tmp_path / "demos"), "--episodes", "1", "--out", str(tmp_path / "run"),
               "--leaderboard", str(tmp_path / "lb.csv"), "--no-progress", "--cache", str(tmp_path / "cache")])
    assert rc == 0
    card = read_json(tmp_path / "run" / "agent" / "card.json")
    assert card["profile"] == "machado" and card["profile_settings"]["repeat_action_probability"] == 0.25
    assert read_json(tmp_path / "run" / "eval" / "eval.json")["profile"] == "machado"
    assert read_json(tmp_path / "run" / "summary.json")["row"]["env_profile"] == "machado"
    assert ExperimentConfig.read(tmp_path / "run" / "config.json").profile == "machado"


def test_only_user_errors_are_one_line(monkeypatch, capsys):
    """Issue 14: any ValueError was printed as a one-line "user error", so a real bug lost its traceback."""
    from trex_bench.cli import main
    from trex_bench.experiment import pipeline

    argv = ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--out", "never-made"]

    def bug(*_a, **_k):
        raise ValueError("operands could not be broadcast together")  # what numpy raises on a shape bug

    monkeypatch.setattr(pipeline, "prepare", bug)
    with pytest.raises(ValueError, match="broadcast"):  # not turned into exit code 2: the traceback stays
        main(argv)

    def user_error(*_a, **_k):
        raise ConfigError("--demos x: no such demo set")

    monkeypatch.setattr(pipeline, "prepare", user_error)
    assert main(argv) == 2
    assert capsys.readouterr().err == "trex-bench: error: --demos x: no such demo set\n"
    with pytest.raises(ConfigError):  # --debug shows the traceback of a user error too
        main(["--debug", *argv])


@pytest.mark.parametrize("argv", [
    ["pipeline", "breakout", "--method", "trex", "--budget", "smoke"],
    ["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--out", "x"],
    ["reward", "train", "breakout", "--demos", "d", "--method", "trex", "--out", "x"],
    ["bc", "train", "breakout", "--demos", "d", "--out", "x"],
    ["rl", "train", "breakout", "--reward", "true", "--budget", "smoke", "--out", "x"],
    ["evaluate", "--agent", "a"],
])
def test_one_seed_limit_for_every_command(argv, capsys):
    """D6: seed limits differed by command (collect accepted 1e20) and messages did not name --seed."""
    from trex_bench.cli import main

    with pytest.raises(SystemExit) as e:
        main([*argv, "--seed", str(2**32)])
    assert e.value.code == 2
    assert f"argument --seed: must be in [0, {config.MAX_SEED}]" in capsys.readouterr().err


def test_a_method_is_one_entry_of_stage_names(monkeypatch, tmp_path):
    """Adding a method is one ``METHODS`` entry (plus the functions of any new stage): the resolver, the run name,
    the sweep's plan and the pipeline's stage loop all read it (issue 14: eight places before)."""
    from trex_bench.experiment import pipeline
    from trex_bench.experiment.sweep import plan_sweep

    monkeypatch.setitem(config.METHODS, "survival", config.Method("survival", ("agent", "eval"), reward="constant",
                                                                  row_transform="constant"))
    cfg = resolve("breakout", "survival", "smoke")
    assert cfg.ppo is not None and cfg.reward is None and run_name(cfg) == "breakout-survival-smoke-s0"
    (job,) = plan_sweep(["breakout"], ["survival"], [0], "smoke", root=tmp_path, transform="delta")
    assert job.config == cfg  # the learned-reward-only --transform does not reach it
    assert all(stage in pipeline.STAGES for m in config.METHODS.values() for stage in m.stages)


def test_help_loads_no_heavy_library():
    """`trex-bench --help` builds every command's options without torch, SB3, scipy, pandas or rliable (a module-level
    import of trex_bench.analysis.stats in cli/report.py once made it 2.9 s instead of 0.5 s)."""
    import subprocess
    import sys

    heavy = ("torch", "stable_baselines3", "scipy", "pandas", "rliable")
    code = ("import sys; from trex_bench.cli import build_parser; build_parser(); "
            f"print(sorted(m for m in {heavy!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_cli_options_are_generated_from_the_config_fields():
    """Issue 14: `pipeline`'s experiment options, their types, defaults and choices come from PipelineConfig's fields,
    so a field added there is an option everywhere it is shared (pipeline, sweep, rl train), with nothing to copy."""
    import argparse
    import dataclasses

    from trex_bench.cli.options import add_config_options, config_defaults, config_kwargs
    from trex_bench.experiment.options import PipelineConfig

    cli_fields = [f.name for f in dataclasses.fields(PipelineConfig) if "cli" in f.metadata]
    assert cli_fields == [f.name for f in dataclasses.fields(PipelineConfig)], "every field is a pipeline option"
    p = argparse.ArgumentParser()
    add_config_options(p, PipelineConfig)
    args = p.parse_args(["breakout", "--method", "trex", "--budget", "smoke", "--episodes", "3", "--profile", "machado",
                         "--demos", "d"])
    cfg = PipelineConfig(**config_kwargs(args, PipelineConfig))
    assert (cfg.game, cfg.eval_episodes, cfg.profile, cfg.demos) == ("breakout", 3, "machado", Path("d"))
    assert p.parse_args(["--kl-beta", "0.5"]).kl_beta == 0.5
    assert config_defaults(PipelineConfig)["game"] is None and config_defaults(PipelineConfig)["ranking"] == "return"
    for bad in (["--episodes", "0"], ["--seed", "-1"], ["--ranking", "votes"], ["--max-seconds", "inf"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)

    @dataclasses.dataclass(frozen=True)
    class Extended:  # a new field with a "cli" entry is an option, typed from its annotation
        game: str = dataclasses.field(metadata={"cli": {"help": "g", "flag": "game", "choices": None, "metavar": None}})
        ensemble: int = dataclasses.field(default=1, metadata={"cli": {"help": "nets", "flag": None, "choices": None,
                                                                       "metavar": None}})

    q = argparse.ArgumentParser()
    add_config_options(q, Extended)
    assert config_kwargs(q.parse_args(["pong", "--ensemble", "3"]), Extended) == {"game": "pong", "ensemble": 3}
    with pytest.raises(KeyError, match="no command-line field"):
        add_config_options(argparse.ArgumentParser(), PipelineConfig, only=("nope",))


def test_pipeline_sweep_and_rl_train_share_one_definition_of_each_option(capsys):
    """The shared options' choices and defaults are the same in every command that has them (they were copied)."""
    from trex_bench.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction").choices
    rl_train = next(a for a in subs["rl"]._actions if a.__class__.__name__ == "_SubParsersAction").choices["train"]

    def option(p, flag):
        return next(a for a in p._actions if flag in a.option_strings)

    for flag in ("--precision", "--transform", "--ranking", "--profile", "--episodes", "--device"):
        a, b = option(subs["pipeline"], flag), option(subs["sweep"], flag)
        assert (a.choices, a.default, a.type, a.dest) == (b.choices, b.default, b.type, b.dest), flag
    for flag in ("--precision", "--max-seconds"):
        a, b = option(subs["pipeline"], flag), option(rl_train, flag)
        assert (a.choices, a.default, a.type, a.help) == (b.choices, b.default, b.type, b.help), flag
