"""Reward wrappers: the learned reward is the net's output for every env, and the truth is never lost."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trex_bench.core.envs import make_vec_env
from trex_bench.reward.net import RewardNet
from trex_bench.rl.wrappers import ClipRewardVecEnv, ConstantRewardVecEnv, LearnedRewardVecEnv


@pytest.fixture()
def net() -> RewardNet:
    torch.manual_seed(0)
    return RewardNet("breakout")


def _reached(obs: np.ndarray, dones: np.ndarray, infos: list[dict]) -> np.ndarray:
    out = obs.copy()
    for i in np.flatnonzero(dones):
        out[i] = infos[i]["terminal_observation"]
    return out


@pytest.mark.parametrize("transform", ["raw", "sigmoid"])
def test_reward_is_the_nets_output_for_all_envs_in_one_batch(net, transform):
    calls: list[int] = []
    net.register_forward_hook(lambda m, inp, out: calls.append(inp[0].shape[0]))
    env = LearnedRewardVecEnv(make_vec_env("breakout", 3, seed=1, training=True), net, transform)
    env.reset()
    rng = np.random.default_rng(0)
    saw_done = False
    for _ in range(120):
        obs, r, dones, infos = env.step(rng.integers(0, 4, 3))
        saw_done |= bool(dones.any())
        want = net.per_frame(_reached(obs, dones, infos)).numpy()
        if transform == "sigmoid":
            want = 1 / (1 + np.exp(-want))
        np.testing.assert_allclose(r, want, rtol=1e-5, atol=1e-6)
        assert r.dtype == np.float32 and r.shape == (3,)
        assert all("true_reward" in i and "learned_reward" in i for i in infos)
    env.close()
    assert saw_done, "the test should cover the terminal-observation path"
    # one forward pass per step over all 3 envs (per_frame's own calls above are batches of 3 too)
    assert calls[::2] == [3] * 120


def test_delta_pays_the_change_of_r_within_each_episode(net):
    """Summed over an episode, ``delta`` telescopes to r̂(last stack) − r̂(first stack); no step crosses episodes."""
    env = LearnedRewardVecEnv(make_vec_env("breakout", 3, seed=2, training=True), net, "delta")
    first = net.per_frame(env.reset()).numpy().astype(np.float64)
    total, episodes = np.zeros(3), 0
    rng = np.random.default_rng(0)
    for _ in range(150):
        obs, r, dones, infos = env.step(rng.integers(0, 4, 3))
        assert r.dtype == np.float32 and r.shape == (3,)
        np.testing.assert_allclose([i["learned_reward"] for i in infos], net.per_frame(_reached(obs, dones, infos)).numpy(),
                                   rtol=1e-5, atol=1e-6)
        total += r
        for i in np.flatnonzero(dones):
            last = infos[i]["learned_reward"]
            assert total[i] == pytest.approx(last - first[i], abs=1e-4)
            first[i], total[i] = net.per_frame(obs[i : i + 1]).item(), 0.0
            episodes += 1
    env.close()
    assert episodes >= 2, "the test should cover episode ends"
    with pytest.raises(RuntimeError, match="reset"):
        LearnedRewardVecEnv(make_vec_env("breakout", 1), net, "delta").step(np.zeros(1, dtype=int))


def test_true_score_survives_the_wrapper(net):
    env = LearnedRewardVecEnv(make_vec_env("breakout", 2, seed=3, training=True), net, "sigmoid")
    env.reset()
    rng = np.random.default_rng(1)
    true_sum, learned_sum, games = np.zeros(2), np.zeros(2), []
    for _ in range(3000):
        _, r, _, infos = env.step(rng.integers(0, 4, 2))
        for i, info in enumerate(infos):
            true_sum[i] += info["true_reward"]
            learned_sum[i] += r[i]
            if "episode" in info:  # a whole game ended (life losses do not end it)
                games.append((info["episode"]["r"], true_sum[i], learned_sum[i]))
                true_sum[i] = learned_sum[i] = 0.0
        if len(games) >= 2:
            break
    env.close()
    assert len(games) >= 2
    for score, true_total, learned_total in games:
        assert score == pytest.approx(true_total)
        assert learned_total != pytest.approx(score)


def test_normalized_stats_round_trip_through_json(net):
    env = LearnedRewardVecEnv(make_vec_env("breakout", 2, seed=0, training=True), net, "normalized")
    env.reset()
    for _ in range(30):
        env.step(np.array([1, 3]))
    state = json.loads(json.dumps(env.get_norm_state()))  # plain JSON-able lists
    assert set(state) == {"mean", "var", "count"} and state["count"] > 30
    assert env.rms.var > 0
    obs, _, dones, infos = env.step(np.array([0, 0]))
    stacks = _reached(obs, dones, infos)
    raw = net.per_frame(stacks).numpy()
    env.close()

    again = LearnedRewardVecEnv(make_vec_env("breakout", 2), net, "normalized", norm_state=state, update_norm=False)
    assert again.get_norm_state() == state
    got = again._reward(stacks, np.zeros(2, np.float32), np.zeros(2, bool), [{}, {}])
    # r̂ over the std of the discounted return; the mean is not subtracted (Gymnasium NormalizeReward, SB3 VecNormalize)
    np.testing.assert_allclose(got, raw / np.sqrt(state["var"][0] + 1e-8), rtol=1e-4, atol=1e-5)
    assert again.get_norm_state() == state  # not updated when update_norm=False
    again.close()


def test_bad_normalizer_state_and_transform_are_refused(net):
    venv = make_vec_env("breakout", 1)
    with pytest.raises(ValueError, match="transform"):
        LearnedRewardVecEnv(venv, net, "tanh")
    with pytest.raises(ValueError, match="normalizer"):
        LearnedRewardVecEnv(venv, net, "normalized", norm_state={"mean": [0.0]})
    with pytest.raises(ValueError, match="normalizer"):
        LearnedRewardVecEnv(venv, net, "normalized", norm_state={"mean": [0.0], "var": [-1.0], "count": 3})
    venv.close()


def test_constant_and_clipped_rewards_keep_the_true_reward():
    const = ConstantRewardVecEnv(make_vec_env("breakout", 2, training=True))
    clip = ClipRewardVecEnv(make_vec_env("breakout", 2, training=True))
    const.reset()
    clip.reset()
    rng = np.random.default_rng(0)
    nonzero = 0
    for _ in range(300):
        a = rng.integers(0, 4, 2)
        _, rc, _, ic = const.step(a)
        _, rs, _, is_ = clip.step(a)
        assert np.all(rc == 1.0)
        true = np.array([i["true_reward"] for i in is_])
        np.testing.assert_array_equal(rs, np.sign(true))
        nonzero += int(np.count_nonzero(true))
        assert all("true_reward" in i for i in ic)
    const.close()
    clip.close()
    assert nonzero > 0, "random Breakout should score at least once in 300 steps"
