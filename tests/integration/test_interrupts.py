"""A run stopped keeps its steps: by Ctrl-C or SIGTERM, PPO stops at its next step inside a collection and saves a
checkpoint there; killed without warning (SIGKILL), it goes on from its last interim checkpoint. The CLI handles SIGTERM
as Ctrl-C, and a sweep passes SIGTERM on to its runs, waits while they save, and starts no more."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
from stable_baselines3.common.callbacks import BaseCallback

import trex_bench.rl.ppo as ppo
from trex_bench.cli import main
from trex_bench.core.interrupts import Terminated, sigterm_as_interrupt, stop_requests
from trex_bench.core.io import read_json
from trex_bench.experiment.sweep import run_sweep
from trex_bench.rl.agent_io import read_zip_member
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.resume import list_checkpoints

# A rollout is 32 steps; the grid's checkpoints are at 48 and 96.
TINY = PPOConfig("tiny", total_steps=128, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=48)


class _Signal(BaseCallback):
    """Sends this process ``signum`` once: at agent step ``at``, or as the rollout ending at ``after_rollout`` goes to
    its update (the signal then comes while PPO updates)."""

    def __init__(self, signum: int, at: int | None = None, after_rollout: int | None = None) -> None:
        super().__init__()
        self.signum, self.at, self.after_rollout, self.sent = signum, at, after_rollout, False

    def _send(self) -> None:
        if not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)

    def _on_step(self) -> bool:
        if self.at is not None and self.num_timesteps >= self.at:
            self._send()
        return True

    def _on_rollout_end(self) -> None:
        if self.after_rollout is not None and self.model.num_timesteps >= self.after_rollout:
            self._send()


def _stopped(out: Path, monkeypatch, raises: type[BaseException] = KeyboardInterrupt, **signal_at) -> None:
    """Train ``TINY`` into ``out`` until the signal of ``signal_at`` (``_Signal``'s arguments) stops it; no timed
    interim checkpoints (only the stop's)."""
    grid = ppo._callbacks
    monkeypatch.setattr(ppo, "_callbacks", lambda *a: [*grid(*a), _Signal(**signal_at)])
    with pytest.raises(raises):
        ppo.train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, interim_every_s=math.inf)
    monkeypatch.setattr(ppo, "_callbacks", grid)


def _steps(out: Path, interim: bool = True) -> list[int]:
    return [s for s, _ in list_checkpoints(out / "checkpoints", interim=interim)]


def test_a_run_stopped_between_checkpoints_saves_one_and_resumes_from_it(tmp_path, monkeypatch):
    out = tmp_path / "agent"
    _stopped(out, monkeypatch, signum=signal.SIGINT, at=72)
    # The grid's checkpoint, then the stop's, named apart: a demonstrator's demos come from the grid alone.
    assert (_steps(out, interim=False), _steps(out)) == ([48], [48, 72])
    assert not (out / "card.json").exists() and not (out / "agent.zip").exists()  # not a finished agent
    ppo.train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)
    card = read_json(out / "card.json")
    # Stopped inside the third rollout: the weights are those of the update at 64, where the run goes on (not 32,
    # where the grid's checkpoint at 48 would have taken it back).
    assert (card["resumed_from"], card["steps"], card["stopped"]) == (64, 128, "total steps")
    assert _steps(out) == [48, 96]  # the grid's checkpoint at 96 superseded the stop's


def test_a_sigterm_during_an_update_waits_for_it_to_end(tmp_path, monkeypatch):
    """A checkpoint saved mid-update would hold half an update, which the resumed run would then apply again."""
    out = tmp_path / "agent"
    with sigterm_as_interrupt():
        _stopped(out, monkeypatch, raises=Terminated, signum=signal.SIGTERM, after_rollout=64)
    (steps, path), *_ = list_checkpoints(out / "checkpoints", interim=True)[1:]
    assert steps == 66  # the first step after the update at 64
    adam = read_zip_member(path, "policy.optimizer.pth")["state"]
    assert {float(v["step"]) for v in adam.values()} == {4.0}  # 2 whole updates × 1 epoch × 2 minibatches


