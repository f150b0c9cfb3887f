"""A run folder's stage cache: a stage lands whole, with its record, or not at all."""

from __future__ import annotations

import os

import pytest

from trex_bench.core.errors import RunFolderError
from trex_bench.core.io import read_json
from trex_bench.experiment import run_folder
from trex_bench.experiment.run_folder import PARTIAL_KEY, RunFolder


def test_a_stage_is_recorded_before_it_is_renamed_into_place(tmp_path, monkeypatch):
    """A kill between the rename and the record would leave a finished stage that looks unfinished (no
    ``stage.json``), and the next run would delete it: a whole PPO run. The record is written inside the temp folder,
    so the rename lands both at once."""
    seen, real = [], os.replace

    def rename(src, dst):  # os.replace is the one atomic_write uses too: only the stage's folder is looked into
        if os.path.isdir(src):
            seen.append(sorted(p.name for p in os.scandir(src)))
        real(src, dst)

    monkeypatch.setattr(run_folder.os, "replace", rename)
    run = RunFolder(tmp_path, log=lambda line: None)
    rec = run.stage("agent", {"k": 1}, lambda tmp: (tmp / "agent.zip").write_bytes(b"net"), resumable=True)
    assert seen == [["agent.zip", "stage.json"]]  # the partial key is gone, the record is there
    assert read_json(rec.folder / "stage.json")["files"] == {"agent.zip": run_folder.file_hash(rec.folder / "agent.zip")}
    assert RunFolder(tmp_path, log=lambda line: None).stage("agent", {"k": 1}, lambda tmp: None).reused


def test_an_unfinished_resumable_stage_of_another_key_is_refused_and_kept(tmp_path):
    run = RunFolder(tmp_path, log=lambda line: None)
    cut = tmp_path / ".agent.tmp"
    cut.mkdir()
    (cut / PARTIAL_KEY).write_text("0" * 16)
    (cut / "ppo_48_steps.zip").write_bytes(b"hours of PPO")
    with pytest.raises(RunFolderError, match="unfinished run of another config"):
        run.stage("agent", {"k": 1}, lambda tmp: None, resumable=True)
    assert (cut / "ppo_48_steps.zip").read_bytes() == b"hours of PPO"
    assert run.partial("agent") == cut and run.partial("reward") is None
