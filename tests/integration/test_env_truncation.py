"""A game cut at the frame cap is a time-limit truncation, a lost life a true terminal (found by ``make test-mutation``).

SB3's PPO bootstraps the value of an episode that ends with ``info["TimeLimit.truncated"]``; reporting the cap as a
terminal (mutation E14 of tools/mutations.toml) would teach the critic that the game ends there.
"""

from __future__ import annotations

import numpy as np

from trex_bench.core.envs import EnvProfile, make_vec_env

NOOP = 0  # Breakout: NOOP never relaunches the ball after the first lost life, so the game runs to the cap
CAP = EnvProfile("paper-cap", 0.0, 30, 4, True, 4, 84, True, 400)  # 100 agent steps


def test_the_frame_cap_is_a_truncation_and_a_lost_life_is_not():
    env = make_vec_env("breakout", 1, CAP, seed=0, training=True)
    env.reset()
    lives_lost, end = [], None
    for _ in range(200):
        _, _, dones, infos = env.step(np.array([NOOP]))
        if dones[0] and not infos[0]["game_over"]:
            lives_lost.append(infos[0]["TimeLimit.truncated"])
        if infos[0]["game_over"]:
            end = infos[0]
            break
    env.close()
    assert end is not None and end["episode"]["l"] == 100, "the game should run to the 400-frame cap"
    assert end["TimeLimit.truncated"] is True
    assert lives_lost and not any(lives_lost), "a lost life is a true terminal, never a truncation"
