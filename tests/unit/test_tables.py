"""The papers' tables: published numbers joined with our leaderboard rows (latest row per seed, no KL runs)."""

from __future__ import annotations

import pandas as pd
import pytest

from trex_bench.analysis.tables import build_table, write_table
from trex_bench.cli import main
from trex_bench.core.io import stable_hash
from trex_bench.evaluation.leaderboard import append_row


def _row(seed: int, mean: float, method: str = "trex", budget: str = "small", **kw) -> dict:
    return dict(game="breakout", method=method, seed=seed, mean=mean, std=1.0, min=0.0, max=40.0, n_episodes=30,
                best_demo=23.0, avg_demo=11.5, beats_best_demo=mean > 23, env_profile="paper", budget=budget,
                rl_steps=500_000, config_hash=stable_hash({"seed": seed}), schedule_steps=10_000_000,
                ranking_source="return" if method == "trex" else "", reward_transform="sigmoid") | kw


@pytest.fixture
def files(tmp_path):
    baselines = tmp_path / "baselines"
    baselines.mkdir()
    (baselines / "trex_table1.csv").write_text(
        "game,best_demo,avg_demo,trex,bco,gail,trex_mturk,mturk_label_accuracy\n"
        "breakout,32,14.5,221.3,13,0.28,253.2,0.881\npong,-6,-15.6,-2.0,-21,-21,-2.9,0.5\n")
    lb = tmp_path / "lb.csv"
    append_row(lb, _row(0, 5.0))
    append_row(lb, _row(1, 30.0))
    append_row(lb, _row(0, 10.0))                                           # seed 0 again: replaces 5.0
    append_row(lb, _row(2, 99.0, reward_transform="sigmoid+kl0.1"))         # a KL run: another experiment
    append_row(lb, _row(1, 77.0, reward_transform="delta"))                 # another transform: does not replace 30
    append_row(lb, _row(0, 50.0, ranking_source="human"))                   # the MTurk table's row
    append_row(lb, _row(0, 1.0, method="constant", reward_transform="constant"))
    append_row(lb, _row(0, 3.0, budget="quick"))
    return lb, baselines


def test_trex_table_joins_published_and_ours(files):
    lb, baselines = files
    t = build_table("trex", lb, baselines)
    assert list(t["game"]) == ["breakout", "breakout", "pong"], "one row per (game, budget); pong has no runs"
    small = t[(t["game"] == "breakout") & (t["budget"] == "small")].iloc[0]
    assert small["paper T-REX"] == pytest.approx(221.3) and small["paper best demo"] == 32
    assert small["seeds"] == 2 and small["ours mean"] == pytest.approx(20.0), "latest row of seed 0, no KL, no human"
    assert small["ours best of seeds"] == 30.0 and small["seeds beating best demo"] == 1
    assert t[t["game"] == "pong"]["ours mean"].isna().all()
    mturk = build_table("mturk", lb, baselines)
    assert mturk[mturk["budget"] == "small"].iloc[0]["ours mean"] == 50.0


def test_trex_table_sets_the_controls_and_the_share_recovered_beside_ours(files):
    """(T-REX − constant) / (true − constant) at the same game, budget and schedule; a control's demo set does not
    split it (it learns nothing from demos); a budget with controls but no T-REX run still gets its row."""
    lb, baselines = files
    append_row(lb, _row(0, 41.0, method="ppo-true", reward_transform="clip", best_demo=15.0, avg_demo=5.8))
    append_row(lb, _row(1, 39.0, method="ppo-true", reward_transform="clip"))
    append_row(lb, _row(0, 99.0, method="ppo-true", reward_transform="clip", schedule_steps=""))
    append_row(lb, _row(0, 2.0, method="constant", budget="medium", reward_transform="constant"))
    t = build_table("trex", lb, baselines)
    small = t[(t["game"] == "breakout") & (t["budget"] == "small")]
    assert len(small) == 2, "the true-reward row annealed over its own steps is another experiment: a row of its own"
    ours = small[small["protocol"] == "current"].iloc[0]
    assert (ours["constant"], ours["true reward"]) == (1.0, 40.0)
    assert ours["(T-REX − constant) / (true − constant)"] == pytest.approx((20.0 - 1.0) / (40.0 - 1.0))
    own = small[small["protocol"] != "current"].iloc[0]
    assert pd.isna(own["ours mean"]) and own["true reward"] == 99.0 and own["schedule_steps"] != own["schedule_steps"]
    assert own["protocol"] == "PPO annealed over its own steps"
    medium = t[t["budget"] == "medium"].iloc[0]
    assert medium["constant"] == 2.0 and pd.isna(medium["(T-REX − constant) / (true − constant)"])
    assert "| 1 | 40 | 0.49 |" in write_table("trex", lb, baselines, lb.parent / "trex.md")
    # BeamRider at small: the constant control out-scored the true reward; the share has no scale there
    append_row(lb, _row(0, 45.0, method="constant", reward_transform="constant"))
    small = build_table("trex", lb, baselines)
    ours = small[(small["budget"] == "small") & (small["protocol"] == "current")].iloc[0]
    assert ours["constant"] == 45.0 and pd.isna(ours["(T-REX − constant) / (true − constant)"])


