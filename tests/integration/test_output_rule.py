"""One writer rule (``core.io.claim_output``): every command that writes refuses, before any work, to replace or mix
into an output of another kind, in one line naming the path and what is there; the target is left byte-identical."""

from __future__ import annotations

import hashlib
import json
import os
import stat

import pytest

from trex_bench.cli import main
from trex_bench.core.io import claim_output, output_kind

LEADERBOARD_HEADER = "run_id,utc_time,git_commit,versions,device,game,env_profile,method\n"


def _err(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def _snapshot(path):
    """Every file under ``path`` (or the file itself) with its bytes' hash: what "left untouched" means."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.fixture
def outputs(tmp_path, breakout_demos):
    """One output of every kind, as the writers leave them (small but recognisable)."""
    from trex_bench.demos.store import save_demos
    from trex_bench.reward.net import RewardNet, save_model

    out = {"demos": save_demos(breakout_demos, tmp_path / "demos")}
    out["reward"] = save_model(RewardNet("breakout"), tmp_path / "reward", {"profile": "paper", "method": "trex"})
    for name, card in [("agent", {"kind": "agent", "game": "breakout"}), ("bc", {"kind": "bc_policy"})]:
        (tmp_path / name).mkdir()
        (tmp_path / name / "card.json").write_text(json.dumps(card))
        out[name] = tmp_path / name
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({"schema": 1, "game": "breakout", "method": "trex"}))
    out["run"] = tmp_path / "run"
    (tmp_path / "lb.csv").write_text(LEADERBOARD_HEADER)
    out["leaderboard"] = tmp_path / "lb.csv"
    (tmp_path / "notes.csv").write_text("a,b\n1,2\n")
    out["csv"] = tmp_path / "notes.csv"
    (tmp_path / "P.csv").write_text(LEADERBOARD_HEADER)  # `demos degradation --out P` must not write over it
    out["P"] = tmp_path / "P"
    return out


def _cases():
    smoke = ["--budget", "smoke", "--seed", "0", "--no-progress"]
    return [
        ("rl-train-over-reward-model", "reward", "is a reward model, not an agent",
         lambda o: ["rl", "train", "breakout", "--reward", "true", *smoke, "--out", str(o["reward"])]),
        ("rl-train-resume-over-reward-model", "reward", "is a reward model, not an agent",
         lambda o: ["rl", "train", "breakout", "--reward", "true", *smoke, "--out", str(o["reward"]), "--resume"]),
        ("rl-train-over-demo-set", "demos", "is a demo set, not an agent",
         lambda o: ["rl", "train", "breakout", "--reward", "true", *smoke, "--out", str(o["demos"])]),
        ("reward-score-over-agent-card", "agent", "card.json is an existing file, not a fidelity report",
         lambda o: ["reward", "score", "--model", str(o["reward"]), "--demos", str(o["demos"]),
                    "--out", str(o["agent"] / "card.json")]),
        ("reward-score-over-a-csv", "csv", "notes.csv is an existing file, not a fidelity report",
         lambda o: ["reward", "score", "--model", str(o["reward"]), "--demos", str(o["demos"]),
                    "--out", str(o["csv"])]),
        ("reward-import-over-agent", "agent", "is an agent, not a reward model",
         lambda o: ["reward", "import", "breakout", "--official", "trex", "--out", str(o["agent"])]),
        ("reward-import-over-demo-set", "demos", "is a demo set, not a reward model",
         lambda o: ["reward", "import", "breakout", "--official", "trex", "--out", str(o["demos"])]),
        ("degradation-over-a-leaderboard", "leaderboard", "P.csv is a leaderboard, not a degradation CSV",
         lambda o: ["demos", "degradation", str(o["demos"]), "--out", str(o["P"])]),
        ("bc-train-over-run-folder", "run", "is a run folder, not a BC policy",
         lambda o: ["bc", "train", "breakout", "--demos", str(o["demos"]), *smoke[2:4], "--out", str(o["run"])]),
        ("reward-train-over-demo-set", "demos", "is a demo set, not a reward model",
         lambda o: ["reward", "train", "breakout", "--demos", str(o["demos"]), "--method", "trex", *smoke[2:4],
                    "--out", str(o["demos"])]),
        ("evaluate-over-a-reward-card", "reward", "card.json is an existing file, not an evaluation report",
         lambda o: ["evaluate", "--agent", str(o["agent"]), "--out", str(o["reward"] / "card.json")]),
        ("collect-over-reward-model", "reward", "is a reward model, not a demo set",
         lambda o: ["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--seed", "0",
                    "--out", str(o["reward"]), "--overwrite"]),
        ("pipeline-resume-over-reward-model", "reward", "is a reward model, not a run folder",
         lambda o: ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--out", str(o["reward"]),
                    "--resume", "--leaderboard", str(o["leaderboard"])]),
        ("pipeline-over-demo-set", "demos", "is a demo set, not a run folder",
         lambda o: ["pipeline", "breakout", "--method", "constant", "--budget", "smoke", "--out", str(o["demos"]),
                    "--leaderboard", str(o["leaderboard"])]),
        ("pipeline-leaderboard-over-a-csv", "csv", "notes.csv is an existing file, not a leaderboard",
         lambda o: ["pipeline", "breakout", "--method", "constant", "--budget", "smoke",
                    "--out", str(o["run"].parent / "new-run"), "--leaderboard", str(o["csv"])]),
        ("extrapolation-runs-over-bc", "bc", "is a BC policy, not a reward model",
         lambda o: ["extrapolation", "breakout", "--seeds", "0", "--no-progress", "--runs", str(o["bc"].parent),
                    "--results", str(o["bc"].parent / "results")]),
    ]


@pytest.mark.parametrize("target, expected, argv", [c[1:] for c in _cases()], ids=[c[0] for c in _cases()])
def test_every_writer_refuses_an_output_of_another_kind(outputs, capsys, target, expected, argv, tmp_path):
    if target == "bc":  # extrapolation's run folder for breakout trex quick seed 0
        os.rename(outputs["bc"], tmp_path / "breakout-trex-quick-s0")
        outputs["bc"] = tmp_path / "breakout-trex-quick-s0"
    before = _snapshot(outputs[target])
    listing = sorted(p.name for p in tmp_path.iterdir())
    err = _err(capsys, argv(outputs))
    assert expected in err
    assert _snapshot(outputs[target]) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == listing  # nothing new beside it either


def test_an_output_of_the_same_kind_or_nothing_may_be_written(tmp_path, outputs):
    assert claim_output(outputs["reward"], "reward_model") == "reward_model"  # the same run written again
    assert claim_output(tmp_path / "new", "agent") == ""
    (tmp_path / "hidden").mkdir()
    (tmp_path / "hidden" / ".partial-key").write_text("k")  # bookkeeping, not an output
    assert claim_output(tmp_path / "hidden", "agent") == ""
    assert output_kind(outputs["demos"]) == "demo_set" and output_kind(outputs["run"]) == "run_folder"
    assert claim_output(outputs["agent"], "reward_model", overwrite=True) == "agent"  # --overwrite: consent
    for checkpoint in ("ppo_1024_steps.zip", "ppo_1024_steps.interim.zip"):  # a run cut off, its run.json lost
        (tmp_path / checkpoint / "checkpoints").mkdir(parents=True)
        (tmp_path / checkpoint / "checkpoints" / checkpoint).write_bytes(b"PK")
        assert output_kind(tmp_path / checkpoint) == "agent"


def test_a_refusal_names_overwrite_only_where_the_command_has_it(outputs):
    with pytest.raises(ValueError, match="choose another --out or pass --overwrite$"):
        claim_output(outputs["agent"], "reward_model", overwrite=False)
    with pytest.raises(ValueError, match="choose another --out$"):
        claim_output(outputs["agent"], "reward_model")


@pytest.mark.parametrize("save", ["reward", "bc"])
def test_model_weights_get_the_umask_mode_like_every_other_file(tmp_path, save):
    """safetensors' save_file writes its own file: it came out 0600 while the card beside it was 0644."""
    old = os.umask(0o022)
    try:
        if save == "reward":
            from trex_bench.reward.net import RewardNet, save_model

            folder = save_model(RewardNet("breakout"), tmp_path / "m", {"profile": "paper"})
        else:
            from trex_bench.bc.folder import save_bc
            from trex_bench.bc.train import BCNet, BCPolicy

            policy = BCPolicy(BCNet(4), "breakout", None, deterministic=True)
            folder = save_bc(policy, tmp_path / "m", {"profile": "paper"})
    finally:
        os.umask(old)
    for name in ("model.safetensors", "card.json"):
        assert stat.S_IMODE((folder / name).stat().st_mode) == 0o644, name
