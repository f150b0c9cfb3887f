"""Aggregate statistics (rliable): IQMs and probabilities of improvement on a synthetic leaderboard, by hand."""

from __future__ import annotations

import pytest

from trex_bench.analysis.stats import aggregate_stats, to_markdown
from trex_bench.cli import main
from trex_bench.evaluation.leaderboard import append_row, read_leaderboard

# Random scores (games.py): breakout 1.7, pong -20.7, seaquest 68.4, hero 1027, qbert 163.9. Best demos 10 above
# random: normalised = (score - random) / 10.
BEST = {"breakout": 11.7, "pong": -10.7, "seaquest": 78.4, "hero": 1037.0, "qbert": 173.9}
TREX = {"breakout": [1.7, 3.7, 6.7, 11.7], "pong": [-20.7, -18.7, -15.7, -5.7]}  # demo-normalised 0 .2 .5 1 / 0 .2 .5 1.5


def _row(game: str, method: str, seed: int, mean: float, **kw) -> dict:
    transform = {"trex": "sigmoid", "drex": "sigmoid", "constant": "constant", "ppo-true": "sign", "bc": "",
                 "random": ""}[method]
    return dict(game=game, method=method, seed=seed, mean=mean, best_demo=BEST[game], avg_demo=BEST[game] - 5,
                budget="small", schedule_steps=10_000_000, reward_transform=transform, env_profile="paper") | kw


@pytest.fixture
def board(tmp_path):
    lb = tmp_path / "lb.csv"
    for game, scores in TREX.items():
        for seed, s in enumerate(scores):
            append_row(lb, _row(game, "trex", seed, s))
    append_row(lb, _row("breakout", "constant", 0, 1.7))
    append_row(lb, _row("pong", "constant", 0, -20.7))
    append_row(lb, _row("breakout", "ppo-true", 0, 11.7))       # true-normalised breakout: 0 .2 .5 1
    append_row(lb, _row("pong", "ppo-true", 0, -0.7))           # pong: (s + 20.7) / 20 = 0 .1 .25 .75
    append_row(lb, _row("breakout", "bc", 0, 6.7))
    append_row(lb, _row("pong", "bc", 0, -15.7))
    append_row(lb, _row("breakout", "trex", 0, 500.0, schedule_steps=""))             # another horizon: never mixed
    append_row(lb, _row("breakout", "trex", 0, 400.0, reward_transform="sigmoid+kl0.1"))  # another variant
    return lb


def _agg(stats, variant: str, norm: str, horizon: str = "10,000,000", budget: str | None = None):
    """The one aggregate of a variant (at ``budget``; None: any budget but the eight-game set's)."""
    from trex_bench.analysis.protocols import SUITE

    a = stats.aggregates
    at = a["budget"] == budget if budget is not None else a["budget"] != SUITE
    hit = a[(a["variant"] == variant) & (a["normalisation"] == norm) & (a["horizon"] == horizon) & at]
    assert len(hit) == 1, a
    return hit.iloc[0]


def test_iqms_match_hand_computed_values(board):
    stats = aggregate_stats(read_leaderboard(board), reps=200, seed=0)
    demo = _agg(stats, "trex", "demo")
    # eight runs 0 0 .2 .2 .5 .5 1 1.5: the middle four .2 .2 .5 .5
    assert demo["iqm"] == pytest.approx(0.35)
    assert (demo["games"], demo["runs"]) == (2, 8)
    assert demo["ci_low"] <= demo["iqm"] <= demo["ci_high"] and demo["ci_low"] < demo["ci_high"]
    true = _agg(stats, "trex", "true")
    # 0 0 .1 .2 .25 .5 .75 1: the middle four .1 .2 .25 .5
    assert true["iqm"] == pytest.approx(0.2625)
    assert _agg(stats, "ppo-true", "true")["iqm"] == pytest.approx(1.0)
    assert _agg(stats, "trex", "demo", horizon="own steps")["iqm"] == pytest.approx((500 - 1.7) / 10)
    assert _agg(stats, "trex (sigmoid+kl0.1)", "demo")["runs"] == 1


def test_probability_of_improvement_and_best_of_seeds(board):
    stats = aggregate_stats(read_leaderboard(board), reps=200, seed=0)
    imp = stats.improvements.set_index("other")
    # per game: T-REX's four runs against one control run; a tie counts a half
    assert imp.loc["constant", "probability"] == pytest.approx((0.5 + 1 + 1 + 1) / 4)
    assert imp.loc["bc", "probability"] == pytest.approx((0 + 0 + 0.5 + 1) / 4)
    best = stats.best_of_seeds
    row = best[(best["variant"] == "trex") & (best["game"] == "pong") & (best["horizon"] == "10,000,000")].iloc[0]
    assert (row["seeds"], row["best"], row["best_demo_normalised"]) == (4, -5.7, pytest.approx(1.5))


