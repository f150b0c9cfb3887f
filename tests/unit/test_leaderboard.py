"""Leaderboard: well-formed rows, no lost rows under concurrent writers, corrupt files refused untouched."""

from __future__ import annotations

import csv
import math
import multiprocessing as mp
import re
from pathlib import Path

import pandas as pd
import pytest

from trex_bench.core.io import stable_hash
from trex_bench.evaluation.leaderboard import COLUMNS, append_row, read_leaderboard
from trex_bench.evaluation.summary import summarize


def _row(seed: int = 0, mean: float = 12.5, method: str = "trex", game: str = "breakout", budget: str = "smoke", **kw) -> dict:
    return dict(game=game, method=method, seed=seed, mean=mean, std=1.0, min=10.0, max=15.0, n_episodes=30,
                best_demo=32.0, avg_demo=14.5, beats_best_demo=mean > 32, env_profile="paper", budget=budget,
                config_hash=stable_hash({"a": 1})) | kw


def test_one_well_formed_row(tmp_path):
    path = tmp_path / "results" / "leaderboard.csv"
    written = append_row(path, _row())
    rows = list(csv.reader(path.open(newline="")))
    assert tuple(rows[0]) == COLUMNS
    assert len(rows) == 2 and len(rows[1]) == len(COLUMNS)
    rec = dict(zip(COLUMNS, rows[1], strict=True))
    assert rec == written
    assert rec["game"] == "breakout" and rec["mean"] == "12.5" and rec["beats_best_demo"] == "false"
    assert rec["run_id"] and rec["utc_time"].endswith("+00:00") and rec["git_commit"]
    assert '"stable-baselines3"' in rec["versions"]
    df = read_leaderboard(path)
    assert df.loc[0, "mean"] == 12.5 and not df.loc[0, "beats_best_demo"]


def test_bad_rows_are_refused(tmp_path):
    path = tmp_path / "lb.csv"
    with pytest.raises(ValueError, match="unknown leaderboard column"):
        append_row(path, {**_row(), "score": 3})
    with pytest.raises(ValueError, match="required"):
        append_row(path, {"game": "breakout", "method": "trex"})
    assert not path.exists()


def _writer(path: str, worker: int, n: int) -> None:
    for i in range(n):
        append_row(path, _row(seed=worker * 1000 + i, run_id=f"w{worker}-{i}"))


def test_concurrent_appenders_lose_no_rows(tmp_path):
    path = str(tmp_path / "lb.csv")
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, w, 20)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    df = read_leaderboard(path)
    assert len(df) == 40
    assert sorted(df["run_id"]) == sorted(f"w{w}-{i}" for w in range(2) for i in range(20))


@pytest.mark.parametrize(
    "content",
    [
        b"game,score\nbreakout,3\n",  # wrong header
        (",".join(COLUMNS) + "\n" + "a,b,c\n").encode(),  # wrong field count
        (",".join(COLUMNS) + "\n" + '"unterminated' + "," * (len(COLUMNS) - 1) + "\n").encode(),  # unparsable
        b"\xff\xfe\x00garbage",  # not text
    ],
)
def test_corrupt_csv_is_refused_and_left_byte_identical(tmp_path, content):
    path = tmp_path / "lb.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match="refusing to append"):
        append_row(path, _row())
    assert path.read_bytes() == content
    assert [p.name for p in tmp_path.iterdir() if p.name != "lb.csv.lock"] == ["lb.csv"]  # no temp files left


