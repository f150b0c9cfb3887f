"""Env profiles: shapes, dtypes, zero-filled stack, max-pool, seeding, true-score monitor, life-loss episodes."""

import numpy as np
import pytest

from trex_bench.core.envs import PROFILES, get_profile, make_ale_vector_env, make_env, make_vec_env


def test_single_env_shapes_and_zero_filled_stack():
    env = make_env("breakout", profile="paper", seed=0)
    obs, info = env.reset(seed=0)
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert not obs[:3].any(), "the frame stack must be zero-filled at reset"
    assert obs[3].any()
    obs, *_ = env.step(0)
    assert not obs[:2].any() and obs[2].any() and obs[3].any()
    env.close()


def test_vec_env_shapes_and_spaces():
    venv = make_vec_env("pong", 3, profile="paper", seed=1)
    obs = venv.reset()
    assert obs.shape == (3, 4, 84, 84) and obs.dtype == np.uint8
    assert venv.action_space.n == 6
    obs, rew, done, infos = venv.step(np.zeros(3, dtype=np.int64))
    assert rew.dtype == np.float32 and done.shape == (3,) and len(infos) == 3
    venv.close()


def test_unknown_profile():
    with pytest.raises(ValueError, match="valid: paper, machado"):
        get_profile("v4")


def test_profiles_record_full_settings():
    paper, machado = PROFILES["paper"].settings(), PROFILES["machado"].settings()
    assert paper["repeat_action_probability"] == 0.0 and paper["noop_max"] == 30 and paper["frameskip"] == 4
    assert paper["maxpool"] and paper["max_frames_per_episode"] == 108_000
    assert machado["repeat_action_probability"] == 0.25


def test_same_seed_same_frames_other_seed_other_frames():
    def frames(seed):
        env = make_env("breakout", seed=seed)
        out = [env.reset(seed=seed)[0]]
        for a in [1, 2, 2, 3, 0, 3, 2, 1] * 10:
            out.append(env.step(a)[0])
        env.close()
        return np.stack(out)

    a, b, c = frames(3), frames(3), frames(4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)  # different no-op starts


def test_vec_env_maxpool_keeps_blinking_objects():
    """With max-pool on, a frame is the pixel-wise max of two emulator frames: never darker than without."""
    seeds = np.array([5])
    on = make_ale_vector_env("breakout", "paper", 1)
    from dataclasses import replace

    from trex_bench.core import envs

    off_profile = replace(get_profile("paper"), maxpool=False)
    off = envs.make_ale_vector_env("breakout", off_profile, 1)
    o1, _ = on.reset(seed=seeds)
    o2, _ = off.reset(seed=seeds)
    brighter = 0
    for a in [1] + [2, 3] * 40:
        o1, *_ = on.step(np.array([a]))
        o2, *_ = off.step(np.array([a]))
        assert (o1[0, -1].astype(int) >= o2[0, -1].astype(int) - 1).all()
        brighter += int((o1[0, -1].astype(int) > o2[0, -1].astype(int) + 8).any())
    assert brighter > 0, "max-pool never changed a frame: it is not applied"
    on.close()
    off.close()


def test_true_score_monitor_and_life_loss_episodes():
    """With training=True a life loss ends the learner's episode, but info['episode'] is the full game."""
    venv = make_vec_env("breakout", 1, seed=0, training=True)
    venv.reset()
    rng = np.random.default_rng(0)
    dones, game_ret, episode = 0, 0.0, None
    for _ in range(3000):
        _, rew, done, infos = venv.step(rng.integers(0, 4, 1))
        game_ret += float(rew[0])
        dones += int(done[0])
        if "episode" in infos[0]:
            episode = infos[0]["episode"]
            break
    venv.close()
    assert episode is not None
    assert dones == 5, "Breakout has 5 lives: 5 learner episodes per game"
    assert episode["r"] == pytest.approx(game_ret)


def test_each_game_reports_its_own_score_not_the_chains():
    """Found by `make test-mutation` (E13): info['episode'] of the second game must not carry the first game's score."""
    venv = make_vec_env("breakout", 1, seed=0, training=True)
    venv.reset()
    rng = np.random.default_rng(0)
    own, games = 0.0, []  # (reported, summed from the steps) per finished game
    for _ in range(6000):
        _, rew, _, infos = venv.step(rng.integers(0, 4, 1))
        own += float(rew[0])
        if "episode" in infos[0]:
            games.append((infos[0]["episode"]["r"], own))
            own = 0.0
            if len(games) == 2:
                break
    venv.close()
    assert len(games) == 2 and games[0][1] > 0, "the first game should score, or the test could not fail"
    assert [r for r, _ in games] == pytest.approx([o for _, o in games])


def test_fire_after_life_loss_in_training_only():
    """baselines' FireResetEnv wraps EpisodicLifeEnv: after a lost life the ball is relaunched for the learner.

    A policy that never presses FIRE (what a survival-bonus reward teaches) still loses all 5 lives of Breakout in
    training mode; in evaluation mode (full games) the same policy never relaunches the ball and loses one life.
    """
    never_fire = np.array([2])  # RIGHT: the paddle sits at the wall, the ball (FIRE at reset) is missed
    train = make_vec_env("breakout", 1, seed=0, training=True)
    train.reset()
    forced, game_over = 0, False
    for _ in range(3000):
        _, _, _, infos = train.step(never_fire)
        forced += int(infos[0].get("forced_fire", False))
        if "episode" in infos[0]:
            game_over = True
            break
    train.close()
    assert game_over and forced == 4, "one forced FIRE after each of the first 4 lost lives"

    ev = make_vec_env("breakout", 1, seed=0, training=False)
    ev.reset()
    lives = []
    for _ in range(1500):
        _, _, _, infos = ev.step(never_fire)
        assert "forced_fire" not in infos[0]
        lives.append(infos[0]["lives"])
    ev.close()
    assert lives[-1] == 4, "evaluation is the plain game: nobody presses FIRE for the agent"
