"""Unit tests use fakes (tests/fakes.py), never the Atari emulator: a test here that loads a ROM fails, naming where
it belongs. Tests that need ALE (envs, replay, collection, PPO, pipelines) live in tests/integration."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _no_emulator(monkeypatch):
    import ale_py

    def refuse(*args, **kwargs):
        raise AssertionError("a unit test loaded an Atari ROM: use a fake (tests/fakes.py) or move it to tests/integration")

    monkeypatch.setattr(ale_py.ALEInterface, "loadROM", refuse)
