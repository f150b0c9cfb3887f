"""A run stopped by Ctrl-C or SIGTERM keeps its steps: PPO saves a checkpoint as it stops, the CLI handles SIGTERM as
Ctrl-C, and a sweep passes SIGTERM on to the run it waits for and waits while that run saves."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from stable_baselines3.common.callbacks import BaseCallback

import trex_bench.rl.ppo as ppo
from trex_bench.cli import main
from trex_bench.core.interrupts import Terminated, interrupts_held, sigterm_as_interrupt
from trex_bench.core.io import read_json
from trex_bench.experiment.sweep import _run_local
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.resume import list_checkpoints

# A rollout is 32 steps; the grid's checkpoints are at 48 and 96.
TINY = PPOConfig("tiny", total_steps=128, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=48)


class _CtrlC(BaseCallback):
    """Ctrl-C at agent step ``at`` (inside the third rollout, after two updates)."""

    def __init__(self, at: int) -> None:
        super().__init__()
        self.at = at

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.at:
            raise KeyboardInterrupt
        return True


def _stopped_at(step: int, out: Path, monkeypatch) -> None:
    """Train ``TINY`` into ``out`` until Ctrl-C at agent step ``step``."""
    grid = ppo._callbacks
    monkeypatch.setattr(ppo, "_callbacks", lambda *a: [*grid(*a), _CtrlC(at=step)])
    with pytest.raises(KeyboardInterrupt):
        ppo.train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False)
    monkeypatch.setattr(ppo, "_callbacks", grid)


def test_a_ppo_run_stopped_between_checkpoints_saves_one_and_resumes_from_it(tmp_path, monkeypatch):
    out = tmp_path / "agent"
    _stopped_at(72, out, monkeypatch)
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [48, 72]  # the grid's, then the stop's
    assert not (out / "card.json").exists() and not (out / "agent.zip").exists()  # not a finished agent
    ppo.train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)
    card = read_json(out / "card.json")
    # Stopped inside the third rollout: the weights are those of the update at 64, where the run goes on (not 32,
    # where the grid's checkpoint at 48 would have taken it back).
    assert (card["resumed_from"], card["steps"], card["stopped"]) == (64, 128, "total steps")


def test_a_stop_before_the_first_update_saves_nothing(tmp_path, monkeypatch):
    """The run would go on from its start anyway (and one resumed, from where it was resumed)."""
    out = tmp_path / "agent"
    _stopped_at(30, out, monkeypatch)
    assert list_checkpoints(out / "checkpoints") == []


def test_the_cli_stops_on_sigterm_as_on_ctrl_c_and_puts_the_handler_back(monkeypatch, capsys):
    import trex_bench.cli.games as games

    monkeypatch.setattr(games, "run", lambda args: os.kill(os.getpid(), signal.SIGTERM) or 0)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["games"]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is before


def test_interrupts_held_ignores_a_second_signal_and_restores_the_handlers():
    with sigterm_as_interrupt():
        with interrupts_held():
            os.kill(os.getpid(), signal.SIGTERM)  # ignored: no Terminated
            os.kill(os.getpid(), signal.SIGINT)
        with pytest.raises(Terminated):
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@dataclass
class _Job:
    """What ``_run_local`` uses of a sweep job: a config to write, a command to run."""

    script: str

    @dataclass
    class config:  # noqa: N801  (stands in for the job's config attribute)
        @staticmethod
        def write(path: Path) -> None:
            pass

    config_file = Path("unused.json")

    def command(self) -> list[str]:
        return [sys.executable, "-c", self.script]


def test_a_sweep_stopped_by_sigterm_passes_it_on_and_waits_for_the_run_to_save(tmp_path):
    saved, ready = tmp_path / "saved", tmp_path / "ready"
    # The run: on SIGTERM it takes a while to save (longer than subprocess.run's 0.25 s before its kill).
    script = textwrap.dedent(f"""
        import pathlib, signal, sys, time
        def stop(*_):
            time.sleep(1.0)
            pathlib.Path({str(saved)!r}).write_text("checkpoint")
            sys.exit(130)
        signal.signal(signal.SIGTERM, stop)
        pathlib.Path({str(ready)!r}).write_text("")
        time.sleep(60)
    """)

    def terminate_when_ready() -> None:
        for _ in range(200):
            if ready.exists():
                break
            threading.Event().wait(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=terminate_when_ready, daemon=True).start()
    with sigterm_as_interrupt(), pytest.raises(Terminated):
        _run_local(_Job(script), tmp_path / "log", threads=1)  # type: ignore[arg-type]
    assert saved.read_text() == "checkpoint"