def test_summarize_groups_by_game_method_and_budget(tmp_path):
    path = tmp_path / "lb.csv"
    for seed, mean in enumerate([10.0, 20.0, 40.0]):
        append_row(path, _row(seed=seed, mean=mean))
    append_row(path, _row(seed=0, mean=5.0, method="constant"))
    append_row(path, _row(seed=0, mean=99.0, budget="gpu"))
    s = summarize(path, by=("game", "method", "budget")).set_index(["game", "method", "budget"])
    assert s.loc[("breakout", "trex", "gpu")]["seeds"] == 1
    trex = s.loc[("breakout", "trex", "smoke")]
    assert trex["seeds"] == 3 and trex["mean"] == pytest.approx(70 / 3) and trex["best"] == 40.0
    assert trex["std"] == pytest.approx(15.275, abs=1e-3) and trex["beats_best_demo"] == 1
    assert trex["games"] == 90 and pd.isna(trex["spread"]), "several seeds: their spread is the std over seeds"
    one = s.loc[("breakout", "constant", "smoke")]
    assert pd.isna(one["std"]), "one seed has no std over seeds (not 0)"
    assert (one["spread"], one["games"]) == (1.0, 30), "its spread is its own 30 games' std"
    assert summarize(Path(tmp_path / "absent.csv")).empty
    append_row(path, _row(seed=0, mean=7.0, reward_transform="sigmoid+kl0.1"))
    by_transform = summarize(path).set_index(["method", "budget", "reward_transform"])["seeds"]
    assert by_transform.sum() == 6, "rows with an empty transform are kept, not dropped"
    assert by_transform.loc[("trex", "smoke", "sigmoid+kl0.1")] == 1


