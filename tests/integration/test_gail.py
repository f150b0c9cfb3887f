"""GAIL (Ho & Ermon 2016): the discriminator learns, pays softplus(logit) for (s_t, a_t), resumes exactly, runs in PPO."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import configure
from torch import nn

from fakes import BrightnessFrames, ScriptedVecEnv
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import read_json
from trex_bench.core.types import DemoSet, Episode
from trex_bench.rl.discriminator import discriminator_loss, gail_reward
from trex_bench.rl.gail import GAILReward, GAILRewardVecEnv, demo_pairs
from trex_bench.rl.gail_config import GAILConfig
from trex_bench.rl.online import OnlineReward

LENGTH = 40  # steps per fake episode
FAST = GAILConfig(batch_size=64, heldout_chunk=10, heldout_size=64)


def fake_demos(n_episodes: int, action: int | np.ndarray = 0, length: int = LENGTH) -> DemoSet:
    """A Breakout demo set of ``n_episodes`` episodes whose every step plays ``action`` (or the array's steps)."""
    acts = np.broadcast_to(np.asarray(action, dtype=np.uint8), (length,)).copy()
    eps = tuple(
        Episode(i, acts, np.zeros(length, np.float32), np.array([0]), np.zeros(1, np.uint64))
        for i in range(n_episodes)
    )
    return DemoSet("breakout", "paper", {}, "fake", eps)


def all_stacks(frames: BrightnessFrames) -> np.ndarray:
    """Every observation t < length of every episode of a fake frame source, uint8 [N, 4, 84, 84]."""
    ep = np.repeat(np.arange(len(frames.lengths)), frames.lengths)
    t = np.concatenate([np.arange(n) for n in frames.lengths])
    out = frames.frames[np.maximum(frames.stack_index(ep, t), 0)]
    out[frames.stack_index(ep, t) < 0] = 0
    return out


def make_gail(demos: DemoSet, frames, cfg: GAILConfig = FAST, seed: int = 0) -> GAILReward:
    return GAILReward("breakout", demos, frames, cfg, np.random.default_rng(seed), "cpu", n_actions=4)


# -- the discriminator learns ---------------------------------------------------------------------------------------
def test_discriminator_separates_bright_demos_from_dark_policy_frames():
    fast = FAST.replace(learning_rate=1e-3)
    gail = make_gail(fake_demos(4), BrightnessFrames(np.ones(4), LENGTH, seed=1), fast)
    policy = all_stacks(BrightnessFrames(np.zeros(4), LENGTH, seed=2))
    actions = np.zeros(len(policy), dtype=np.int64)
    first = gail.update(policy, actions)
    for _ in range(3):
        last = gail.update(policy, actions)
    assert first["heldout_acc"] < 0.8, "an untrained discriminator should not already separate the sets"
    assert last["heldout_acc"] > 0.95 and last["disc_acc"] > 0.95
    assert last["reward_expert"] > 4 * last["reward_policy"]
    assert isinstance(gail, OnlineReward) and gail.card()["rollouts"] == 4


@pytest.mark.parametrize("state_only", [False, True])
def test_the_action_is_an_input_unless_state_only(state_only):
    """Same frames on both sides, the demos press 1, the policy 2: only D(s, a) can tell them apart."""
    frames = BrightnessFrames(np.linspace(0, 1, 4), LENGTH, seed=1)
    gail = make_gail(fake_demos(4, action=1), frames, FAST.replace(state_only=state_only, learning_rate=1e-3))
    policy, actions = all_stacks(frames), np.full(4 * LENGTH, 2, dtype=np.int64)
    for _ in range(4):
        stats = gail.update(policy, actions)
    if state_only:
        assert stats["heldout_acc"] < 0.75
    else:
        assert stats["heldout_acc"] > 0.95


def test_label_smoothing_bounds_the_logits_of_obvious_policy_pairs():
    """With ε = 0.25 the loss is smallest at logit log(ε / (1 − ε)), not at −∞: the policy's reward cannot vanish."""
    logits = torch.linspace(-8, 2, 1001)
    loss = torch.stack([discriminator_loss(x.reshape(1), torch.zeros(1), 0.25) for x in logits])
    assert float(logits[loss.argmin()]) == pytest.approx(np.log(0.25 / 0.75), abs=0.01)
    plain = torch.stack([discriminator_loss(x.reshape(1), torch.zeros(1), 0.0) for x in logits])
    assert int(plain.argmin()) == 0  # without smoothing: as negative as it can go


def test_reward_is_nonnegative_and_increasing_in_d():
    logits = torch.linspace(-40, 40, 2001, dtype=torch.float64)
    r = gail_reward(logits)
    d = torch.sigmoid(logits)
    assert bool((r >= 0).all()) and bool((r.diff() > 0).all())
    safe = d < 1 - 1e-9  # where −log(1 − D) is computable directly
    assert torch.allclose(r[safe], -torch.log1p(-d[safe]), rtol=1e-6, atol=1e-12)


# -- (s, a) alignment -----------------------------------------------------------------------------------------------
class PixelPlusAction(nn.Module):
    """logit = 8·(first pixel) + action, so a reward names the observation and the action it was computed from."""

    def forward(self, stacks: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return stacks[:, 0, 0, 0].double() * 8 + actions.double()


def test_wrapper_pays_the_observation_an_action_was_taken_on():
    """Step t's reward uses observation t (the reset stack first; after a game over the next game's first stack,
    not the terminal one) with action t; the true reward and the episode stay in ``info``."""
    values = [[10, 20], [11, 21], [12, 22], [13, 23]]
    over = [[False, False], [False, True], [False, False], [False, False]]
    terminal = [[0, 0], [0, 99], [0, 0], [0, 0]]
    env = GAILRewardVecEnv(ScriptedVecEnv(values, over, terminal, reset_value=5), PixelPlusAction())
    env.reset()
    before = np.array([5, 5])
    for t, acts in enumerate([[0, 1], [2, 3], [1, 0], [3, 2]]):
        _, r, dones, infos = env.step(np.array(acts))
        want = np.log1p(np.exp(8.0 * before + np.array(acts)))
        np.testing.assert_allclose(r, want, rtol=1e-6)
        assert all(info["true_reward"] == 1.0 for info in infos)
        assert ("episode" in infos[1]) == bool(dones[1])
        before = np.array(values[t])


def test_demo_pairs_pair_observation_t_with_action_t():
    demos = fake_demos(2, action=np.arange(LENGTH) % 4, length=LENGTH)
    ep, t, actions = demo_pairs(demos)
    assert len(ep) == 2 * LENGTH and t.max() == LENGTH - 1 and t[LENGTH] == 0
    np.testing.assert_array_equal(actions, np.tile(np.arange(LENGTH) % 4, 2))


def test_real_demo_stack_before_action_t_is_the_stack_paired_with_it(tmp_path):
    """Collect a short Breakout game recording what the demonstrator saw; replay it through the frame cache: the
    pair GAIL trains on for step t is (the stack the demonstrator saw before acting, the action it chose)."""
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.policies import RandomPolicy

    class Recording(RandomPolicy):
        seen: list[np.ndarray] = []
        chosen: list[int] = []

        def act(self, obs):
            a = super().act(obs)
            self.seen.append(obs[0].copy())
            self.chosen.append(int(a[0]))
            return a

    policy = Recording(4, np.random.default_rng(0))
    demos = collect("breakout", policy, CollectConfig(1, seed=3, n_envs=1, max_steps=60), progress=False)
    n = demos.episodes[0].length
    assert n == 60 and len(policy.seen) >= n
    gail = GAILReward("breakout", demos, FrameCache(demos, tmp_path), FAST, np.random.default_rng(0), "cpu")
    stacks, actions = gail.demo_batch(np.arange(n))
    np.testing.assert_array_equal(actions, policy.chosen[:n])
    np.testing.assert_array_equal(stacks, np.stack(policy.seen[:n]))
    assert gail.n_actions == 4


# -- state on disk --------------------------------------------------------------------------------------------------
def test_save_then_load_restores_discriminator_optimiser_and_rng_exactly(tmp_path):
    demos, frames = fake_demos(4), BrightnessFrames(np.ones(4), LENGTH, seed=1)
    policy = all_stacks(BrightnessFrames(np.zeros(4), LENGTH, seed=2))
    actions = np.zeros(len(policy), dtype=np.int64)
    a = make_gail(demos, frames, seed=0)
    a.update(policy, actions)
    a.save(tmp_path / "state")
    b = make_gail(demos, frames, seed=0)  # same seed: same split; its weights and rng move on from here
    b.update(policy, actions[::-1].copy())
    b.update(policy, actions)
    b.load(tmp_path / "state")
    for (ka, va), (kb, vb) in zip(a.disc.state_dict().items(), b.disc.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    sa, sb = a.opt.state_dict(), b.opt.state_dict()
    assert sa["param_groups"] == sb["param_groups"]
    for i in sa["state"]:
        assert all(torch.equal(sa["state"][i][k], sb["state"][i][k]) for k in sa["state"][i])
    assert (b.rollouts, b.steps, b.history) == (a.rollouts, a.steps, a.history)
    assert a.update(policy, actions) == b.update(policy, actions)  # the same next round, to the last bit
    assert all(torch.equal(x, y) for x, y in zip(a.disc.parameters(), b.disc.parameters()))


def test_load_refuses_missing_corrupt_or_foreign_state(tmp_path):
    demos, frames = fake_demos(4), BrightnessFrames(np.ones(4), LENGTH, seed=1)
    gail = make_gail(demos, frames)
    with pytest.raises(DataError, match="state.json is missing"):
        gail.load(tmp_path / "nothing")
    gail.save(tmp_path / "s")
    with pytest.raises(DataError, match="another config"):
        make_gail(demos, frames, FAST.replace(learning_rate=3e-4)).load(tmp_path / "s")
    with pytest.raises(DataError, match="another demos_hash"):
        make_gail(fake_demos(4, action=1), frames).load(tmp_path / "s")
    (tmp_path / "s" / "discriminator.safetensors").write_bytes(b"torn")
    with pytest.raises(DataError, match="discriminator.safetensors"):
        make_gail(demos, frames).load(tmp_path / "s")


def test_config_is_validated():
    for bad in (dict(batch_size=3), dict(epochs=0), dict(label_smoothing=0.5), dict(arch="wide"),
                dict(heldout_fraction=1.0), dict(learning_rate=float("nan"))):
        with pytest.raises(ConfigError):
            GAILConfig(**bad)


# -- inside PPO -----------------------------------------------------------------------------------------------------
def test_ppo_with_the_wrapper_and_callback_trains_the_discriminator(tmp_path):
    """Two PPO rollouts on a scripted env: D trains after each, and its held-out accuracy reaches SB3's logger."""
    gail = make_gail(fake_demos(4), BrightnessFrames(np.ones(4), LENGTH, seed=1))
    before = [p.detach().clone() for p in gail.disc.parameters()]
    env = gail.wrap(ScriptedVecEnv([[v, v + 1] for v in range(0, 64, 2)]))
    model = PPO("CnnPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path), ["csv"]))
    check = PaidForBufferPairs(gail)
    model.learn(64, callback=[check, gail.callback()])
    assert check.rollouts == 2
    assert gail.rollouts == 2 and gail.steps == 2 * FAST.epochs  # 32 policy pairs: one minibatch of 32 + 32
    assert any(not torch.equal(b, p) for b, p in zip(before, gail.disc.parameters()))
    log = (tmp_path / "progress.csv").read_text().splitlines()
    assert "gail/heldout_acc" in log[0].split(",") and len(log) == 3
    card = gail.card()
    assert card["rollouts"] == 2 and 0.0 <= card["heldout_acc"]["last"] <= 1.0
    with pytest.raises(ConfigError, match="actions"):
        make_gail(fake_demos(4), BrightnessFrames(np.ones(4), LENGTH)).wrap(_SixActions())


class PaidForBufferPairs(BaseCallback):
    """Before D trains on a rollout: every reward in SB3's buffer is softplus(D(obs_t, a_t)) of the buffer's own
    (obs_t, a_t), and not of (obs_t+1, a_t), the classic off-by-one."""

    def __init__(self, gail: GAILReward) -> None:
        super().__init__()
        self.gail, self.rollouts = gail, 0

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        b = self.model.rollout_buffer
        obs, acts = torch.as_tensor(b.observations), torch.as_tensor(b.actions[..., 0]).long()
        with torch.no_grad():
            paid = gail_reward(self.gail.disc(obs.flatten(0, 1), acts.flatten())).reshape(b.rewards.shape).numpy()
            shifted = gail_reward(self.gail.disc(obs[1:].flatten(0, 1), acts[:-1].flatten())).numpy()
        np.testing.assert_allclose(b.rewards, paid, rtol=1e-5)
        assert not np.allclose(b.rewards[:-1].reshape(-1), shifted, rtol=1e-5)
        self.rollouts += 1


class _SixActions(ScriptedVecEnv):
    def __init__(self) -> None:
        import gymnasium as gym

        super().__init__([[0]])
        self.action_space = gym.spaces.Discrete(6)


def test_card_and_state_are_json(tmp_path):
    gail = make_gail(fake_demos(4), BrightnessFrames(np.ones(4), LENGTH, seed=1))
    gail.update(all_stacks(BrightnessFrames(np.zeros(4), LENGTH, seed=2)), np.zeros(4 * LENGTH, dtype=np.int64))
    gail.save(tmp_path)
    state = read_json(tmp_path / "state.json")
    assert state["kind"] == "gail_state" and state["rollouts"] == 1
    assert set(p.name for p in tmp_path.iterdir()) == {"state.json", "discriminator.safetensors",
                                                       "optimizer.safetensors"}


# -- the random policy ----------------------------------------------------------------------------------------------
def test_random_policy_is_evaluated_by_the_harness_and_never_loads_a_model(tmp_path, monkeypatch):
    from trex_bench.evaluation import evaluate

    def no_model(*args, **kwargs):
        raise AssertionError("the random policy loaded a model")

    monkeypatch.setattr("trex_bench.rl.ppo.load_agent", no_model)
    monkeypatch.setattr("trex_bench.bc.folder.load_bc", no_model)
    monkeypatch.setattr("trex_bench.rl.agent_io.load_ppo_zip", no_model)
    folder = evaluate.write_random_policy(tmp_path / "random", "breakout")
    assert sorted(p.name for p in folder.iterdir()) == ["card.json"]
    seen: list[np.ndarray] = []
    act = evaluate._act
    monkeypatch.setattr(evaluate, "_act", lambda *a: seen.append(act(*a)) or seen[-1])
    report = evaluate.evaluate_agent(folder, episodes=2, n_envs=2, seed=0)
    again = evaluate.evaluate_agent(folder, episodes=2, n_envs=2, seed=0, out=tmp_path / "again.json")
    assert report["episodes"] == 2 and report["returns"] == again["returns"]
    counts = np.bincount(np.concatenate(seen), minlength=4)
    assert len(counts) == 4 and counts.min() > 0.2 * counts.sum() / 4  # every action of Breakout's four, roughly evenly
    with pytest.raises(ConfigError, match="uniform-random"):
        evaluate.evaluate_agent(folder, episodes=1, deterministic=True, out=tmp_path / "det.json")