def test_one_seed_shows_the_spread_of_its_games_never_plus_minus_zero(files):
    lb, baselines = files
    text = write_table("trex", lb, baselines, lb.parent / "trex.md")
    assert "| quick | 1 | 3.0 ± 1.0 (30 games) |" in text, "one seed: ± the std of its own 30 evaluation games"
    assert "| small | 2 | 20.0 ± 14.1 (2 seeds) |" in text
    assert "± 0.0" not in text
    append_row(lb, _row(0, 4.0, budget="medium", std=""))          # a row that recorded no game spread
    text = write_table("trex", lb, baselines, lb.parent / "trex.md")
    assert "| medium | 1 | 4.0 (1 seed) |" in text and "± 0.0" not in text


def test_earlier_protocols_sit_apart_with_what_differs(files):
    """A row annealed over its own steps, or T-REX on an earlier demo set, is never a row of the current table."""
    lb, baselines = files
    append_row(lb, _row(0, 60.0, budget="medium", schedule_steps=""))                 # PPO over its own steps
    append_row(lb, _row(0, 70.0, budget="medium", best_demo=16.0, avg_demo=7.25))     # an earlier demo set ...
    append_row(lb, _row(1, 3.5, budget="quick"))                 # ... the game's latest T-REX row names the current one
    t = build_table("trex", lb, baselines)
    assert list(t["protocol"].iloc[:3]) == ["current"] * 3 and (t["protocol"].iloc[3:] != "current").all()
    whys = set(t.loc[t["protocol"] != "current", "protocol"])
    assert whys == {"PPO annealed over its own steps", "demo set best 16 / avg 7.25 (current: 23 / 11.5)"}
    text = write_table("trex", lb, baselines, lb.parent / "trex.md")
    current, earlier = text.split("## Earlier protocols")
    assert "60.0" not in current and "70.0" not in current
    assert "| breakout | medium | PPO annealed over its own steps | 1 | 60.0 ± 1.0 (30 games) |" in earlier
    assert "paper T-REX" not in earlier.split("\n\n")[2], "the earlier section carries no published columns"


def test_markdown_is_written_and_bad_input_refused(files, tmp_path, capsys):
    lb, baselines = files
    out = tmp_path / "tables" / "trex.md"
    text = write_table("trex", lb, baselines, out)
    assert out.read_text() == text and text.startswith("# T-REX")
    assert "| breakout | 32 | 14.5 | 221.3 | 0.28 | small | 2 | 20.0 ± 14.1 (2 seeds) | 30 | 500,000 |" in text
    assert "| pong | -6 | -15.6 | -2 | -21 | — |" in text  # the papers' GAIL column beside ours
    with pytest.raises(ValueError, match="unknown table"):
        build_table("gail", lb, baselines)
    with pytest.raises(ValueError, match="does not exist"):
        build_table("drex", lb, baselines)                                    # no drex_demos_bc.csv here
    (baselines / "trex_table1.csv").write_text("game,best_demo\nbreakout,32\n")
    with pytest.raises(ValueError, match="lacks column"):
        build_table("trex", lb, baselines)
    assert main(["tables", "mturk", "--csv", str(lb), "--baselines", str(baselines), "--out", str(out)]) == 2
    assert "lacks column" in capsys.readouterr().err
    assert main(["tables", "results", "--csv", str(lb), "--out", str(tmp_path / "r.md")]) == 2
    assert "not --csv" in capsys.readouterr().err and not (tmp_path / "r.md").exists()


