"""Collection: exact episode count, noise validation, returns rising as noise falls."""

import numpy as np
import pytest

from trex_bench.core.games import get_game
from trex_bench.demos.collect import CollectConfig, collect
from trex_bench.demos.policies import (
    EpsilonGreedy,
    NoopPolicy,
    RandomPolicy,
    ScriptedBreakout,
    ScriptedPong,
)
from trex_bench.experiment.demonstrators import make_demonstrator


@pytest.mark.parametrize("bad", [dict(episodes=0), dict(episodes=-3), dict(episodes=2, noise=1.5), dict(episodes=2, noise=-0.1)])
def test_bad_config(bad):
    with pytest.raises(ValueError):
        CollectConfig(**bad)


def test_bad_noise_in_policy():
    with pytest.raises(ValueError, match=r"noise must be in \[0, 1\]"):
        EpsilonGreedy(NoopPolicy(), 2.0, 4, np.random.default_rng(0))


def test_unknown_demonstrator():
    with pytest.raises(ValueError, match="unknown demonstrator"):
        make_demonstrator("expert", get_game("breakout"), 4, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no scripted demonstrator for qbert"):
        make_demonstrator("scripted", get_game("qbert"), 6, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not found"):
        make_demonstrator("sb3:/nonexistent.zip", get_game("breakout"), 4, np.random.default_rng(0))


def test_exact_episode_count_and_metadata():
    ds = collect("breakout", RandomPolicy(4, np.random.default_rng(1)), CollectConfig(5, seed=1, n_envs=2, noise=1.0, checkpoint=7), progress=False)
    assert len(ds.episodes) == 5
    assert all(e.noise == 1.0 and e.checkpoint == 7 for e in ds.episodes)
    assert len({(e.seed, e.reset_index) for e in ds.episodes}) == 5, "every episode has its own start"
    assert {e.reset_index for e in ds.episodes} >= {0, 1}


def test_collection_is_seeded():
    def run():
        return collect("breakout", ScriptedBreakout(), CollectConfig(2, seed=3, max_steps=200), progress=False)

    a, b = run(), run()
    assert [e.seed for e in a.episodes] == [e.seed for e in b.episodes]
    assert all(np.array_equal(x.actions, y.actions) for x, y in zip(a.episodes, b.episodes))


def test_max_steps_truncates_and_replays(tmp_path):
    from trex_bench.demos.replay import verify_demos

    ds = collect("pong", ScriptedPong(), CollectConfig(2, seed=0, max_steps=150), progress=False)
    assert all(e.truncated and e.length == 150 for e in ds.episodes)
    assert all(r.ok for r in verify_demos(ds))


def test_scripted_breakout_returns_rise_as_noise_falls():
    """Mean return over 6 episodes per level is ordered ε=0 > ε=0.5 > ε=1 (the scripted policy is a ranker's truth)."""
    rng = np.random.default_rng(0)
    means = []
    for eps in (0.0, 0.5, 1.0):
        ds = collect("breakout", EpsilonGreedy(ScriptedBreakout(), eps, 4, rng), CollectConfig(6, seed=10, noise=eps, n_envs=6, max_steps=2000), progress=False)
        means.append(ds.returns.mean())
    assert means[0] > means[1] > means[2], means
