"""The smaller cases of the third reliability round: each a one-line error (or the right behaviour) with nothing
written or lost."""

from __future__ import annotations

import os
import tempfile

import pytest

from trex_bench.cli import main


def _err(capsys, argv, rc=2):
    assert main(argv) == rc
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _parser_err(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


@pytest.fixture
def demo_dir(tmp_path, breakout_demos):
    from trex_bench.demos.store import save_demos

    return save_demos(breakout_demos, tmp_path / "demos")


def test_a_sweep_run_whose_summary_is_not_a_summary(tmp_path, capsys):
    """`summary.json` = `[]` was a traceback in the sweep (and in the pipeline it resumed)."""
    from trex_bench.experiment.sweep import plan_sweep

    (job,) = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=tmp_path / "runs")
    job.folder.mkdir(parents=True)
    job.config.write(job.folder / "config.json")
    (job.folder / "summary.json").write_text("[]")
    assert main(["sweep", "--games", "breakout", "--methods", "constant", "--budget", "smoke",
                 "--root", str(tmp_path / "runs"), "--leaderboard", str(tmp_path / "lb.csv")]) == 0
    out = capsys.readouterr().out
    assert "skipped" in out and "holds no score" in out
    err = _err(capsys, ["pipeline", "--config", str(job.folder / "config.json"), "--out", str(job.folder),
                        "--resume", "--leaderboard", str(tmp_path / "lb.csv")])
    assert "summary.json is not a run summary" in err and not (tmp_path / "lb.csv").exists()


def test_an_empty_seed_list_is_refused_by_the_parser(tmp_path, capsys):
    """`extrapolation --seeds ''` was `KeyError: 'game'` after training nothing, and left a stray `.lock`."""
    assert "no seed given" in _parser_err(capsys, ["extrapolation", "breakout", "--seeds", "",
                                                   "--results", str(tmp_path / "results")])
    assert "no seed given" in _parser_err(capsys, ["sweep", "--games", "breakout", "--methods", "trex",
                                                   "--budget", "smoke", "--seeds", " , "])
    assert not (tmp_path / "results").exists()


LONG = "x" * 300


@pytest.mark.parametrize("argv", [
    lambda t, d: ["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--seed", "0",
                  "--out", str(t / LONG)],
    lambda t, d: ["reward", "train", "breakout", "--demos", str(d), "--method", "trex", "--seed", "0",
                  "--out", str(t / LONG / "model")],
    lambda t, d: ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--out", str(t / LONG),
                  "--leaderboard", str(t / "lb.csv")],
    lambda t, d: ["evaluate", "--agent", str(d), "--out", str(t / LONG / "eval.json")],
], ids=["collect", "reward-train", "pipeline", "evaluate"])
def test_a_name_longer_than_the_file_system_allows_is_one_line(tmp_path, demo_dir, capsys, argv):
    """A 300-byte path component was a `File name too long` traceback."""
    before = sorted(p.name for p in tmp_path.iterdir())
    err = _err(capsys, argv(tmp_path, demo_dir))
    assert "bytes, more than this file system allows" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_collect_into_a_link_to_an_empty_folder_keeps_the_link(tmp_path, capsys):
    """The link used to be replaced by a real folder (the set landed beside the folder the user pointed at)."""
    from trex_bench.demos.store import load_demos

    (tmp_path / "target").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "target")
    assert main(["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--seed", "0",
                 "--max-steps", "5", "--envs", "1", "--no-progress", "--out", str(tmp_path / "link")]) == 0
    assert (tmp_path / "link").is_symlink() and (tmp_path / "target" / "manifest.json").is_file()
    assert len(load_demos(tmp_path / "link").episodes) == 1


def test_reward_train_into_a_dangling_link_names_the_link(tmp_path, demo_dir, capsys):
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    err = _err(capsys, ["reward", "train", "breakout", "--demos", str(demo_dir), "--method", "trex", "--seed", "0",
                        "--out", str(tmp_path / "link")])
    assert f"{tmp_path / 'link'} is a symbolic link to {tmp_path / 'nowhere'}, which does not exist" in err
    assert not (tmp_path / "nowhere").exists()


def test_a_read_only_parent_names_the_users_path_not_the_temp_folder(tmp_path, breakout_demos, monkeypatch):
    """Root ignores file modes, so the refusal the OS would give is simulated; the message must name `out`."""
    from trex_bench.core.io import atomic_write
    from trex_bench.demos.store import save_demos

    def refuse(*_a, dir=None, prefix="", **_k):
        raise PermissionError(13, "Permission denied", os.path.join(dir, prefix + "abc123"))

    monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(ValueError, match=r"^cannot write .*/demos: Permission denied$"):
        save_demos(breakout_demos, tmp_path / "demos")
    with pytest.raises(ValueError, match=r"^cannot write .*/x\.json: Permission denied$"):
        atomic_write(tmp_path / "x.json", lambda p: p.write_text("{}"))