@pytest.mark.parametrize("kind", ["trex", "mturk", "drex", "stats", "results"])
def test_committed_tables_are_what_the_committed_leaderboard_generates(kind, tmp_path, monkeypatch):
    """The tables under results/tables/ and docs/results.md are generated files: a column or a row added without
    `make tables` leaves them stale (trex/mturk/drex once lacked the schedule_steps column and two newer Breakout
    rows)."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = tmp_path / f"{kind}.md"
    monkeypatch.chdir(root)  # the default paths, as `make tables` runs it (the table names its CSV)
    assert main(["tables", kind, "--out", str(out)]) == 0
    committed = root / ("docs/results.md" if kind == "results" else f"results/tables/{kind}.md")
    assert out.read_text() == committed.read_text(), f"run `make tables` ({committed.name})"


def test_results_doc_sections_and_links(tmp_path, monkeypatch):
    """docs/results.md from results/ only: per-budget tables of the current protocol, the extrapolation table, the
    "beats the demonstrator" table with its figures, earlier protocols apart, links that resolve from docs/."""
    import re
    from pathlib import Path

    from trex_bench.analysis.results_doc import build_results_doc

    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    text = build_results_doc(Path("results"))
    heads = [ln for ln in text.splitlines() if ln.startswith("## ") and ln != "## Current protocol, variants"]
    assert heads == ["## Current protocol, per budget", "## Reward extrapolation (no RL)",
                     "## Does the learned reward beat the demonstrator?", "## Earlier protocols", "## More"]
    current = text.split("## Earlier protocols")[0]
    assert "### small" in current and "PPO annealed over its own steps" not in current
    # ± 0.0 only as the spread of games that all scored the same (Enduro's 0s, D-REX's Pong 21–0s), never of seeds
    assert "± 0.0 (" not in re.sub(r"-?[\d.]+ ± 0\.0 \(30 games\)", "", current)
    for target in re.findall(r"\]\(([^)]+)\)", text):
        assert (root / "docs" / target).exists(), f"{target} does not resolve from docs/"
    assert "do not edit by hand" in text


def test_results_doc_names_the_step_a_curve_stays_above_the_best_demo_and_whether_it_falls_back(tmp_path):
    from trex_bench.analysis.curves import Curve, export_curve
    from trex_bench.analysis.results_doc import build_results_doc

    results = tmp_path / "results"
    results.mkdir()
    lb = results / "leaderboard.csv"
    for method, mean in (("trex", 30.0), ("constant", 2.0), ("ppo-true", 50.0)):
        append_row(lb, _row(0, mean, method=method, budget="long", rl_steps=2_500_000))
    steps = tuple(range(1000, 11000, 1000))
    for method, scores in (("trex", (0, 30, 30, 0, 30, 30, 30, 30, 30, 0)), ("constant", (1,) * 10)):
        export_curve(Curve(f"breakout-{method}-long-s0", "breakout", method, "long", "10,000,000", 0, steps,
                           tuple(float(v) for v in scores), 23.0, 11.5), results / "curves")
    # a KL-penalised T-REX run's curve, with its row: another experiment, never the trex line's curve
    append_row(lb, _row(0, 1.0, budget="long", rl_steps=2_500_000, reward_transform="sigmoid+kl0.1",
                        run_id="breakout-trex-kl0.1-long-s0-20261206T000000"))
    export_curve(Curve("breakout-trex-kl0.1-long-s0", "breakout", "trex", "long", "10,000,000", 0, steps,
                       (1.0,) * 10, 23.0, 11.5), results / "curves")
    text = build_results_doc(results)
    assert "| breakout | trex | 23 | 30.0 ± 1.0 (30 games) | yes | 5,000 | 83% |" in text, "5 of 6 points from 5,000"
    assert "| breakout | constant | 23 | 2.0 ± 1.0 (30 games) | no | never by 10,000 steps | — |" in text
    assert "| breakout | ppo-true | 23 | 50.0 ± 1.0 (30 games) | yes | — (no curve exported) | — |" in text
    assert ("| breakout | 23 | 11.5 | **30.0 ± 1.0 (30 games)** | 2.0 ± 1.0 (30 games) | **50.0 ± 1.0 (30 games)** "
            "| 0.58 |") in text, "recovered = (30 − 2) / (50 − 2)"


def test_an_out_path_that_cannot_be_a_file_is_one_line_error(files, tmp_path, capsys):
    lb, baselines = files
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad, why in ((afile / "x.md", "is a file, not a folder"), (tmp_path, "is a folder")):
        assert main(["tables", "trex", "--csv", str(lb), "--baselines", str(baselines), "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1 and "File exists" not in err
    assert afile.read_text() == "x"


def test_a_table_never_replaces_an_output_of_another_kind(files, tmp_path, capsys):
    """`tables trex --out results/leaderboard.csv` read the leaderboard, then replaced it with markdown."""
    lb, baselines = files
    before = lb.read_bytes()
    stranger = tmp_path / "notes.txt"
    stranger.write_text("mine")
    for bad, why in ((lb, "holds a leaderboard"), (stranger, "holds an existing file")):
        assert main(["tables", "trex", "--csv", str(lb), "--baselines", str(baselines), "--out", str(bad)]) == 2
        err = capsys.readouterr().err
        assert why in err and "name a .md file" in err and len(err.strip().splitlines()) == 1
    assert lb.read_bytes() == before and stranger.read_text() == "mine"
    table = tmp_path / "trex.md"
    for _ in range(2):  # a table written before is replaced by its newer version
        assert main(["tables", "trex", "--csv", str(lb), "--baselines", str(baselines), "--out", str(table)]) == 0


def test_committed_extrapolation_table_is_what_its_csv_generates():
    """results/tables/extrapolation.md is regenerated from its CSV by every `trex-bench extrapolation` run."""
    from pathlib import Path

    import pandas as pd

    from trex_bench.reward.extrapolation import markdown_table

    tables = Path(__file__).resolve().parents[2] / "results/tables"
    assert markdown_table(pd.read_csv(tables / "extrapolation.csv")) == (tables / "extrapolation.md").read_text()


def test_protocols_bc_without_ppo_is_current_and_controls_take_the_current_demo_set(files):
    """BC runs no PPO, so it records no schedule: only its demo set decides. A control logged beside an old demo set
    is current (it learns nothing from demos) and is compared with the game's current set."""
    from trex_bench.analysis.protocols import split_protocols
    from trex_bench.evaluation.leaderboard import read_leaderboard

    lb, _ = files
    append_row(lb, _row(0, 4.0, method="bc", schedule_steps="", rl_steps=0, reward_transform=""))
    append_row(lb, _row(0, 4.0, method="bc", schedule_steps="", rl_steps=0, reward_transform="", best_demo=16.0))
    append_row(lb, _row(0, 20.0, method="ppo-true", reward_transform="clip", best_demo=16.0, avg_demo=7.25))
    split = split_protocols(read_leaderboard(lb))
    bc = split.current[split.current["method"] == "bc"]
    assert len(bc) == 1 and bc["best_demo"].iloc[0] == 23.0
    assert split.earlier.loc[split.earlier["method"] == "bc", "why"].iloc[0].startswith("demo set best 16")
    true = split.current[split.current["method"] == "ppo-true"].iloc[0]
    assert (true["best_demo"], true["avg_demo"], bool(true["beats_best_demo"])) == (23.0, 11.5, False)