def test_missing_method_is_named_and_the_rest_is_built(board):
    stats = aggregate_stats(read_leaderboard(board), reps=50, seed=0)
    assert "no leaderboard rows for method 'drex'" in stats.notes
    assert any("P(trex > drex)" in n for n in stats.notes)
    assert "drex" not in set(stats.improvements["other"])
    assert len(stats.aggregates) > 0
    text = to_markdown(stats)
    assert "no leaderboard rows for method 'drex'" in text and "0.35 [" in text


def test_bootstrap_is_seeded(board):
    df = read_leaderboard(board)
    a, b = aggregate_stats(df, reps=100, seed=3), aggregate_stats(df, reps=100, seed=3)
    assert a.aggregates.equals(b.aggregates) and a.improvements.equals(b.improvements)
    with pytest.raises(ValueError, match="reps"):
        aggregate_stats(df, reps=0)


def test_cli_tables_stats_writes_markdown(board, tmp_path, capsys):
    out = tmp_path / "stats.md"
    assert main(["tables", "stats", "--csv", str(board), "--out", str(out), "--reps", "50"]) == 0
    assert "Probability of improvement" in out.read_text() and "wrote" in capsys.readouterr().out


def test_one_demo_set_per_game_budget_and_horizon_controls_included(tmp_path):
    """Found 2026-12-01: T-REX was normalised by its demo set's best (15) and PPO on the true reward, logged beside
    another set, by that set's (23), so at one budget T-REX out-scored the true reward it trailed. Now T-REX's set
    normalises the controls too, and a learned method's rows on another set are left out."""
    lb = tmp_path / "lb.csv"
    append_row(lb, _row("breakout", "trex", 0, 6.7))                                    # best demo 11.7
    append_row(lb, _row("breakout", "ppo-true", 0, 11.7, best_demo=21.7, avg_demo=9.0))  # logged beside another set
    append_row(lb, _row("breakout", "constant", 0, 1.7, best_demo=21.7, avg_demo=9.0))
    append_row(lb, _row("breakout", "bc", 0, 6.7, best_demo=21.7, avg_demo=9.0))         # BC on the other set
    stats = aggregate_stats(read_leaderboard(lb), reps=50, seed=0)
    assert _agg(stats, "ppo-true", "demo")["iqm"] == pytest.approx(1.0), "normalised by T-REX's set: (11.7-1.7)/10"
    assert _agg(stats, "trex", "demo")["iqm"] == pytest.approx(0.5)
    assert _agg(stats, "trex", "true")["iqm"] == pytest.approx(0.5)
    assert not (stats.aggregates["variant"] == "bc").any(), "BC learned from another demo set: not comparable here"


def test_true_normalised_needs_the_true_reward_above_the_constant(tmp_path):
    """BeamRider at small (2026-12-01): constant 622 > true 610. (score − c) / (t − c) would divide by a negative gap."""
    lb = tmp_path / "lb.csv"
    append_row(lb, _row("breakout", "trex", 0, 6.7))
    append_row(lb, _row("breakout", "constant", 0, 9.0))
    append_row(lb, _row("breakout", "ppo-true", 0, 8.0))
    stats = aggregate_stats(read_leaderboard(lb), reps=50, seed=0)
    a = stats.aggregates
    assert a[a["normalisation"] == "true"].empty
    assert any("scores no higher than the constant" in n for n in stats.notes)


def test_one_run_per_game_resamples_the_games(tmp_path):
    """A stratified bootstrap over one run per game resamples the data itself: a zero-width "CI" by construction.
    The games are resampled too (rliable's task bootstrap), marked "over games", from 5 games; an interval no
    resample moved is not shown either. Never [x, x]."""
    lb = tmp_path / "lb.csv"
    for i, game in enumerate(BEST):
        append_row(lb, _row(game, "trex", 0, BEST[game] - 10 + i))  # demo-normalised 0, .1, .2, .3, .4
        append_row(lb, _row(game, "constant", 0, BEST[game] - 10 + (i + 2) % 5))  # 0.2, .3, .4, 0, .1
    stats = aggregate_stats(read_leaderboard(lb), reps=400, seed=0)
    demo = _agg(stats, "trex", "demo")
    assert (demo["runs"], demo["ci_over"]) == (5, "games")
    assert demo["iqm"] == pytest.approx(0.2) and 0.0 <= demo["ci_low"] < 0.2 < demo["ci_high"] <= 0.4  # in the data
    p = stats.improvements.set_index("other").loc["constant"]  # T-REX wins on 2 games of 5
    assert p["probability"] == pytest.approx(0.4) and p["ci_over"] == "games" and p["ci_low"] < 0.4 < p["ci_high"]
    row = f"| trex | small | 10,000,000 | 0.20 [{demo['ci_low']:.2f}, {demo['ci_high']:.2f}] over games | 5 | 5 |"
    assert row in to_markdown(stats)

    few = tmp_path / "few.csv"
    for game in list(BEST)[:4]:
        append_row(few, _row(game, "trex", 0, BEST[game] - 5))
    stats = aggregate_stats(read_leaderboard(few), reps=50, seed=0)
    demo = _agg(stats, "trex", "demo")
    assert demo["ci_over"] == "few games" and demo["ci_low"] != demo["ci_low"]  # NaN
    assert "0.50 (n/a: a game with one run, under 5 games)" in to_markdown(stats)


