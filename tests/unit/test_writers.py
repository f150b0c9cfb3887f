"""Writers refuse to clobber what is not theirs, and bad output locations and devices are one clear line
(issue 16: D4, D7)."""

from __future__ import annotations

import json
import re

import pytest

from trex_bench.cli import main


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def folders(tmp_path):
    """A reward-model-like folder, a BC-like folder, a demo-set-like folder and a stranger's folder."""
    out = {}
    for name, card in [("reward", {"kind": "reward_model"}), ("bc", {"kind": "bc_policy"}), ("agent", {"kind": "agent"})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.json").write_text(json.dumps(card))
        out[name] = tmp_path / name
    (tmp_path / "thesis").mkdir()
    (tmp_path / "thesis" / "thesis.txt").write_text("hi")
    out["thesis"] = tmp_path / "thesis"
    (tmp_path / "afile").write_text("x")
    out["afile"] = tmp_path / "afile"
    return out


def _bc(out, *extra):
    return ["bc", "train", "breakout", "--demos", "nowhere", "--seed", "0", "--out", str(out), *extra]


def _reward(out, *extra):
    return ["reward", "train", "breakout", "--demos", "nowhere", "--method", "trex", "--seed", "0", "--out", str(out),
            *extra]


@pytest.mark.parametrize("command, target, kind", [
    (_bc, "reward", "is a reward model, not a BC policy"),
    (_bc, "thesis", "is a non-empty folder, not a BC policy"),
    (_reward, "bc", "is a BC policy, not a reward model"),
    (_reward, "agent", "is an agent, not a reward model"),
    (_reward, "thesis", "is a non-empty folder, not a reward model"),
])
def test_trainers_refuse_a_folder_of_another_kind(folders, capsys, command, target, kind):
    before = sorted(p.name for p in folders[target].iterdir())
    err = _err(capsys, command(folders[target]))
    assert str(folders[target]) in err and "--overwrite" in err and re.search(kind, err)
    assert sorted(p.name for p in folders[target].iterdir()) == before
    # --overwrite lets the writer through: it fails later, on the missing demo set, not on --out
    assert "--overwrite" not in _err(capsys, command(folders[target], "--overwrite"))


@pytest.mark.parametrize("command", [_bc, _reward])
def test_trainers_refuse_an_out_that_is_a_file(folders, capsys, command):
    assert "is a file" in _err(capsys, command(folders["afile"]))
    assert folders["afile"].read_text() == "x"


def test_evaluate_refuses_to_replace_another_file(folders, capsys):
    card = folders["reward"] / "card.json"
    text = card.read_text()
    err = _err(capsys, ["evaluate", "--agent", str(folders["agent"]), "--out", str(card), "--no-progress"])
    assert "not an evaluation report" in err and card.read_text() == text
    err = _err(capsys, ["evaluate", "--agent", str(folders["agent"]), "--out", str(folders["afile"]), "--no-progress"])
    assert "is a file" in err


@pytest.mark.parametrize("argv", [
    ["evaluate", "--agent", "x", "--device", "bogus"],
    ["rl", "train", "breakout", "--reward", "true", "--budget", "smoke", "--seed", "0", "--out", "x", "--device", "gpu0"],
    ["bc", "train", "breakout", "--demos", "x", "--seed", "0", "--out", "x", "--device", "bogus"],
])
def test_bogus_device_is_refused_by_the_parser(argv, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and "not a torch device" in capsys.readouterr().err


def test_cuda_without_cuda_is_refused(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit):
        main(["evaluate", "--agent", "x", "--device", "cuda"])
    assert "no CUDA device" in capsys.readouterr().err


def test_leaderboard_that_is_a_directory_or_under_a_file(tmp_path):
    from trex_bench.evaluation.leaderboard import append_row

    row = dict(game="breakout", method="trex", seed=0, mean=1.0)
    (tmp_path / "lb").mkdir()
    with pytest.raises(ValueError, match="is a directory"):
        append_row(tmp_path / "lb", row)
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match=r"cannot write the leaderboard .*f/lb\.csv"):
        append_row(tmp_path / "f" / "lb.csv", row)



def test_empty_or_directory_leaderboard_reads_cleanly(tmp_path):
    from trex_bench.evaluation.leaderboard import read_leaderboard

    (tmp_path / "empty.csv").write_text("")
    assert len(read_leaderboard(tmp_path / "empty.csv")) == 0
    (tmp_path / "dir.csv").mkdir()
    with pytest.raises(ValueError, match="dir.csv is a directory"):
        read_leaderboard(tmp_path / "dir.csv")
