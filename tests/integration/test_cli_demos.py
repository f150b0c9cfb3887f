"""The `trex-bench demos` and `games` commands, including every bad input of the foundation issue."""

import numpy as np
import pytest

from trex_bench.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_games_table(capsys):
    code, out, _ = run(capsys, "games")
    assert code == 0 and "breakout" in out and "BreakoutNoFrameskip-v4" in out and "videopinball" in out


def test_collect_verify_info(tmp_path, capsys):
    out_dir = tmp_path / "demo-check"
    code, out, _ = run(capsys, "demos", "collect", "breakout", "--demonstrator", "scripted", "--episodes", "2",
                       "--seed", "0", "--max-steps", "300", "--out", str(out_dir), "--no-progress")
    assert code == 0 and f"wrote 2 episodes to {out_dir}" in out
    code, out, _ = run(capsys, "demos", "verify", str(out_dir))
    assert code == 0 and "ok: 2 episodes replay exactly; returns" in out
    code, out, _ = run(capsys, "demos", "info", str(out_dir))
    assert code == 0 and "breakout, profile paper, 2 episodes" in out
    # Same folder, different set: refused without --overwrite, the old set intact.
    before = (out_dir / "manifest.json").read_bytes()
    code, _, err = run(capsys, "demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1",
                       "--seed", "0", "--out", str(out_dir), "--no-progress")
    assert code == 2 and "--overwrite" in err and err.count("\n") == 1
    assert (out_dir / "manifest.json").read_bytes() == before


def test_verify_fails_loudly_on_tampering(tmp_path, capsys, breakout_demos):
    from trex_bench.demos.store import save_demos

    out_dir = save_demos(breakout_demos, tmp_path / "d")
    with np.load(out_dir / "ep_0000.npz") as z:
        data = dict(z)
    data["actions"] = np.roll(data["actions"], 5)
    np.savez_compressed(out_dir / "ep_0000.npz", **data)
    code, out, _ = run(capsys, "demos", "verify", str(out_dir))
    assert code == 1 and "FAILED: 1 of 4" in out and "mismatch" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demos", "collect", "breakot", "--demonstrator", "scripted", "--episodes", "1", "--seed", "0"], "unknown game 'breakot'"),
        (["demos", "collect", "breakout", "--demonstrator", "expert", "--episodes", "1", "--seed", "0"], "unknown demonstrator 'expert'"),
        (["demos", "verify", "no-such-dir"], "not a demo set"),
        (["demos", "info", "no-such-dir"], "not a demo set"),
    ],
)
def test_bad_input_one_line_error_no_output(tmp_path, capsys, argv, message):
    out_dir = tmp_path / "out"
    argv = [*argv, "--out", str(out_dir)] if argv[1] == "collect" else [argv[0], argv[1], str(tmp_path / argv[2])]
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert message in err and err.startswith("trex-bench: error:") and err.count("\n") == 1
    assert not out_dir.exists()


@pytest.mark.parametrize(("flag", "value"), [("--episodes", "-2"), ("--episodes", "0"), ("--noise", "1.5"), ("--noise", "-0.1"),
                                                 ("--noise", "2.0"), ("--noise", "0.5,nope")])
def test_bad_numbers_rejected_by_argparse(tmp_path, capsys, flag, value):
    argv = ["demos", "collect", "breakout", "--demonstrator", "scripted", "--episodes", "1", "--seed", "0", "--out", str(tmp_path / "o")]
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_noop_bin_in_a_noise_schedule(tmp_path):
    """'noop' in --noise records D-REX's no-op bin: NOOP-only episodes tagged NOOP_NOISE, ranked below every ε."""
    from trex_bench.core.types import NOOP_NOISE
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.ranking import by_noise

    out = tmp_path / "o"
    assert main(["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1", "--noise", "1.0,noop",
                 "--seed", "0", "--max-steps", "200", "--out", str(out), "--no-progress"]) == 0
    ds = load_demos(out)
    assert [e.noise for e in ds.episodes] == [1.0, NOOP_NOISE]
    assert not ds.episodes[1].actions.any()
    assert [tuple(p) for p in by_noise(ds).pairs] == [(1, 0)], "(worse, better): the no-op episode is worse"


def test_ppo_demonstrator_smoke(tmp_path):
    """--demonstrator ppo: trains PPO on the true reward, records one episode per early checkpoint, tagged in order."""
    from trex_bench.demos.store import load_demos

    out = tmp_path / "ppo-demos"
    assert main(["demos", "collect", "breakout", "--demonstrator", "ppo", "--checkpoints", "2", "--ppo-budget", "smoke",
                 "--checkpoint-every", "512", "--episodes", "1", "--seed", "0", "--out", str(out), "--no-progress"]) == 0
    ds = load_demos(out)
    assert [e.checkpoint for e in ds.episodes] == [0, 1]
    assert (tmp_path / "ppo-demos.ppo" / "card.json").exists()
    assert main(["demos", "verify", str(out)]) == 0


def test_ppo_later_set_of_a_missing_run_is_refused_before_training(tmp_path, capsys):
    """--skip-checkpoints reads an existing run: a mistyped --ppo-dir is a one-line error, not a new PPO run."""
    typo = tmp_path / "typo-run"
    assert main(["demos", "collect", "breakout", "--demonstrator", "ppo", "--skip-checkpoints", "12", "--final",
                 "--episodes", "3", "--seed", "0", "--out", str(tmp_path / "later"), "--ppo-dir", str(typo)]) == 2
    assert "holds no finished PPO run" in capsys.readouterr().err
    assert not typo.exists() and not (tmp_path / "later").exists()