def test_an_interval_no_resample_moved_is_not_shown(tmp_path):
    lb = tmp_path / "lb.csv"
    for game in BEST:  # T-REX beats the control on every game: P = 1 in every resample
        append_row(lb, _row(game, "trex", 0, BEST[game] - 5))
        append_row(lb, _row(game, "constant", 0, BEST[game] - 9))
    stats = aggregate_stats(read_leaderboard(lb), reps=100, seed=0)
    p = stats.improvements.set_index("other").loc["constant"]
    assert (p["probability"], p["ci_over"]) == (1.0, "no spread") and p["ci_low"] != p["ci_low"]
    assert "| constant | 1.00 (n/a: no resample moved it) |" in to_markdown(stats)


def test_a_game_with_one_run_among_games_with_more_resamples_the_games_too(tmp_path):
    """Stratified alone, the one-run game would be fixed in every resample and the interval too narrow."""
    lb = tmp_path / "lb.csv"
    for game in BEST:
        append_row(lb, _row(game, "trex", 0, BEST[game] - 5))
    append_row(lb, _row("breakout", "trex", 1, 1.7))  # a second run on one game
    demo = _agg(aggregate_stats(read_leaderboard(lb), reps=200, seed=0), "trex", "demo")
    assert demo["ci_over"] == "games" and demo["ci_low"] < demo["ci_high"]


def test_resampled_games_stay_paired_across_the_arguments():
    """P(X > Y) compares X and Y on the same game: one draw of games serves both."""
    import numpy as np

    from trex_bench.analysis.stats import _bootstrap

    xs = [np.array([float(g)]) for g in range(6)]
    ys = [np.array([g + 100.0]) for g in range(6)]

    def paired_mean(x, y):  # the mean of x where every pair is of one game, else -1
        return float(np.mean(np.concatenate(x))) if all(b[0] - a[0] == 100 for a, b in zip(x, y)) else -1.0

    point, low, high, over = _bootstrap([xs, ys], paired_mean, 300, np.random.default_rng(0))
    assert (point, over) == (2.5, "games") and 0 <= low < point < high


def test_bootstrap_arguments_out_of_range_are_one_line_errors(board, tmp_path, capsys):
    out = tmp_path / "stats.md"
    for args, why in ((["--seed", "-1"], "seed"), (["--reps", "100000000000"], "--reps"), (["--reps", "0"], "--reps")):
        assert main(["tables", "stats", "--csv", str(board), "--out", str(out), *args]) == 2
        err = capsys.readouterr().err
        assert why in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()
    with pytest.raises(ValueError, match="seed"):
        aggregate_stats(read_leaderboard(board), reps=10, seed=-1)


def test_stats_page_keeps_earlier_protocols_apart(board, tmp_path):
    """The row annealed over its own steps is aggregated in a section of its own, after the current protocol's."""
    out = tmp_path / "stats.md"
    assert main(["tables", "stats", "--csv", str(board), "--out", str(out), "--reps", "20"]) == 0
    current, earlier = out.read_text().split("## Earlier protocols")
    assert "own steps" not in current and "| trex | small | own steps |" in earlier


def test_a_row_without_ppo_sits_beside_the_current_protocol(tmp_path):
    """A random policy trains nothing: its row has no PPO schedule (``schedule_steps`` empty, ``rl_steps`` 0), which
    must not file it under the replaced "annealed over its own steps" protocol, away from the controls it is
    normalised by. A T-REX row without a schedule that did run PPO stays apart."""
    lb = tmp_path / "lb.csv"
    append_row(lb, _row("breakout", "trex", 0, 6.7))
    append_row(lb, _row("breakout", "constant", 0, 1.7))
    append_row(lb, _row("breakout", "ppo-true", 0, 11.7))
    append_row(lb, _row("breakout", "random", 0, 4.2, schedule_steps="", rl_steps=0))
    append_row(lb, _row("breakout", "trex", 1, 9.9, schedule_steps="", rl_steps=500_000))
    stats = aggregate_stats(read_leaderboard(lb), reps=50, seed=0)
    assert _agg(stats, "random", "true")["iqm"] == pytest.approx(0.25), "(4.2 - 1.7) / (11.7 - 1.7)"
    assert _agg(stats, "trex", "demo", horizon="own steps")["runs"] == 1
    assert stats.improvements.set_index("other").loc["random", "probability"] == pytest.approx(1.0)


