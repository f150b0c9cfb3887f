"""One run-folder owner: a second pipeline (or sweep child) on a folder in use is refused at once, naming the owner's
pid, and writes nothing; a dead owner's temp stage folders are cleaned by the next; a sweep's children die with it
and a rerun reports a folder another process holds as busy, never as failed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from trex_bench.cli import main
from trex_bench.core.errors import RunFolderError
from trex_bench.experiment.resolver import resolve
from trex_bench.experiment.run_folder import PARTIAL_KEY, own, owner

REPO = Path(__file__).resolve().parents[2]


def _holder(folder: Path, tmp_path: Path) -> subprocess.Popen:
    """Another process that owns ``folder`` (as a running pipeline does) until it is killed."""
    ready = tmp_path / "ready"
    code = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from trex_bench.experiment.run_folder import own
        with own(Path({str(folder)!r}), print):
            Path({str(ready)!r}).write_text("1")
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"PYTHONPATH": str(REPO)})
    for _ in range(600):
        if ready.exists():
            return proc
        time.sleep(0.05)
    proc.kill()
    raise AssertionError("the holder never took the lock")


def _gone(pid: int) -> bool:
    """The process ended (a zombie no parent reaps counts as ended: it runs nothing)."""
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return True
    return "\nState:\tZ" in state


@pytest.fixture
def run_folder(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    resolve("breakout", "constant", "smoke").write(folder / "config.json")
    return folder


def test_a_second_pipeline_on_a_folder_in_use_is_refused_at_once(tmp_path, run_folder, capsys):
    """Two `pipeline --resume` on one --out used to race into one `.reward.tmp` (an OSError traceback, PPO trained
    twice into one `.agent.tmp`)."""
    holder = _holder(run_folder, tmp_path)
    try:
        before = sorted(p.name for p in run_folder.iterdir())
        rc = main(["pipeline", "--config", str(run_folder / "config.json"), "--out", str(run_folder), "--resume",
                   "--leaderboard", str(tmp_path / "lb.csv"), "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1
        assert f"run folder {run_folder} in use by pid {holder.pid}" in err
        assert sorted(p.name for p in run_folder.iterdir()) == before  # nothing written
        assert not (tmp_path / "lb.csv").exists()
    finally:
        holder.kill()
        holder.wait()
    assert owner(run_folder) is None  # the kernel released the lock of the killed owner


def test_a_dead_owners_temp_stages_are_cleaned_by_the_next(run_folder):
    (run_folder / ".reward.tmp").mkdir()
    (run_folder / ".reward.tmp" / "model.safetensors").write_text("half")
    (run_folder / ".agent.tmp").mkdir()
    (run_folder / ".agent.tmp" / PARTIAL_KEY).write_text("k")  # a resumable stage: gone on from, kept
    lines = []
    with own(run_folder, lines.append):
        assert owner(run_folder) == os.getpid()
        with pytest.raises(RunFolderError, match=f"in use by pid {os.getpid()}"), own(run_folder, lines.append):
            pass
    assert not (run_folder / ".reward.tmp").exists() and (run_folder / ".agent.tmp").exists()
    assert any(".reward.tmp" in line for line in lines)
    assert owner(run_folder) is None


def test_a_sweeps_children_die_with_it(tmp_path):
    """`kill -9` of a sweep left its pipeline running (ppid 1), which a rerun then collided with."""
    pidfile = tmp_path / "child.pid"
    code = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from trex_bench.experiment.sweep import SweepJob, plan_sweep, run_sweep
        SweepJob.command = lambda self: [sys.executable, "-c",
            "import os, time; open({str(pidfile)!r}, 'w').write(str(os.getpid())); time.sleep(120)"]
        jobs = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=Path({str(tmp_path / "runs")!r}), check=False)
        run_sweep(jobs, workers=1, log_dir=Path({str(tmp_path / "logs")!r}))
    """)
    sweep = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"PYTHONPATH": str(REPO)})
    try:
        for _ in range(600):
            if pidfile.exists() and pidfile.read_text():
                break
            time.sleep(0.05)
        child = int(pidfile.read_text())
        assert not _gone(child)
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        for _ in range(100):
            if _gone(child):
                break
            time.sleep(0.05)
        assert _gone(child), "the sweep's child outlived it"
    finally:
        sweep.kill()
        if pidfile.exists() and pidfile.read_text() and not _gone(int(pidfile.read_text())):
            os.kill(int(pidfile.read_text()), signal.SIGKILL)