def test_cli_prints_the_summary(tmp_path, capsys):
    from trex_bench.cli import main

    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0, mean=10.0))
    append_row(path, _row(seed=1, mean=20.0))
    assert main(["leaderboard", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "breakout" in out and "15.00 ± 7.07 (2 seeds)" in out
    append_row(path, _row(seed=0, mean=3.0, method="constant", std=2.5))
    assert main(["leaderboard", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "3.00 ± 2.50 (30 games)" in out and "± 0.00" not in out, "one seed: the spread of its games, never ± 0"
    append_row(path, _row(seed=0, mean=99.0, reward_transform="sigmoid+kl0.1"))
    assert main(["leaderboard", "--csv", str(path)]) == 0
    out = capsys.readouterr().out
    assert "trex (sigmoid+kl0.1)" in out and "15.00 ± 7.07 (2 seeds)" in out, "a KL run is a variant: never pooled"
    assert main(["leaderboard", "--csv", str(path), "--by", "game", "method", "budget"]) == 0
    assert "99.00" in capsys.readouterr().out, "grouped without the variant, the later KL row supersedes seed 0"
    path.write_text("not,a,leaderboard\n")
    assert main(["leaderboard", "--csv", str(path)]) == 2
    assert "refusing to read it" in capsys.readouterr().err


def test_row_from_run_fills_every_result_column(tmp_path):
    from trex_bench.evaluation.leaderboard import row_from_run

    card = {"game": "breakout", "profile_settings": {}, "reward": {"source": "model", "transform": "sigmoid"},
            "budget": "smoke", "steps": 2048, "seed": 3, "config": {"n_steps": 64}, "wall_s": 12.0, "device": "cpu",
            "schedule_steps": 10_000_000, "precision": "fp32", "stopped": "total steps"}
    report = {"game": "breakout", "profile": "paper", "episodes": 30, "returns": [40.0] * 30, "mean": 40.0, "std": 2.0, "min": 30.0,
              "max": 50.0, "best_demo": 32.0, "avg_demo": 14.5, "beats_best_demo": True, "human_normalized": 1.3}
    row = row_from_run(card, report, "trex", ranking_source="return", fidelity={"correlations": {"pred_mean": {"spearman": 0.9}},
                                                                             "pairwise": {"accuracy": 0.8}})
    written = append_row(tmp_path / "lb.csv", row)
    assert written["beats_best_demo"] == "true" and written["rl_steps"] == "2048" and written["fidelity_spearman"] == "0.9"
    assert written["config_hash"] == row_from_run(card, report, "trex")["config_hash"]
    assert all(written[c] != "" for c in COLUMNS)


@pytest.mark.parametrize(
    ("reward", "kl_beta", "method", "transform"),
    [
        ({"source": "model", "method": "trex", "transform": "sigmoid"}, 0.1, "trex", "sigmoid+kl0.1"),
        ({"source": "model", "method": "drex", "transform": "sigmoid"}, 0.0, "drex", "sigmoid"),
        ({"source": "constant", "transform": "none"}, 0.0, "constant", "constant"),
        ({"source": "true", "transform": "sign"}, 0.0, "ppo-true", "clip"),
        ({"source": "online", "method": "gail"}, 0.0, "gail", "gail"),
        ({"source": "online", "method": "prefs"}, 0.0, "prefs", "normalized"),
    ],
)
def test_an_agent_evaluated_on_its_own_gets_the_row_the_pipeline_writes(reward, kl_beta, method, transform):
    """A KL-penalised T-REX agent's row was plain ``trex`` (pooled with it), a constant agent's ``constant (none)``
    (dropped as a control), and GAIL and prefs agents had no method at all."""
    from trex_bench.evaluation.leaderboard import agent_method, card_transform

    card = {"reward": reward, "kl_beta": kl_beta}
    assert (agent_method(card), card_transform(card)) == (method, transform)


def test_git_commit_can_come_from_the_environment(monkeypatch):
    """A copied tree without .git (a rented GPU machine) records the commit it was copied from."""
    from trex_bench.core.io import git_commit

    monkeypatch.setenv("TREX_BENCH_GIT_COMMIT", "0123abcd")
    assert git_commit() == "0123abcd"
    monkeypatch.delenv("TREX_BENCH_GIT_COMMIT")
    assert git_commit() != "0123abcd"


def test_a_seed_run_again_counts_once_with_its_latest_row(tmp_path):
    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0, mean=2.0))
    append_row(path, _row(seed=1, mean=10.0))
    append_row(path, _row(seed=0, mean=6.0))  # seed 0 again, e.g. after a fix
    latest = summarize(path).iloc[0]
    assert latest["seeds"] == 2 and latest["superseded"] == 1
    assert latest["mean"] == pytest.approx(8.0), "the rerun replaces seed 0's earlier row"
    every = summarize(path, latest_per_seed=False).iloc[0]
    assert every["seeds"] == 3 and every["superseded"] == 0 and every["mean"] == pytest.approx(6.0)
    assert len(read_leaderboard(path)) == 3, "the CSV keeps every row"


def test_the_same_seed_on_another_demo_set_is_another_experiment(tmp_path):
    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0, mean=3.5, best_demo=23.0, avg_demo=11.5))
    append_row(path, _row(seed=0, mean=4.2, best_demo=16.0, avg_demo=7.25))
    groups = summarize(path)
    assert len(groups) == 2 and list(groups["superseded"]) == [0, 0]
    assert sorted(zip(groups["best_demo"], groups["mean"])) == [(16.0, 4.2), (23.0, 3.5)]


def test_the_row_reads_the_fidelity_report_through_one_typed_reader():
    """Issue 14: the row builder read keys the fidelity report did not have and wrote empty columns; now a report
    without the figures is refused, and a Spearman that could not be computed stays None."""
    from trex_bench.core.errors import DataError
    from trex_bench.evaluation.results import AgentResult, Evaluation, FidelityFigures

    report = {"correlations": {"pred_mean": {"spearman": None}}, "pairwise": {"accuracy": 0.75}}
    assert FidelityFigures.from_json(report) == FidelityFigures(None, 0.75)
    for bad in ({"spearman": 0.9, "pair_accuracy": 0.8}, {"correlations": {}}, {"correlations": None}):
        with pytest.raises(DataError, match="not a fidelity report"):
            FidelityFigures.from_json(bad)
    card = {"steps": 500736, "schedule_steps": 10_000_000, "precision": "bf16", "stopped": "time cap (60 s)"}
    assert AgentResult.from_card(card) == AgentResult(500736, 10_000_000, "bf16", time_capped=True)
    assert Evaluation.from_json({"returns": [1, 2.5]}).returns == (1.0, 2.5)