def test_a_row_without_ppo_sits_beside_its_budgets_ppo_rows(tmp_path):
    """At ``paper`` the PPO rows anneal over the budget's own length (12.5M steps), not rl-zoo3's 10M horizon: a BC
    or random row there was filed under 10M, apart from them, and P(T-REX > BC) had no rows."""
    from trex_bench.experiment.budgets import ppo_config

    paper = dict(budget="paper", schedule_steps=ppo_config("paper").horizon)
    lb = tmp_path / "lb.csv"
    for method, mean in (("trex", 6.7), ("constant", 1.7), ("ppo-true", 11.7)):
        append_row(lb, _row("breakout", method, 0, mean, **paper))
    append_row(lb, _row("breakout", "bc", 0, 4.2, budget="paper", schedule_steps="", rl_steps=0))
    stats = aggregate_stats(read_leaderboard(lb), reps=50, seed=0)
    at = f"{ppo_config('paper').horizon:,}"
    assert _agg(stats, "bc", "true", horizon=at)["iqm"] == pytest.approx(0.25), "(4.2 - 1.7) / (11.7 - 1.7)"
    assert stats.improvements.set_index("other").loc["bc", "probability"] == pytest.approx(1.0)


def test_drex_is_compared_with_trex_and_normalised_by_its_own_demo_set(tmp_path):
    """D-REX's rows sit on a demo set of their own (one demonstrator's episodes): P(T-REX > D-REX) is computed, each
    is demo-normalised by its own set, and the controls by T-REX's."""
    from trex_bench.analysis.stats import protocol_stats

    lb = tmp_path / "lb.csv"
    append_row(lb, _row("breakout", "trex", 0, 6.7))                                    # best demo 11.7
    append_row(lb, _row("breakout", "constant", 0, 1.7))
    append_row(lb, _row("breakout", "ppo-true", 0, 11.7))
    append_row(lb, _row("breakout", "drex", 0, 3.7, best_demo=21.7, avg_demo=9.0, ranking_source="noise"))
    current, earlier = protocol_stats(read_leaderboard(lb), reps=50, seed=0)
    assert _agg(current, "trex", "demo")["iqm"] == pytest.approx(0.5)
    assert _agg(current, "drex", "demo")["iqm"] == pytest.approx(0.1), "(3.7 - 1.7) / (21.7 - 1.7)"
    assert _agg(current, "ppo-true", "demo")["iqm"] == pytest.approx(1.0), "by T-REX's set: (11.7 - 1.7) / 10"
    assert current.improvements.set_index(["budget", "other"]).loc[("small", "drex"), "probability"] == 1.0
    assert earlier.aggregates.empty


def test_unequal_runs_per_game_are_named_in_the_notes(board):
    """The pooled IQM weighs a game by its runs; where games have different run counts the page says so."""
    append_row(board, _row("breakout", "trex", 4, 2.7))
    notes = aggregate_stats(read_leaderboard(board), reps=20, seed=0).notes
    assert "IQM of trex at small (10,000,000) pools unequal runs per game (breakout 5, pong 4): a game with more " \
           "runs weighs more" in notes
    assert not any(n.startswith("IQM of constant") for n in notes)


def test_the_eight_game_leaderboard_pools_pong_at_medium_with_the_rest_at_small(tmp_path):
    """The leaderboard runs every game at small but Pong at medium: P(T-REX > BC) over its games must count Pong's
    medium rows with the others' small rows (split by budget, Pong was never among them), and keep each budget's own
    rows too; a game's rows at another budget stay out of the set."""
    from trex_bench.analysis.protocols import SUITE
    from trex_bench.analysis.stats import protocol_stats

    lb = tmp_path / "lb.csv"
    for game, budget in (("breakout", "small"), ("seaquest", "small"), ("pong", "medium")):
        append_row(lb, _row(game, "trex", 0, BEST[game], budget=budget))
        append_row(lb, _row(game, "bc", 0, BEST[game] - 1, budget=budget))
    append_row(lb, _row("qbert", "trex", 0, 0.0, budget="medium"))  # not qbert's leaderboard budget
    current, _ = protocol_stats(read_leaderboard(lb), reps=50, seed=0)
    imp = current.improvements.set_index(["budget", "other"])
    assert imp.loc[(SUITE, "bc"), "games"] == 3 and imp.loc[(SUITE, "bc"), "probability"] == pytest.approx(1.0)
    assert imp.loc[("small", "bc"), "games"] == 2 and imp.loc[("medium", "bc"), "games"] == 1
    assert SUITE not in set(current.best_of_seeds["budget"])  # each game's best is listed once, at its budget
