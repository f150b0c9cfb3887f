"""The analysis scripts in tools/ that write committed tables: run on a tiny demo set and a seeded net."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[2]


def _tool(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_reward_along_games_reports_what_the_net_pays_per_step_and_window(breakout_demos, tmp_path):
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos, save_demos
    from trex_bench.reward.fidelity import episode_rewards
    from trex_bench.reward.net import RewardNet, load_model, save_model

    torch.manual_seed(0)
    model_dir = save_model(RewardNet("breakout"), tmp_path / "reward", {"profile": "paper", "method": "trex"})
    demos_dir = save_demos(breakout_demos, tmp_path / "games")
    text = _tool("reward_along_games").table(model_dir, [demos_dir], window=100, cache=tmp_path / "cache")

    demos = load_demos(demos_dir)
    model, _ = load_model(model_dir, game="breakout")
    lengths = np.array([ep.length for ep in demos.episodes])
    sigma = [1 / (1 + np.exp(-r)) for r in episode_rewards(model, FrameCache(demos, tmp_path / "cache"), lengths)]
    rows = [line for line in text.splitlines() if line.startswith("| games |")]
    assert len(rows) == len(demos.episodes) + 1  # a row per game, then all of them
    first = rows[0].split(" | ")
    assert first[2] == f"{demos.episodes[0].length:,}" and first[4] == f"{sigma[0].mean():.3f}"
    windows = first[5].split(", ")
    assert len(windows) == -(-demos.episodes[0].length // 100)
    assert windows[0] == f"{sigma[0][:100].mean():.2f} ({np.cumsum(demos.episodes[0].rewards)[99]:,.0f})"
    assert rows[-1].split(" | ")[4] == f"{np.concatenate(sigma).mean():.3f}"
