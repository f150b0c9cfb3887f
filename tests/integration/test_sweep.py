"""Sweeps: the plan (axes, names, bad input), the command each run gets, and a real local sweep at smoke budget."""

from __future__ import annotations

import csv

import pytest

from trex_bench.cli import build_parser, main
from trex_bench.experiment.sweep import plan_sweep, run_sweep


def _bc_folder(path):
    """A stand-in KL reference: ``plan_sweep`` checks that --kl-to is a BC policy folder (a card.json)."""
    path.mkdir()
    (path / "card.json").write_text('{"kind": "bc_policy"}')
    return path


def test_plan_covers_every_combination_once(tmp_path):
    _bc_folder(tmp_path / "bc")
    jobs = plan_sweep(["breakout", "pong"], ["trex", "bc"], [0, 1], "smoke", root=tmp_path,
                      kl_to=tmp_path / "bc", kl_betas=[0.0, 0.1])
    names = [j.name for j in jobs]
    # trex: 2 games × 2 betas × 2 seeds; bc: no KL axis, 2 games × 2 seeds
    assert len(names) == 12 == len(set(names))
    # the KL reference folder is not spelled out: a short hash of it ends the name
    assert any(n.startswith("breakout-trex-kl0.1-smoke-s1-") for n in names) and "pong-bc-smoke-s0" in names
    assert not any(n.startswith("pong-bc-kl") for n in names)
    assert all(j.folder.parent == tmp_path for j in jobs)
    only_kl = plan_sweep(["breakout"], ["bc", "trex"], [0], "smoke", kl_to=tmp_path / "bc", kl_betas=[0.1])
    assert [j.name[:29] for j in only_kl] == ["breakout-bc-smoke-s0", "breakout-trex-kl0.1-smoke-s0-"]


@pytest.mark.parametrize("kw, msg", [
    (dict(kl_betas=[0.1]), "needs --kl-to"),
    (dict(kl_to="bc"), "needs --kl-betas"),
    (dict(kl_to="bc", kl_betas=[-1.0]), ">= 0"),
    (dict(kl_to="bc", kl_betas=[float("nan")]), "finite"),  # D6: nan once became a plain run
    (dict(kl_to="bc", kl_betas=[float("inf")]), "finite"),
    (dict(ranking="bogus"), "unknown ranking"),
    (dict(profile="atari"), "unknown env profile"),
    (dict(seeds=[0, 0]), "same run twice"),
    (dict(methods=["gail"]), "not built"),
    (dict(budget="huge"), "unknown budget"),
    (dict(games=["mspacman"]), "mspacman-trex-smoke-s0: no committed demo set for mspacman"),  # before any run starts
    (dict(kl_to="nope", kl_betas=[0.1]), "--kl-to nope does not exist"),
    (dict(demos="nope"), "nope"),
    (dict(games=[]), "at least one game"),
])
def test_bad_sweeps_fail_before_running(kw, msg):
    args = dict(games=["breakout"], methods=["trex"], seeds=[0], budget="smoke") | kw
    with pytest.raises(ValueError, match=msg):
        plan_sweep(args.pop("games"), args.pop("methods"), args.pop("seeds"), args.pop("budget"), **args)


def _job_args(job):
    """The pipeline's ``ExperimentConfig`` as the job's command line gives it (after the job wrote its config)."""
    from trex_bench.cli.pipeline import experiment

    job.config.write(job.config_file)
    return experiment(build_parser().parse_args(job.command()[3:]))


def test_job_command_is_the_pipeline_of_its_config(tmp_path):
    (job,) = plan_sweep(["breakout"], ["trex"], [3], "quick", root=tmp_path, kl_to=_bc_folder(tmp_path / "bc"),
                        kl_betas=[0.05], ranking="checkpoint", eval_episodes=5, profile="machado", check=False)
    cmd = job.command()
    assert cmd[1:3] == ["-m", "trex_bench"] and "--config" in cmd and "--method" not in cmd
    args = build_parser().parse_args(cmd[3:])
    assert args.resume and args.out == job.folder
    exp = _job_args(job)
    assert exp == job.config  # the config itself travels, not flags rebuilt from it
    assert (exp.game, exp.method, exp.budget, exp.seed, exp.profile) == ("breakout", "trex", "quick", 3, "machado")
    assert exp.ranking == "checkpoint" and exp.eval.episodes == 5
    assert exp.kl.to == tmp_path / "bc" and exp.kl.beta == 0.05