def test_a_rerun_reports_a_folder_another_process_holds_as_busy(tmp_path):
    """The run an orphan (or another sweep) is running is `busy`, not `failed`, naming the pid that holds it; the
    sweep touches nothing of it (the live run's log was truncated by the second sweep's child before it was refused).
    A child that gets there first all the same is refused by the lock in one line (its log says which pid)."""
    from trex_bench.experiment.sweep import _Children, _run_local, plan_sweep, run_sweep

    (job,) = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=tmp_path / "runs",
                        leaderboard=tmp_path / "lb.csv")
    job.folder.mkdir(parents=True)
    job.config.write(job.folder / "config.json")
    log = tmp_path / "logs" / f"{job.name}.log"
    log.parent.mkdir()
    log.write_text("the live run's log\n")
    holder = _holder(job.folder, tmp_path)
    try:
        (result,) = run_sweep([job], workers=1, log_dir=tmp_path / "logs")
        raced = _run_local(job, tmp_path / "raced.log", 1, _Children())  # a child started before the holder took it
    finally:
        holder.kill()
        holder.wait()
    assert (result.status, result.holder, result.log) == ("busy", holder.pid, None)
    assert log.read_text() == "the live run's log\n"
    assert raced != 0 and f"in use by pid {holder.pid}" in (tmp_path / "raced.log").read_text()
    assert not (tmp_path / "lb.csv").exists()


def test_sweep_children_import_the_sweeps_own_package(tmp_path):
    """`python -m trex_bench` in a child imported whatever `trex_bench/` sat in the working folder."""
    from trex_bench.experiment.sweep import child_env

    fake = tmp_path / "trex_bench"
    fake.mkdir()
    (fake / "__init__.py").write_text("")
    (fake / "__main__.py").write_text("print('the wrong trex_bench')")
    out = subprocess.run([sys.executable, "-m", "trex_bench", "--version"], cwd=tmp_path, env=child_env(1),
                         capture_output=True, text=True, check=False)
    assert "wrong" not in out.stdout and out.stdout.startswith("trex-bench "), out.stdout + out.stderr


def test_a_sweeps_logs_are_appended_and_a_failed_forced_rerun_is_failed(tmp_path, monkeypatch):
    """A rerun's log keeps the sessions before it; a --force rerun that fails is `failed`, though the summary of the
    run before it is still there (it was reported `done`)."""
    from trex_bench.experiment import sweep
    from trex_bench.experiment.sweep import plan_sweep, run_sweep

    (job,) = plan_sweep(["breakout"], ["constant"], [0], "smoke", root=tmp_path / "runs",
                        leaderboard=tmp_path / "lb.csv")
    job.folder.mkdir(parents=True)
    (job.folder / "summary.json").write_text('{"row": {"mean": 1.0, "std": 0.0}}')
    monkeypatch.setattr(sweep.SweepJob, "command", lambda self: [sys.executable, "-c", "raise SystemExit(3)"])
    first = run_sweep([job], workers=1, log_dir=tmp_path / "logs", force=True)
    (result,) = run_sweep([job], workers=1, log_dir=tmp_path / "logs", force=True)
    assert [r.status for r in (*first, result)] == ["failed", "failed"] and result.returncode == 3
    assert result.score() is None
    assert result.log.read_text().count("\n== ") + result.log.read_text().startswith("== ") == 2
