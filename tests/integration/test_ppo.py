"""PPO stage: budgets, a smoke run that writes a complete agent folder, and refusals of bad reward models."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from trex_bench.core.io import read_json
from trex_bench.experiment.budgets import BUDGETS as BUDGET_TABLE
from trex_bench.experiment.budgets import ppo_config
from trex_bench.reward.net import RewardNet, save_model
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import NORM_FILE, load_agent, reward_env, train_ppo
from trex_bench.rl.wrappers import LearnedRewardVecEnv

BUDGETS = {name: b.ppo for name, b in BUDGET_TABLE.items()}
TINY = PPOConfig("tiny", total_steps=64, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=32)


@pytest.fixture(scope="module")
def reward_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("reward")
    torch.manual_seed(0)
    return save_model(RewardNet("breakout"), out, {"profile": "paper", "method": "trex"})


def test_budgets_are_valid_and_cite_their_source():
    assert {"smoke", "quick", "small", "gpu", "paper", "paper-zoo"} <= set(BUDGETS)
    paper, zoo = BUDGETS["paper"], BUDGETS["paper-zoo"]
    assert (paper.n_envs, paper.n_steps, paper.total_steps) == (9, 128, 12_500_000)  # 50M frames, 9 envs
    assert (zoo.n_envs, zoo.n_steps, zoo.batch_size, zoo.total_steps) == (8, 128, 256, 10_000_000)
    assert all(c.source for c in BUDGETS.values())
    with pytest.raises(ValueError, match="unknown budget"):
        ppo_config("huge")
    with pytest.raises(ValueError, match="batch_size"):
        PPOConfig("bad", total_steps=10, n_envs=1, n_steps=8, batch_size=16)


def test_sb3_sees_channels_first_uint8_stacks_as_images():
    from stable_baselines3 import PPO
    from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first

    from trex_bench.core.envs import make_vec_env

    env = make_vec_env("breakout", 1)
    assert is_image_space(env.observation_space, check_channels=True)
    assert is_image_space_channels_first(env.observation_space)
    model = PPO("CnnPolicy", env, n_steps=8, batch_size=8, device="cpu")
    assert model.get_env() is env  # no VecTransposeImage inserted: the stacks reach the CNN as [4, 84, 84]
    assert model.policy.normalize_images  # /255 happens in the policy
    # The rollout buffer keeps the uint8 stacks (SB3 >= 2.x allocates it in the observation space's dtype): 29 MB per
    # rollout at the quick budget's 128 x 8 instead of 116 MB of float32, and a minibatch is gathered as uint8.
    assert model.rollout_buffer.observations.dtype == np.uint8
    model.rollout_buffer.add(env.reset(), np.zeros((1, 1)), np.zeros(1), np.ones(1), torch.zeros(1), torch.zeros(1))
    model.rollout_buffer.full = True
    model.rollout_buffer.compute_returns_and_advantage(torch.zeros(1), np.zeros(1))
    batch = next(model.rollout_buffer.get(batch_size=1))
    assert batch.observations.dtype == torch.uint8
    env.close()


def test_smoke_run_on_true_reward_writes_agent_and_card(tmp_path):
    out = train_ppo(PPOJob("breakout", TINY, seed=0), tmp_path / "agent", progress=False)
    assert (out / "agent.zip").exists() and (out / "card.json").exists()
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["ppo_32_steps.zip", "ppo_64_steps.zip"]
    assert any((out / "tb").rglob("events.out.tfevents.*"))
    card = read_json(out / "card.json")
    assert card["game"] == "breakout" and card["profile"] == "paper" and card["profile_settings"]["noop_max"] == 30
    assert card["reward"] == {"source": "true", "transform": "sign"}
    assert card["steps"] >= 64 and card["seed"] == 0 and card["budget"] == "tiny"
    assert card["schedule_steps"] == TINY.total_steps and card["precision"] == "fp32"  # TINY anneals over its own run
    assert card["training_env"] is True  # the learner's env: life-loss episodes (evaluation plays full games)
    assert card["config"]["n_steps"] == 16 and card["wall_s"] > 0 and "stable-baselines3" in card["versions"]
    model, card2 = load_agent(out)
    assert card2 == card and model.n_envs == 2
    assert card["channels_last"] is True, "CPU runs use NHWC convolutions by default"


def test_channels_last_policy_computes_the_same_function(tmp_path):
    import copy

    import numpy as np
    import torch

    out = train_ppo(PPOJob("breakout", TINY, seed=0, channels_last=False), tmp_path / "agent", progress=False)
    assert read_json(out / "card.json")["channels_last"] is False
    model, _ = load_agent(out)
    obs = torch.as_tensor(np.random.default_rng(0).integers(0, 256, (8, 4, 84, 84), dtype=np.uint8))
    nhwc = copy.deepcopy(model.policy).to(memory_format=torch.channels_last)
    assert nhwc.features_extractor.cnn[0].weight.is_contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        for a, b in zip(model.policy.evaluate_actions(obs, torch.zeros(8)), nhwc.evaluate_actions(obs, torch.zeros(8)), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_smoke_run_on_learned_normalized_reward_saves_and_restores_stats(tmp_path, reward_dir):
    out = train_ppo(PPOJob("breakout", TINY.replace(checkpoint_every=0), seed=1, reward=reward_dir, transform="normalized"), tmp_path / "a", progress=False)
    card = read_json(out / "card.json")
    assert card["reward"]["source"] == "model" and card["reward"]["transform"] == "normalized"
    assert len(card["reward"]["model_card_hash"]) == 16
    stats = read_json(out / NORM_FILE)
    assert stats == card["reward_norm"] and stats["count"] > 64
    assert not (out / "checkpoints").exists()
    # wherever the agent is loaded, the wrapper is rebuilt with the saved statistics
    _, loaded = load_agent(out)
    from trex_bench.core.envs import make_vec_env

    env, _ = reward_env(make_vec_env("breakout", 1), reward_dir, "breakout", "paper", "normalized",
                        norm_state=loaded["reward_norm"], update_norm=False)
    assert isinstance(env, LearnedRewardVecEnv) and env.get_norm_state() == json.loads(json.dumps(stats))
    env.close()


def test_constant_reward_smoke(tmp_path):
    out = train_ppo(PPOJob("breakout", TINY.replace(checkpoint_every=0), seed=0, reward="constant"), tmp_path / "c", progress=False)
    card = read_json(out / "card.json")
    assert card["reward"]["source"] == "constant" and card["stopped"] == "total steps"


def test_time_cap_stops_training_and_card_says_so(tmp_path):
    cfg = TINY.replace(checkpoint_every=0, total_steps=10**7, max_seconds=1.0)
    out = train_ppo(PPOJob("breakout", cfg, seed=0), tmp_path / "t", progress=False)
    card = read_json(out / "card.json")
    assert card["stopped"] == "time cap (1 s)" and 0 < card["steps"] < 10**6
    assert card["config"]["max_seconds"] == 1.0


def test_refuses_reward_model_of_another_game_or_profile(tmp_path, reward_dir):
    with pytest.raises(ValueError, match="reward model for breakout, not pong"):
        train_ppo(PPOJob("pong", TINY, seed=0, reward=reward_dir), tmp_path / "pong")
    assert not (tmp_path / "pong").exists()
    with pytest.raises(ValueError, match="profile 'paper', not 'machado'"):
        train_ppo(PPOJob("breakout", TINY, seed=0, reward=reward_dir, profile="machado"), tmp_path / "m")
    with pytest.raises(ValueError, match="does not exist"):
        train_ppo(PPOJob("breakout", TINY, seed=0, reward=tmp_path / "nowhere"), tmp_path / "x")
    with pytest.raises(ValueError, match="transform"):
        train_ppo(PPOJob("breakout", TINY, seed=0, reward=reward_dir, transform="tanh"), tmp_path / "x")
    with pytest.raises(ValueError, match="not an agent folder"):
        load_agent(tmp_path)
