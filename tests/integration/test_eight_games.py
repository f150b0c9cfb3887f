"""Every T-REX Table 1 game works end to end at smoke size, not only Breakout (issue #15 item 4).

Per game: collect one short random episode and verify it by exact replay; one reward-net forward on a replayed
stack, which must ignore the masked score/lives rows and see every other row; one PPO update on that learned
reward; FIRE is forced after a lost life only where the game's minimal action set has FIRE.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trex_bench.core.envs import fire_action, make_vec_env
from trex_bench.core.games import GAMES
from trex_bench.demos.collect import CollectConfig, collect
from trex_bench.demos.policies import RandomPolicy
from trex_bench.demos.replay import replay, verify_demos
from trex_bench.reward.net import RewardNet, save_model
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import train_ppo

PAPER_GAMES = sorted(g for g, spec in GAMES.items() if spec.in_paper)
TINY = PPOConfig("tiny", total_steps=32, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=0)
# ALE minimal action sets (ale-py): FIRE is in every paper game's set; baselines' wrap_deepmind adds FireResetEnv
# for exactly these (``'FIRE' in get_action_meanings()``).
HAS_FIRE = {"beamrider", "breakout", "enduro", "hero", "pong", "qbert", "seaquest", "spaceinvaders"}


def test_the_papers_eight_games_are_registered():
    assert PAPER_GAMES == ["beamrider", "breakout", "enduro", "hero", "pong", "qbert", "seaquest", "spaceinvaders"]


@pytest.mark.parametrize("game", PAPER_GAMES)
def test_game_smoke(game, tmp_path):
    spec = GAMES[game]
    assert (fire_action(spec.ale_id) is not None) == (game in HAS_FIRE)

    probe = make_vec_env(game, 1)
    n_actions = int(probe.action_space.n)
    probe.close()
    policy = RandomPolicy(n_actions, np.random.default_rng(0))
    ds = collect(game, policy, CollectConfig(1, seed=0, max_steps=60), progress=False)
    assert len(ds.episodes) == 1 and ds.episodes[0].length == 60
    assert all(r.ok for r in verify_demos(ds)), f"{game}: replay does not reproduce the recorded frames"

    frames = replay(ds.episodes[0], game)
    stack = torch.from_numpy(frames[-4:][None].copy())
    torch.manual_seed(0)
    net = RewardNet(game).eval()
    with torch.no_grad():
        r = net(stack)
        noisy = stack.clone()
        rows = list(spec.mask_rows)
        noisy[:, :, rows] = torch.randint(0, 256, noisy[:, :, rows].shape, dtype=torch.uint8)
        r_masked = net(noisy)
        free = [i for i in range(84) if i not in rows]
        poked = stack.clone()
        poked[:, :, free[len(free) // 2]] = 255 - poked[:, :, free[len(free) // 2]]
        r_free = net(poked)
    assert r.shape == (1,) and torch.isfinite(r).all()
    assert torch.equal(r, r_masked), f"{game}: the reward net sees its masked score/lives rows"
    assert not torch.equal(r, r_free), f"{game}: the reward net ignores an unmasked row"

    reward_dir = save_model(net, tmp_path / "reward", {"profile": "paper", "method": "trex"})
    out = train_ppo(PPOJob(game, TINY, seed=0, reward=reward_dir), tmp_path / "agent", progress=False)
    assert (out / "card.json").exists()
