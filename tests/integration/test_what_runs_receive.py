"""Tests of what the library receives and what a run records, not of a parallel computation of it.

Each test names, in its docstring, a realistic edit of the protocol code that the suite used to pass and that this
test fails (checked by applying the edit).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fakes import ScriptedVecEnv, stack

from trex_bench.core.types import DemoSet, Episode
from trex_bench.rl.config import PPOConfig, PPOJob

LR, CLIP = 2.5e-4, 0.1


@pytest.mark.parametrize("horizon", [None, 10_000])
def test_the_schedules_sb3_receives_keep_the_prefix_horizon(tmp_path, horizon):
    """The lr and clip range SB3's PPO calls during ``learn(total_steps)`` are the full-horizon run's at every step:
    value·(1 − t/horizon) at progress_remaining p = 1 − t/total_steps (DESIGN.md "Budgets": a CPU budget is a
    prefix of a longer run). The edit this catches: ``_make_model`` passing ``cfg.total_steps`` as the horizon
    (``_schedule(cfg.learning_rate, cfg.linear_lr, cfg.total_steps, cfg.total_steps)``), or SB3's plain
    ``LinearSchedule(value, 0, 1.0)``: the tests of ``PPOConfig.lr_at`` kept passing, since they never look at the
    model."""
    from trex_bench.rl.ppo import _make_model

    total = 1_000
    cfg = PPOConfig("prefix", total_steps=total, n_envs=2, n_steps=16, batch_size=16, n_epochs=1,
                    learning_rate=LR, clip_range=CLIP, schedule_steps=horizon)
    env = ScriptedVecEnv([[0, 0]])
    model = _make_model(env, PPOJob("breakout", cfg, seed=0, device="cpu"), tmp_path, "fp32")
    span = horizon or total
    for t in (0, 250, 500, 999, 1000):
        p = 1.0 - t / total  # what SB3 passes: progress remaining of this learn() call
        assert model.lr_schedule(p) == pytest.approx(LR * (1 - t / span), rel=1e-9, abs=1e-15), t
        assert model.clip_range(p) == pytest.approx(CLIP * (1 - t / span), rel=1e-9, abs=1e-15), t
    if horizon:  # the last step of the prefix still learns at 90 % of the initial rate
        assert model.lr_schedule(0.0) == pytest.approx(0.9 * LR)


def test_the_evaluation_games_start_from_distinct_reset_seeds(tmp_path):
    """Each of the N evaluation games is recorded by its (reset seed, reset index) in ``episode_starts``, and no two
    are one game. The edit this catches: ``episode_seed`` ignoring the game index (``default_rng(seed)`` instead of
    ``default_rng([seed, k])``): every env then starts the same game; the old test compared the record with
    ``episode_seed`` itself, so it passed."""
    from trex_bench.bc.folder import save_bc
    from trex_bench.bc.train import BCNet, BCPolicy, action_set
    from trex_bench.evaluation.evaluate import evaluate_agent

    torch.manual_seed(0)
    agent = save_bc(BCPolicy(BCNet(4), "breakout", action_set("breakout", "paper"), deterministic=True),
                    tmp_path / "bc", {"profile": "paper"})
    rep = evaluate_agent(agent, episodes=3, seed=3, n_envs=2, out=tmp_path / "eval.json")
    starts = [tuple(s) for s in rep["episode_starts"]]
    assert len(starts) == 3 and len(set(starts)) == 3, starts  # three games, none played twice
    first = [s for s, r in starts if r == 0]
    assert len(first) == 2 and len(set(first)) == 2, starts  # the 2 envs' seeded starts: 2 seeds


def _episode(ret: float, length: int = 20, checkpoint: int = 0) -> Episode:
    rewards = np.zeros(length, np.float32)
    rewards[-1] = ret
    return Episode(seed=checkpoint, actions=np.zeros(length, np.uint8), rewards=rewards,
                   hash_steps=np.array([0], np.int64), frame_hashes=np.array([0], np.uint64), checkpoint=checkpoint)


class _EpisodeFrames:
    """A frame cache whose every stack of episode e is filled with the value e."""

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.stack([stack(int(e)) for e in ep]) if len(ep) else np.zeros((0, 4, 84, 84), np.uint8)


class _ScoreByEpisode:
    """A reward model that pays every frame of episode e ``score[e]``."""

    def __init__(self, score: list[float]) -> None:
        self.score = torch.tensor(score, dtype=torch.float32)

    def per_frame(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        return self.score[torch.as_tensor(stacks)[:, 0, 0, 0].long()]


def test_pairs_of_equal_returns_never_enter_the_beyond_best_accuracy():
    """Beyond-best accuracy counts only pairs whose returns differ (a tie has no right order). Two unseen episodes
    beyond the best demo share a return, and so do a demo and an unseen one; the model orders every pair of
    different returns right and every tied pair "wrong" (different scores), so the accuracy is exactly 1 only if no
    tie is drawn. The edit this catches: ``snippet_accuracy`` keeping the candidate pairs it is given as they are
    (its ``returns[ii] != returns[jj]`` filter applied to the default pairs only) with ``extrapolation_metrics``
    taking ``returns[i] <= returns[j]``; the suite only checked the figure lies in [0, 1]."""
    from trex_bench.reward.extrapolation import extrapolation_metrics
    from trex_bench.reward.fidelity import snippet_accuracy

    profile = {"name": "paper"}
    demos = DemoSet("breakout", "paper", profile, "test", (_episode(1, checkpoint=0), _episode(5, checkpoint=1)))
    unseen = DemoSet("breakout", "paper", profile, "test",
                     (_episode(5, checkpoint=2), _episode(9, checkpoint=3), _episode(9, checkpoint=4)))
    # episodes 0..4 (demos, then unseen); returns 1, 5, 5, 9, 9; tied episodes get different scores
    model = _ScoreByEpisode([0.0, 1.0, 1.5, 2.0, 2.5])
    metrics, _ = extrapolation_metrics(model, demos, unseen, _EpisodeFrames(), np.random.default_rng(0), 10, 400)
    assert metrics["beyond_best_accuracy"] == 1.0
    assert metrics["snippet_accuracy_all"] == 1.0
    # and the sampler itself never draws a tied pair it is handed
    rewards = [np.full(20, s) for s in (0.0, 1.0, 1.5, 2.0, 2.5)]
    returns = np.array([1.0, 5.0, 5.0, 9.0, 9.0])
    tied_and_not = (np.array([1, 3, 0]), np.array([2, 4, 3]))
    assert snippet_accuracy(rewards, returns, 10, 300, np.random.default_rng(1), candidates=tied_and_not)[
        "accuracy"] == 1.0