def test_recovered_share_of_the_true_rewards_gain_over_survival():
    from trex_bench.evaluation.summary import recovered

    assert recovered(5.0, 1.0, 9.0) == 0.5
    assert math.isnan(recovered(5.0, 9.0, 9.0))  # the true reward gained nothing over the constant: no scale
    got = recovered(pd.Series([3.0, 3.0]), pd.Series([1.0, 4.0]), pd.Series([5.0, 2.0]))
    assert got.iloc[0] == 0.5 and math.isnan(got.iloc[1])


@pytest.mark.parametrize("column, value, words", [
    ("mean", "abc", "mean = 'abc' is not a number"),
    ("mean", "nan", "mean = 'nan' is not a finite number"),
    ("std", "inf", "std = 'inf' is not a finite number"),
    ("human_normalized", "-Infinity", "human_normalized = '-Infinity' is not a finite number"),
    ("seed", "-1", "seed = '-1' is not an integer >= 0"),
    ("seed", "1.5", "seed = '1.5' is not an integer >= 0"),
    ("game", "", "game is empty"),
    ("mean", "", "mean is empty"),
])
def test_a_metric_that_is_not_a_number_is_refused_naming_file_and_row(tmp_path, capsys, column, value, words):
    """Such a cell was shown as "nan ± 0.00" by `leaderboard`, the report and `tables stats`, exit 0."""
    from trex_bench.cli import main

    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0))
    append_row(path, _row(seed=1))
    rows = list(csv.reader(path.open(newline="")))
    rows[2][COLUMNS.index(column)] = value
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    text = path.read_text()
    with pytest.raises(ValueError, match=re.escape(f"{path}: line 3: {words}")):
        read_leaderboard(path)
    assert main(["leaderboard", "--csv", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "line 3" in err
    with pytest.raises(ValueError, match="line 3"):  # and nothing is appended to it
        append_row(path, _row(seed=2))
    assert path.read_text() == text



def test_a_method_with_its_own_transform_is_itself_and_others_are_variants():
    from trex_bench.evaluation.summary import variant

    assert variant("trex", "sigmoid") == "trex" and variant("ppo-true", "clip") == "ppo-true"
    assert variant("prefs", "normalized") == "prefs"  # the preference loop's own normalised reward
    assert variant("trex", "normalized") == "trex (normalized)" and variant("trex", "sigmoid+kl0.1") == "trex (sigmoid+kl0.1)"


def test_every_method_with_a_row_transform_of_its_own_is_itself_in_the_tables():
    """A method's own transform read as a variant drops its rows from every table (``gail (gail)`` once did)."""
    from trex_bench.evaluation.summary import variant
    from trex_bench.experiment.methods import METHODS

    for name, method in METHODS.items():
        assert variant(name, method.row_transform) == name, name


@pytest.mark.parametrize(("column", "value"), [("mean", float("nan")), ("std", float("inf")), ("seed", -1),
                                               ("wall_s", "abc")])
def test_a_row_the_reader_would_refuse_is_never_appended(tmp_path, column, value):
    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0))
    before = path.read_bytes()
    with pytest.raises(ValueError, match=f"{column} = "):
        append_row(path, _row(seed=1) | {column: value})
    assert path.read_bytes() == before and len(read_leaderboard(path)) == 1


def test_an_undefined_fidelity_is_written_as_not_recorded(tmp_path):
    """A reward net that is constant on the demos has no Spearman correlation (NaN): an empty cell, not a poisoned file."""
    path = tmp_path / "lb.csv"
    append_row(path, _row(seed=0) | {"fidelity_spearman": float("nan")})
    assert read_leaderboard(path)["fidelity_spearman"].isna().all()
