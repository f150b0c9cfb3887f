"""Which reward net is kept: the latest checkpoint held out for validation, a bootstrap ensemble, the CLI's --choice."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from fakes import BrightnessFrames

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import Ranking
from trex_bench.reward import train as tr
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.snippets import (
    bootstrap_resample,
    held_out_rankings,
    latest_checkpoint_episodes,
    sample_snippet_pairs,
    split_by_held_out_episodes,
)

QUALITY = np.linspace(0.0, 1.0, 6)
RANK = Ranking(6, np.array([(i, j) for i in range(6) for j in range(6) if i < j]), "return")
CHECKPOINTS = np.array([3, 0, 5, 1, 2, 4])  # episode 2 is of the latest checkpoint (and not the best episode)
FAST = TrainConfig(n_pairs=200, min_len=4, max_len=9, stride=1, lr=1e-3, batch_pairs=8, passes=1.0, max_steps=6,
                   eval_every=3, patience=0, val_frac=0.15)


def _rows(p):
    return set(zip(p.ep_a, p.start_a, p.ep_b, p.start_b, p.length, p.label, strict=True))


def test_the_latest_checkpoint_is_held_out_and_sets_without_numbers_are_refused():
    assert latest_checkpoint_episodes(CHECKPOINTS).tolist() == [2]
    assert latest_checkpoint_episodes(np.array([0, 7, 7, 1])).tolist() == [1, 2]
    with pytest.raises(ConfigError, match="2 of the 4 episodes have no checkpoint number") as e:
        latest_checkpoint_episodes(np.array([0, -1, 3, -1]))
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="none is left to train on"):
        latest_checkpoint_episodes(np.array([4, 4, 4]))


def test_held_out_rankings_split_the_preferences():
    train, val = held_out_rankings(RANK, np.array([2]))
    assert not np.isin(train.pairs, [2]).any()
    assert np.all(np.isin(val.pairs, [2]).sum(1) == 1) and len(val.pairs) == 5  # 2 against each other episode
    assert len(train.pairs) + len(val.pairs) == len(RANK.pairs)
    ties = Ranking(3, np.array([[0, 1]]), "return")  # episode 2 ties both others: nothing to validate on
    with pytest.raises(ConfigError, match="no validation preference"):
        held_out_rankings(ties, np.array([2]))


def test_the_latest_split_never_trains_on_a_held_out_episode_and_validates_only_on_pairs_with_one():
    src = BrightnessFrames(QUALITY)
    cfg = dataclasses.replace(FAST, validation="latest")
    train, val = tr.sample_split(src, RANK, cfg, np.random.default_rng(0), CHECKPOINTS)
    assert len(train) == 170 and len(val) == 30  # as many training pairs as the default split draws
    assert not np.isin(train.ep_a, [2]).any() and not np.isin(train.ep_b, [2]).any()
    assert np.all((val.ep_a == 2) ^ (val.ep_b == 2))
    better = np.where(val.label == 1, val.ep_b, val.ep_a)
    worse = np.where(val.label == 1, val.ep_a, val.ep_b)
    assert np.all(QUALITY[better] > QUALITY[worse])  # labelled by the ranking
    with pytest.raises(ConfigError, match="checkpoint numbers"):
        tr.sample_split(src, RANK, cfg, np.random.default_rng(0))
    # The default split is untouched by the option: the same draws as before it existed.
    a, b = tr.sample_split(src, RANK, FAST, np.random.default_rng(0), CHECKPOINTS)
    rng = np.random.default_rng(0)
    from trex_bench.reward.snippets import split_by_episode_pairs

    c, d = split_by_episode_pairs(sample_snippet_pairs(RANK, src.lengths, 200, 4, 9, 1, rng), 0.15, rng)
    assert _rows(a) == _rows(c) and _rows(b) == _rows(d)


def test_given_pairs_split_by_held_out_episodes():
    p = sample_snippet_pairs(RANK, np.full(6, 30), 300, 4, 9, 1, np.random.default_rng(1))
    train, val = split_by_held_out_episodes(p, np.array([2, 5]))
    assert not np.isin(np.r_[train.ep_a, train.ep_b], [2, 5]).any()
    assert np.all(np.isin(val.ep_a, [2, 5]) != np.isin(val.ep_b, [2, 5]))
    both = np.isin(p.ep_a, [2, 5]) & np.isin(p.ep_b, [2, 5])
    assert len(train) + len(val) + both.sum() == len(p)


def test_train_reward_with_latest_reports_the_held_out_episode():
    cfg = dataclasses.replace(FAST, validation="latest")
    _, m = tr.train_reward(BrightnessFrames(QUALITY), RANK, cfg, "breakout", np.random.default_rng(0),
                           checkpoints=CHECKPOINTS)
    assert m["held_out_episodes"] == [2] and (m["n_train_pairs"], m["n_val_pairs"]) == (170, 30)


def test_bootstrap_members_see_different_resamples_and_the_ensemble_is_their_mean():
    src = BrightnessFrames(QUALITY)
    cfg = dataclasses.replace(FAST, ensemble=3, bootstrap=True)
    model, m = tr.train_reward(src, RANK, cfg, "breakout", np.random.default_rng(0))
    digests = [r["train_pairs"] for r in m["members"]]
    assert len(set(digests)) == 3  # each member its own resample
    n = m["n_train_pairs"]
    for r in m["members"]:  # with replacement: about 1 − 1/e of the pairs are distinct
        assert 0.5 * n < r["distinct_train_pairs"] < 0.75 * n
    stacks = torch.from_numpy(src.frames[src.stack_index(np.zeros(10, int), np.arange(10))])
    members = torch.stack([net.per_frame(stacks) for net in model.members])
    assert torch.allclose(model.per_frame(stacks), members.mean(0), atol=1e-6)
    assert not torch.allclose(members[0], members[1])
    plain, mp = tr.train_reward(src, RANK, dataclasses.replace(cfg, bootstrap=False), "breakout",
                                np.random.default_rng(0))
    assert len({r["train_pairs"] for r in mp["members"]}) == 1  # without bootstrap all train on the same pairs


def test_a_resample_draws_rows_of_the_pairs_with_replacement():
    p = sample_snippet_pairs(RANK, np.full(6, 30), 400, 4, 9, 1, np.random.default_rng(2))
    r = bootstrap_resample(p, np.random.default_rng(0))
    assert len(r) == len(p) and _rows(r) < _rows(p)


def test_config_checks_and_its_run_folder_key():
    with pytest.raises(ConfigError, match="validation must be one of episodes, latest"):
        TrainConfig(validation="newest")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="val_frac > 0"):
        TrainConfig(validation="latest", val_frac=0.0)
    with pytest.raises(ConfigError, match="bootstrap must be true or false, got .yes."):
        TrainConfig(bootstrap="yes")  # type: ignore[arg-type]
    default = TrainConfig()
    assert "validation" not in default.key() and "bootstrap" not in default.key()
    assert set(dataclasses.asdict(default)) - set(default.key()) == {"validation", "bootstrap"}
    assert TrainConfig(validation="latest").key()["validation"] == "latest"
    assert TrainConfig(bootstrap=True).key() != default.key()


# -- the CLI: --choice reaches the config and names the run folder ---------------------------------------------------


@pytest.fixture()
def fake_training(monkeypatch):
    """``train_command`` saves an untrained net with a real card; ``score_split`` returns fixed metrics."""
    from trex_bench.reward import build
    from trex_bench.reward import extrapolation as ex
    from trex_bench.reward.net import RewardNet, save_model

    calls: list[tuple[Path, TrainConfig]] = []

    def train_command(game, demos_dir, out, *, method, config, budget, seed, **_):
        from trex_bench.demos.store import load_demos

        calls.append((Path(out), config))
        card = dict(config=dataclasses.asdict(config), seed=seed, method=method, budget=budget,
                    demos=dict(content_hash=load_demos(demos_dir).content_hash()))
        return save_model(RewardNet(game), out, card)

    def score_split(model, method, seed, demos, unseen, cache_dir=None, paid_sigmoid=True):
        eps = tuple({"set": s, "true_return": float(i), "pred_mean": 0.1 * i} for i, s in enumerate(["demo", "unseen"]))
        return ex.ExtrapolationResult(demos.game, method, seed, len(demos.episodes), len(unseen.episodes), 15.0, 3,
                                      dict.fromkeys(ex.METRIC_COLUMNS, 0.5), eps)

    monkeypatch.setattr(build, "train_command", train_command)
    monkeypatch.setattr(ex, "score_split", score_split)
    return calls


def test_cli_choice_reaches_the_config_and_keys_its_own_folder(fake_training, tmp_path):
    import pandas as pd

    from trex_bench.cli import main

    runs, results = tmp_path / "runs", tmp_path / "results"
    common = ["--seeds", "0", "--budget", "smoke", "--runs", str(runs), "--results", str(results), "--no-progress"]
    for choice in ("latest", "ensemble", "default"):
        assert main(["extrapolation", "breakout", "--choice", choice, *common]) == 0
    folders = [out.name for out, _ in fake_training]
    assert folders == ["breakout-trex+latest-smoke-s0", "breakout-trex+ensemble-smoke-s0", "breakout-trex-smoke-s0"]
    latest, ensemble, default = (cfg for _, cfg in fake_training)
    assert latest.validation == "latest" and not latest.bootstrap and latest.ensemble == 1
    assert ensemble.bootstrap and ensemble.ensemble == 3 and ensemble.validation == "episodes"
    assert (default.validation, default.bootstrap, default.ensemble) == ("episodes", False, 1)
    df = pd.read_csv(results / "tables" / "extrapolation.csv")
    assert sorted(df["method"]) == ["trex", "trex+ensemble", "trex+latest"]
    assert main(["extrapolation", "breakout", "--choice", "latest", *common]) == 0
    assert len(fake_training) == 3  # a finished run of the same choice is reused


def test_a_folder_of_one_choice_is_never_reused_for_another(fake_training, tmp_path):
    from trex_bench.experiment.extrapolation import train_or_reuse

    demos = Path(__file__).resolve().parents[2] / "demos" / "breakout" / "ppo-checkpoints"
    out = tmp_path / "net"
    train_or_reuse("breakout", demos, out, "trex", "smoke", 0, None, False, "latest")
    with pytest.raises(ConfigError, match="holds another reward model"):
        train_or_reuse("breakout", demos, out, "trex", "smoke", 0, None, False, "ensemble")
    with pytest.raises(ConfigError, match="unknown reward choice"):
        train_or_reuse("breakout", demos, tmp_path / "other", "trex", "smoke", 0, None, False, "best")


def test_a_card_written_before_the_options_is_still_reused(fake_training, tmp_path):
    """A finished default run whose card lacks the selection options trained as the default does: it is reused."""
    from trex_bench.core.io import read_json, write_json
    from trex_bench.experiment.extrapolation import train_or_reuse

    demos = Path(__file__).resolve().parents[2] / "demos" / "breakout" / "ppo-checkpoints"
    out = train_or_reuse("breakout", demos, tmp_path / "net", "trex", "smoke", 0, None, False)
    card = read_json(out / "card.json")
    card["config"] = {k: v for k, v in card["config"].items() if k not in ("validation", "bootstrap")}
    write_json(out / "card.json", card)
    assert train_or_reuse("breakout", demos, out, "trex", "smoke", 0, None, False) == out
    assert len(fake_training) == 1
    with pytest.raises(ConfigError, match="holds another reward model"):
        train_or_reuse("breakout", demos, out, "trex", "smoke", 0, None, False, "latest")


def test_cli_refuses_a_choice_for_drex(capsys):
    from trex_bench.cli import main

    assert main(["extrapolation", "breakout", "--method", "drex", "--choice", "latest"]) == 2
    assert "--choice applies to --method trex" in capsys.readouterr().err


def test_the_choice_table_tallies_wins_per_column_at_the_shown_decimals():
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("reward_choice_table",
                                                  Path(__file__).resolve().parents[2] / "tools" / "reward_choice_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)

    def row(game, method, seed, rho, acc=0.6, share=0.9):
        return dict(game=game, method=method, seed=seed, spearman_mean_unseen=rho, beyond_best_accuracy=acc,
                    sigmoid_constant_share_unseen=share)

    df = pd.DataFrame([row("pong", "trex", s, r) for s, r in enumerate([0.5, 0.7, 0.6])]  # default 0.60 ± 0.10
                      + [row("pong", "trex+latest", 0, 0.65, share=0.95), row("pong", "trex+ensemble", 0, 0.9, 0.7)]
                      + [row("hero", "trex", 0, 0.8), row("hero", "trex+latest", 0, 0.7, 0.604, 0.8)]
                      + [row("qbert", "trex+latest", 0, 0.9), row("qbert", "drex", 0, 0.1)])  # no default: left out
    text = mod.choice_table(df)
    assert "| pong | default | 3 | 0.60 ± 0.10 |" in text and "| pong | latest | 1 | 0.65 |" in text
    assert "| hero | latest | 1 | 0.70 | 0.60 | 0.80 | -0.10 |" in text and "qbert" not in text
    assert "**latest** beats the default on 1 of 2 games on unseen ρ (0 by more than the default's seed std)" in text
    assert "**ensemble** beats the default on 1 of 1 games on unseen ρ (1 by more than the default's seed std)" in text
    assert "on 0 of 2 on beyond-best acc., and has the lower σ(r) const. share on 1 of 2" in text  # latest
    assert "on 1 of 1 on beyond-best acc., and has the lower σ(r) const. share on 0 of 1" in text  # ensemble
    assert "(2 of 8 games have the default and a choice here)" in text
    assert "**No choice meets it; the default stays** (latest: 1 wins of 2 measured; ensemble: 1 wins of 1 measured)" in text


def test_the_default_reward_stage_key_is_the_one_written_before_the_options_and_a_finished_stage_is_reused(
    tmp_path, monkeypatch
):
    """A pipeline's finished reward stage, keyed before ``validation``/``bootstrap`` existed, is reused by the default
    config; a run of another choice is refused there (it would be another net)."""
    from types import SimpleNamespace

    from trex_bench.experiment.budgets import reward_config
    from trex_bench.experiment.run_folder import RunFolder, RunFolderError
    from trex_bench.experiment.stages import reward_stage
    from trex_bench.reward import build

    reward = reward_config("smoke", "trex")
    before = {k: v for k, v in dataclasses.asdict(reward).items() if k not in ("validation", "bootstrap")}
    old_key = dict(stage="reward", method="trex", ranking="return", seed=0, config=before, demos="d" * 16)
    run = RunFolder(tmp_path, log=lambda line: None)
    run.stage("reward", old_key, lambda tmp: (tmp / "model.safetensors").write_bytes(b"net"))

    def never(*a, **k):
        raise AssertionError("a finished default stage must not be trained again")

    monkeypatch.setattr(build, "train_command", never)

    def ctx(cfg_reward):
        cfg = SimpleNamespace(reward=cfg_reward, method="trex", ranking="return", seed=0, human_labels=None,
                              game="breakout", budget="smoke", device="cpu")
        return SimpleNamespace(cfg=cfg, run=RunFolder(tmp_path, log=lambda line: None), demos_dir=tmp_path,
                               demos_hash="d" * 16, cache_dir=None, progress=False)

    assert reward_stage(ctx(reward)).reused
    for choice in (dict(validation="latest"), dict(ensemble=3, bootstrap=True)):
        with pytest.raises(RunFolderError, match="made by another config"):
            reward_stage(ctx(dataclasses.replace(reward, **choice)))


def test_the_choice_table_names_a_choice_that_wins_most_of_all_eight_games():
    import importlib.util

    import pandas as pd

    spec = importlib.util.spec_from_file_location("reward_choice_table",
                                                  Path(__file__).resolve().parents[2] / "tools" / "reward_choice_table.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    games = [f"g{i}" for i in range(8)]

    def rows(wins, measured=8):
        return pd.DataFrame(
            [dict(game=g, method="trex", seed=0, spearman_mean_unseen=0.5, beyond_best_accuracy=0.6,
                  sigmoid_constant_share_unseen=0.9) for g in games]
            + [dict(game=g, method="trex+ensemble", seed=0, spearman_mean_unseen=0.6 if i < wins else 0.4,
                    beyond_best_accuracy=0.6, sigmoid_constant_share_unseen=0.9) for i, g in enumerate(games[:measured])]
        )

    assert "**ensemble** meets it (latest: 0 wins of 0 measured; ensemble: 5 wins of 8 measured)" in \
        mod.choice_table(rows(5))
    assert "the default stays** (latest: 0 wins of 0 measured; ensemble: 4 wins of 8" in mod.choice_table(rows(4))
    assert "the default stays** (latest: 0 wins of 0 measured; ensemble: 5 wins of 7" in mod.choice_table(rows(5, 7))