def test_a_run_killed_without_warning_goes_on_from_its_last_interim_checkpoint(tmp_path):
    """SIGKILL cannot be caught: what the run keeps is the interim checkpoint it saved last, here one at each step
    where a newer update is there to save (``interim_every_s=0``)."""
    out = tmp_path / "agent"
    script = textwrap.dedent(f"""
        import os, signal
        from stable_baselines3.common.callbacks import BaseCallback
        import trex_bench.rl.ppo as ppo
        from trex_bench.rl.config import PPOConfig, PPOJob

        class Kill(BaseCallback):
            def _on_step(self):
                if self.num_timesteps >= 72:
                    os.kill(os.getpid(), signal.SIGKILL)
                return True

        grid = ppo._callbacks
        ppo._callbacks = lambda *a: [*grid(*a), Kill()]
        cfg = PPOConfig(**{TINY.__dict__!r})
        ppo.train_ppo(PPOJob("breakout", cfg, seed=0), {str(out)!r}, progress=False, interim_every_s=0)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == -signal.SIGKILL, run.stderr[-2000:]
    # Interim checkpoints at 34 (after the update at 32; deleted by the grid's at 48) and 66 (after the update at 64).
    assert (_steps(out, interim=False), _steps(out)) == ([48], [48, 66])
    ppo.train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True, interim_every_s=0)
    card = read_json(out / "card.json")
    assert (card["resumed_from"], card["steps"]) == (64, 128)
    assert _steps(out) == [48, 96]  # a finished run keeps its grid and no interim checkpoint


def test_a_stop_before_the_first_update_saves_nothing(tmp_path, monkeypatch):
    """The run would go on from its start anyway (and one resumed, from where it was resumed)."""
    out = tmp_path / "agent"
    _stopped(out, monkeypatch, signum=signal.SIGINT, at=30)
    assert _steps(out) == []


def test_a_second_ctrl_c_raises_at_once_a_second_sigterm_is_ignored():
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with stop_requests() as request:
        os.kill(os.getpid(), signal.SIGTERM)
        os.kill(os.getpid(), signal.SIGTERM)
        assert request.signal == signal.SIGTERM
        with pytest.raises(Terminated):
            request.raise_it()
    with stop_requests() as request, pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        assert request.signal == signal.SIGINT
        os.kill(os.getpid(), signal.SIGINT)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_cli_stops_on_sigterm_as_on_ctrl_c_and_puts_the_handler_back(monkeypatch, capsys):
    import trex_bench.cli.games as games

    monkeypatch.setattr(games, "run", lambda args: os.kill(os.getpid(), signal.SIGTERM) or 0)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["games"]) == 143  # 128 + SIGTERM, as a shell reports it
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


class _Job:
    """What ``run_sweep`` uses of a job: a name, a folder, a config to write, a command to run."""

    def __init__(self, tmp: Path, name: str, script: str) -> None:
        self.name, self.folder, self.script = name, tmp / name, script
        self.config_file = tmp / f"{name}.json"

    class config:  # noqa: N801  (stands in for the job's config attribute)
        @staticmethod
        def write(path: Path) -> None:
            pass

    def finished(self) -> bool:
        return False

    def finished_at(self) -> int | None:
        return None

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


def test_a_sweep_stopped_by_sigterm_passes_it_on_waits_for_its_run_and_starts_no_more(tmp_path):
    ready, saved, second = tmp_path / "ready", tmp_path / "saved", tmp_path / "second-started"
    # The first run: on SIGTERM it takes a while to save (longer than subprocess.run's 0.25 s before its kill).
    first = textwrap.dedent(f"""
        import pathlib, signal, sys, time
        def stop(*_):
            time.sleep(1.0)
            pathlib.Path({str(saved)!r}).write_text("checkpoint")
            sys.exit(143)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path({str(ready)!r}).write_text("")
        time.sleep(60)
    """)
    jobs = [_Job(tmp_path, "a", first), _Job(tmp_path, "b", f"open({str(second)!r}, 'w')")]
    done = threading.Event()

    def terminate_when_ready() -> None:
        for _ in range(600):  # up to 30 s for the first run to start; no signal at all if it never does
            if ready.exists():
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if done.wait(0.05):
                return

    sender = threading.Thread(target=terminate_when_ready)
    sender.start()
    try:
        with sigterm_as_interrupt(), pytest.raises(Terminated):
            run_sweep(jobs, workers=1, log_dir=tmp_path / "logs")  # type: ignore[arg-type]
    finally:
        done.set()
        sender.join()
    assert saved.read_text() == "checkpoint"
    assert not second.exists()