@pytest.fixture
def bc_agent(tmp_path):
    """A BC policy folder: an agent `evaluate` plays (an untrained net: a few hundred steps a game)."""
    from trex_bench.bc.folder import save_bc
    from trex_bench.bc.train import BCNet, BCPolicy, action_set

    return save_bc(BCPolicy(BCNet(4), "breakout", action_set("breakout", "paper"), deterministic=True),
                   tmp_path / "bc", {"profile": "paper"})


@pytest.mark.parametrize("board", ["under-a-file", "foreign-csv"])
def test_evaluate_refuses_a_leaderboard_it_cannot_append_to_before_playing(tmp_path, bc_agent, demo_dir, capsys,
                                                                           board):
    """`evaluate --leaderboard <unwritable>` played, wrote eval.json, then failed."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "other.csv").write_text("name,score\nme,3\n")
    path = tmp_path / "afile" / "lb.csv" if board == "under-a-file" else tmp_path / "other.csv"
    err = _err(capsys, ["evaluate", "--agent", str(bc_agent), "--episodes", "1", "--envs", "1", "--demos",
                        str(demo_dir), "--leaderboard", str(path), "--no-progress"])
    assert str(path) in err or "afile is a file" in err
    assert not (bc_agent / "eval.json").exists()


def test_evaluate_an_agent_that_is_a_file_names_the_agent_not_out(tmp_path, capsys):
    """`evaluate --agent README.md` once said "--out README.md is a file", an option never passed."""
    (tmp_path / "notes.md").write_text("x")
    err = _err(capsys, ["evaluate", "--agent", str(tmp_path / "notes.md"), "--episodes", "1"])
    assert err.endswith("is not a folder (agent.zip + card.json, a BC or a random-policy folder)") and "--out" not in err
    assert (tmp_path / "notes.md").read_text() == "x"


def test_games_masks_that_is_a_file_fails_before_the_table(tmp_path, capsys):
    (tmp_path / "masks").write_text("x")
    assert main(["games", "--masks", str(tmp_path / "masks")]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and "is a file, not a folder" in captured.err


def test_collect_refuses_a_negative_checkpoint_and_options_the_ppo_demonstrator_ignores(tmp_path, capsys):
    assert "must be >= 0 (or -1: none)" in _parser_err(capsys, [
        "demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--seed", "0",
        "--checkpoint", "-5", "--out", str(tmp_path / "x")])
    err = _err(capsys, ["demos", "collect", "breakout", "--demonstrator", "ppo", "--episodes", "1", "--seed", "0",
                        "--max-steps", "100", "--out", str(tmp_path / "x")])
    assert "--max-steps is not used with --demonstrator ppo" in err and not list(tmp_path.iterdir())


def test_human_labels_that_only_compare_an_episode_with_itself_say_so(tmp_path, breakout_demos):
    from dataclasses import replace

    from trex_bench.reward.ranking import from_human_labels

    ds = replace(breakout_demos, episodes=tuple(replace(e, checkpoint=i) for i, e in enumerate(breakout_demos.episodes)))
    (tmp_path / "labels.csv").write_text("A,B,label\n1,1,0\n2,2,1\n")
    with pytest.raises(ValueError, match="2 of 2 rows compare a checkpoint with itself") as e:
        from_human_labels(ds, tmp_path / "labels.csv")
    assert "not in the demo set" not in str(e.value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_a_degradation_reference_with_non_finite_returns_writes_nothing(tmp_path, demo_dir, capsys, value):
    (tmp_path / "ref.csv").write_text(f"0.0, 1.0, 2.0\n0.5, {value}, 1.0\n")
    err = _err(capsys, ["demos", "degradation", str(demo_dir), "--out", str(tmp_path / "P"),
                        "--reference", str(tmp_path / "ref.csv")])
    assert "ref.csv:2" in err and "not a finite number" in err
    assert not (tmp_path / "P.csv").exists() and not (tmp_path / "P.png").exists()


def test_default_demo_sets_are_named_in_help(capsys):
    from trex_bench.experiment.config import REPO_DEMOS

    with pytest.raises(SystemExit):
        main(["pipeline", "--help"])
    assert str(REPO_DEMOS) in " ".join(capsys.readouterr().out.split())