def test_drex_rows_on_their_own_demo_set_are_current_and_judged_on_it(files, tmp_path):
    """D-REX learns from one demonstrator's episodes (demos/<game>/drex-demos), not T-REX's ranked checkpoints. Its
    row, on a set of its own and logged last, once made that set the game's current one and filed every T-REX row
    under an earlier protocol. Now it is judged on its own set; a learner row naming no set is apart."""
    from trex_bench.analysis.protocols import split_protocols
    from trex_bench.analysis.results_doc import build_results_doc
    from trex_bench.evaluation.leaderboard import read_leaderboard

    lb, _ = files
    append_row(lb, _row(0, 20.0, method="drex", best_demo=18.0, avg_demo=11.4, ranking_source="noise"))
    append_row(lb, _row(0, 9.0, method="drex", best_demo=31.0, avg_demo=20.0, ranking_source="noise",
                        schedule_steps=""))  # an older D-REX row on another set: apart
    append_row(lb, _row(3, 12.0, method="bc", best_demo="", avg_demo="", schedule_steps="",
                        rl_steps=0, reward_transform=""))
    split = split_protocols(read_leaderboard(lb))
    assert set(split.current["method"]) == {"trex", "constant", "drex"}
    assert split.current.loc[split.current["method"] == "drex", "best_demo"].tolist() == [18.0]
    why = split.earlier.set_index("method")["why"]
    assert why["drex"] == "PPO annealed over its own steps; demo set best 31 / avg 20 (current: 18 / 11.4)"
    assert why["bc"] == "no demo set recorded"
    results = tmp_path / "results"
    results.mkdir()
    (results / "leaderboard.csv").write_bytes(lb.read_bytes())
    text = build_results_doc(results)
    assert "| breakout | 23 | 11.5 | 20.0 ± 14.1 (2 seeds) | **20.0 ± 1.0 (30 games)** · own demos, best 18 | 1.0 ± " \
           "1.0 (30 games) | — |" in text, "D-REX: bold above its own best demo (18), though below T-REX's (23)"