def test_labels_and_transform_go_to_the_runs_they_apply_to(tmp_path):
    labels = tmp_path / "labels.csv"
    jobs = plan_sweep(["breakout"], ["trex", "drex", "constant"], [0], "smoke", root=tmp_path, ranking="human",
                      human_labels=labels, transform="delta", check=False)
    assert [j.name[:35] for j in jobs] == ["breakout-trex-human-delta-smoke-s0-", "breakout-drex-delta-smoke-s0",
                                           "breakout-constant-smoke-s0"]
    trex, drex, const = (_job_args(j) for j in jobs)
    assert (trex.human_labels, trex.ranking, trex.transform) == (labels, "human", "delta")
    assert drex.human_labels is None and drex.transform == "delta" and drex.ranking == "noise"
    assert const.human_labels is None and const.transform == "sigmoid"


def test_sweep_runs_differing_only_in_profile_or_episodes_get_their_own_folders(tmp_path):
    """Issue 14: the profile and the evaluation episodes were not in the run name; a sweep skipped the second."""
    def name(**kw):
        (job,) = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=tmp_path, check=False, **kw)
        return job.name

    names = {name(), name(profile="machado"), name(eval_episodes=7)}
    assert len(names) == 3
    assert name(eval_episodes=2) == name() == "breakout-constant-smoke-s0"  # smoke's own 2 episodes: the same run


def test_cli_rejects_bad_seed_lists(capsys):
    with pytest.raises(SystemExit):
        main(["sweep", "--games", "breakout", "--methods", "trex", "--budget", "smoke", "--seeds", "3-1"])
    assert "ranges ascending" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # D10: refused at once, not expanded into a 19 GB plan
        main(["sweep", "--games", "breakout", "--methods", "trex", "--budget", "smoke", "--seeds", "0-100000000",
              "--dry-run"])
    assert "at most 1000 seeds" in capsys.readouterr().err


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_local_sweep_runs_in_parallel_skips_finished_and_reports_failures(tmp_path, capsys):
    board = tmp_path / "board.csv"
    jobs = plan_sweep(["breakout"], ["constant"], [0, 1], "smoke", root=tmp_path / "runs", leaderboard=board)
    results = run_sweep(jobs, workers=2, log_dir=tmp_path / "logs")
    assert sorted(r.status for r in results) == ["done", "done"], [r.log.read_text()[-2000:] for r in results]
    assert all((j.folder / "summary.json").exists() for j in jobs)
    assert sorted(r["seed"] for r in _rows(board)) == ["0", "1"]
    assert all(r.score() is not None for r in results)

    again = run_sweep(jobs, workers=2, log_dir=tmp_path / "logs")
    assert [r.status for r in again] == ["skipped", "skipped"] and len(_rows(board)) == 2

    # a run that fails (its demo set went missing after planning): reported, no row, the others untouched
    (gone,) = plan_sweep(["breakout"], ["constant"], [2], "smoke", root=tmp_path / "runs", leaderboard=board,
                         demos=tmp_path / "missing", check=False)
    (failed,) = run_sweep([gone], workers=1, log_dir=tmp_path / "logs")
    assert failed.status == "failed" and failed.score() is None and len(_rows(board)) == 2
    # the CLI checks every run's input files when it plans: refused at once (exit 2), naming the run, --dry-run too
    for dry in ([], ["--dry-run"]):
        rc = main(["sweep", "--games", "breakout", "--methods", "constant", "--seeds", "2", "--budget", "smoke",
                   "--root", str(tmp_path / "runs"), "--leaderboard", str(board), "--demos", str(tmp_path / "missing"),
                   *dry])
        assert rc == 2 and "breakout-constant-missing-smoke-s2-" in capsys.readouterr().err  # the demo set is named
    assert len(_rows(board)) == 2


def test_ray_executor_runs_the_same_jobs(tmp_path):
    pytest.importorskip("ray", reason="Ray is an optional extra; `make install` installs it (dev extra)")
    board = tmp_path / "board.csv"
    jobs = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=tmp_path / "runs", leaderboard=board)
    results = run_sweep(jobs, executor="ray", threads=1, log_dir=tmp_path / "logs")
    assert [r.status for r in results] == ["done"], results[0].log.read_text()[-2000:]
    assert [r["seed"] for r in _rows(board)] == ["0"] and results[0].score() is not None