def test_a_row_run_otherwise_is_a_variant_never_pooled_with_the_usual(files):
    """Another ranking (human labels), env profile or a wall-time cap is another experiment, like another transform;
    D-REX ranks by noise alone (its early rows say "return"), so its ranking names no variant."""
    from trex_bench.evaluation.leaderboard import read_leaderboard
    from trex_bench.evaluation.summary import variants

    lb, baselines = files
    append_row(lb, _row(4, 60.0, env_profile="machado"))
    append_row(lb, _row(5, 70.0, time_capped=True, rl_steps=100_000))
    append_row(lb, _row(0, 8.0, method="drex", ranking_source="return"))
    rows = read_leaderboard(lb)
    assert variants(rows).tolist()[5] == "trex (human ranking)"
    assert variants(rows).tolist()[-3:] == ["trex (machado env)", "trex (time-capped)", "drex"]
    small = build_table("trex", lb, baselines)
    small = small[(small["budget"] == "small") & (small["protocol"] == "current")].iloc[0]
    assert (small["seeds"], small["ours mean"]) == (2, 20.0), "neither the machado nor the time-capped run counts"
    mturk = build_table("mturk", lb, baselines)
    assert mturk[mturk["budget"] == "small"].iloc[0]["ours mean"] == 50.0


def test_usual_ranking_is_the_methods_first():
    """``summary._USUAL_RANKING`` repeats ``METHODS[m].rankings[0]`` for methods with a choice of ranking."""
    from trex_bench.evaluation.summary import _USUAL_RANKING
    from trex_bench.experiment.methods import METHODS

    assert _USUAL_RANKING == {name: m.rankings[0] for name, m in METHODS.items() if len(m.rankings) > 1}


def test_the_row_transform_of_each_method_is_the_methods():
    """``leaderboard.ROW_TRANSFORM`` (what ``evaluate --leaderboard`` writes, and what ``summary`` calls a method's
    own transform) repeats ``METHODS[m].row_transform`` of each method that runs PPO without a learned reward."""
    from trex_bench.evaluation.leaderboard import ROW_TRANSFORM
    from trex_bench.experiment.methods import METHODS

    assert ROW_TRANSFORM == {name: m.row_transform for name, m in METHODS.items() if m.row_transform}


def test_results_doc_sets_each_variant_beside_its_method_run_as_usual(files, tmp_path):
    """A KL-penalised or otherwise-run row of the current protocol is not in the per-budget tables (another
    experiment), so docs/results.md lists it apart, beside the usual run at the same game and budget."""
    from trex_bench.analysis.results_doc import build_results_doc

    lb, _ = files
    results = tmp_path / "results"
    results.mkdir()
    (results / "leaderboard.csv").write_bytes(lb.read_bytes())
    text = build_results_doc(results)
    heads = [ln for ln in text.splitlines() if ln.startswith("## ")]
    assert heads[:2] == ["## Current protocol, per budget", "## Current protocol, variants"]
    section = text.split("## Current protocol, variants")[1].split("\n## ")[0]
    usual = "20.0 ± 14.1 (2 seeds)"  # seeds 0 (latest 10.0) and 1 (30.0)
    assert f"| breakout | small | trex (sigmoid+kl0.1) | 99.0 ± 1.0 (30 games) | {usual} | 23 | yes |" in section
    assert f"| breakout | small | trex (delta) | 77.0 ± 1.0 (30 games) | {usual} | 23 | yes |" in section
    assert f"| breakout | small | trex (human ranking) | 50.0 ± 1.0 (30 games) | {usual} | 23 | yes |" in section
    per_budget = text.split("## Current protocol, variants")[0]
    assert "99.0" not in per_budget and "77.0" not in per_budget
