"""KL-to-reference penalty (RLHF): r̂_t = r_t − β·(log π_θ(a_t|s_t) − log π_0(a_t|s_t)) inside PPO's rollouts."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from trex_bench.core.envs import make_vec_env
from trex_bench.core.io import read_json
from trex_bench.rl.config import KLSpec, PPOConfig, PPOJob
from trex_bench.rl.kl import KLToReferenceCallback, ReferencePolicy, kl_penalty
from trex_bench.rl.ppo import train_ppo

TINY = PPOConfig("tiny", total_steps=64, n_envs=2, n_steps=16, batch_size=16, n_epochs=1)
N_ACTIONS = 4  # Breakout's minimal action set


class SelfReference:
    """π_0 = the PPO policy itself (log-probs from ``policy.evaluate_actions``): the KL must vanish."""

    def __init__(self, model: PPO) -> None:
        self.model = model

    def log_prob(self, obs, actions) -> torch.Tensor:
        policy = self.model.policy
        obs_t = torch.as_tensor(obs, device=policy.device)
        _, logp, _ = policy.evaluate_actions(obs_t, torch.as_tensor(actions, device=policy.device))
        return logp


class FixedReference:
    """π_0(a|s) = probs[a] in every state (uniform, or nearly one-hot on one action)."""

    def __init__(self, probs: np.ndarray, game: str | None = "breakout") -> None:
        self.logp = torch.log(torch.as_tensor(probs, dtype=torch.float32))
        self.game, self.n_actions = game, len(probs)

    def log_prob(self, obs, actions) -> torch.Tensor:
        assert len(obs) == len(actions) and tuple(obs.shape[1:]) == (4, 84, 84)
        return self.logp[torch.as_tensor(actions).long()]


def one_hot_ish(action: int, n: int = N_ACTIONS, eps: float = 1e-3) -> np.ndarray:
    p = np.full(n, eps)
    p[action] = 1 - (n - 1) * eps
    return p


class Snapshot(BaseCallback):
    """Copies the buffer's rewards/advantages/returns and the bootstrap inputs at rollout end, in callback order."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[dict] = []

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        b = self.model.rollout_buffer
        with torch.no_grad():  # π_θ(·|s_t) at rollout time, for every stored state [n_steps, n_envs, A]
            obs = torch.as_tensor(b.observations.reshape(-1, *b.obs_shape))
            probs = self.model.policy.get_distribution(obs).distribution.probs.reshape(*b.rewards.shape, -1)
        self.seen.append(dict(probs=probs.double(),
            rewards=b.rewards.copy(), advantages=b.advantages.copy(), returns=b.returns.copy(),
            log_probs=b.log_probs.copy(), values=b.values.copy(), actions=b.actions.reshape(b.rewards.shape).copy(), episode_starts=b.episode_starts.copy(),
            last_values=self.locals["values"].cpu().numpy().flatten(), dones=self.locals["dones"].copy(),
            logged=dict(self.logger.name_to_value),
        ))


def one_rollout(make_ref, beta: float, seed: int = 0, logit_bias: list[float] | None = None
                ) -> tuple[PPO, KLToReferenceCallback, dict, dict]:
    """One PPO rollout (2 envs × 16 steps) with the KL callback between two snapshots: (model, cb, before, after).

    ``logit_bias`` replaces the policy head's bias (a fresh policy is nearly uniform; a bias makes it peaked).
    """
    env = make_vec_env("breakout", 2, seed=seed, training=True)
    model = PPO("CnnPolicy", env, n_steps=16, batch_size=16, n_epochs=1, seed=seed, device="cpu")
    if logit_bias is not None:
        with torch.no_grad():
            model.policy.action_net.bias.copy_(torch.tensor(logit_bias))
    before, after = Snapshot(), Snapshot()
    cb = KLToReferenceCallback(make_ref(model), beta, batch_size=7)  # 7: batches that do not divide the rollout
    model.learn(32, callback=CallbackList([before, cb, after]))
    env.close()
    return model, cb, before.seen[0], after.seen[0]


def gae(rewards, values, episode_starts, last_values, dones, gamma: float, lam: float) -> np.ndarray:
    """GAE(λ) advantages, written out (Schulman et al. 2016 eq. 16): δ_t = r_t + γ·V_{t+1}·(1 − d_{t+1}) − V_t."""
    adv = np.zeros_like(rewards)
    last = np.zeros(rewards.shape[1], np.float32)
    for t in reversed(range(len(rewards))):
        not_done = 1.0 - (dones.astype(np.float32) if t == len(rewards) - 1 else episode_starts[t + 1])
        v_next = last_values if t == len(rewards) - 1 else values[t + 1]
        delta = rewards[t] + gamma * v_next * not_done - values[t]
        last = delta + gamma * lam * not_done * last
        adv[t] = last
    return adv


def test_kl_penalty_is_the_equation():
    lp_theta, lp_ref = np.log([0.5, 0.25, 0.9]), np.log([0.25, 0.25, 0.3])
    np.testing.assert_allclose(kl_penalty(lp_theta, lp_ref, 0.1), 0.1 * (lp_theta - lp_ref))
    t = kl_penalty(torch.tensor(lp_theta), torch.tensor(lp_ref), 2.0)
    assert isinstance(t, torch.Tensor) and torch.allclose(t, 2.0 * (torch.tensor(lp_theta) - torch.tensor(lp_ref)))
    assert np.all(kl_penalty(lp_theta, lp_theta, 0.5) == 0)
    # E_{a~p}[log p(a) − log q(a)] = KL(p‖q) > 0 for p ≠ q
    p, q = np.array([0.7, 0.2, 0.1]), np.full(3, 1 / 3)
    assert float(p @ kl_penalty(np.log(p), np.log(q), 1.0)) > 0


def test_penalty_is_zero_when_the_policy_is_its_own_reference():
    _, cb, before, after = one_rollout(SelfReference, beta=0.5)
    np.testing.assert_allclose(after["rewards"], before["rewards"], atol=1e-5)
    np.testing.assert_allclose(after["advantages"], before["advantages"], atol=1e-4)
    assert abs(cb.kl_history[0]) < 1e-5 and abs(after["logged"]["kl_to_bc/penalty"]) < 1e-5


def test_callback_subtracts_beta_log_ratio_and_recomputes_gae():
    beta, probs = 0.1, one_hot_ish(3)
    model, cb, before, after = one_rollout(lambda m: FixedReference(probs), beta=beta)
    logp_ref = np.log(probs).astype(np.float32)[before["actions"].astype(int)]
    # r̂_t − r_t = −β·(log π_θ(a_t|s_t) − log π_0(a_t|s_t)), with π_θ's log-probs from rollout time
    np.testing.assert_allclose(after["rewards"] - before["rewards"], -beta * (before["log_probs"] - logp_ref),
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(after["advantages"], before["advantages"])
    # advantages and returns are GAE on the new rewards with SB3's own bootstrap (same last values and dones)
    b = model.rollout_buffer
    adv = gae(after["rewards"], before["values"], before["episode_starts"], before["last_values"], before["dones"],
              b.gamma, b.gae_lambda)
    np.testing.assert_allclose(after["advantages"], adv, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(after["returns"], adv + before["values"], rtol=1e-4, atol=1e-5)
    # and the original ones were GAE on the original rewards (the snapshot order is right)
    adv0 = gae(before["rewards"], before["values"], before["episode_starts"], before["last_values"],
               before["dones"], b.gamma, b.gae_lambda)
    np.testing.assert_allclose(before["advantages"], adv0, rtol=1e-4, atol=1e-5)
    # a fresh policy is near uniform, π_0 nearly one-hot on FIRE... so log π_θ − log π_0 ≈ log(1/4) − log(1e-3) > 0
    kl = float((before["log_probs"] - logp_ref).mean())
    assert kl > 1.0 and cb.kl_history == [pytest.approx(kl, rel=1e-5)]
    assert after["logged"]["kl_to_bc/kl"] == pytest.approx(kl, rel=1e-5)
    assert after["logged"]["kl_to_bc/penalty"] == pytest.approx(beta * kl, rel=1e-5)


def test_penalty_is_positive_on_average_against_a_uniform_reference():
    """E_a[log π_θ(a|s) − log(1/A)] = KL(π_θ‖uniform) = log A − H(π_θ(·|s)) > 0; the sampled estimate agrees.

    π_θ is made peaked (≈ 0.87 on NOOP): a fresh policy is so close to uniform (KL ≈ 1e-6) that the one-sample
    estimate would be pure noise and the test could not tell a sign error.
    """
    uniform = np.full(N_ACTIONS, 1 / N_ACTIONS)
    _, cb, before, _ = one_rollout(lambda m: FixedReference(uniform), beta=1.0, logit_bias=[3.0, 0.0, 0.0, 0.0])
    p = before["probs"].reshape(-1, N_ACTIONS)
    # the exact per-state KL, from the same equation: Σ_a π_θ(a|s)·(log π_θ(a|s) − log π_0(a|s))
    exact = (p * kl_penalty(p.log(), torch.log(torch.as_tensor(uniform)), 1.0)).sum(1)
    assert torch.all(exact > 0) and float(exact.mean()) > 0.3
    # the callback's single-sample estimate is unbiased: within 4 standard errors of the exact mean
    x = before["log_probs"] - np.log(uniform[0])
    se = x.std(ddof=1) / math.sqrt(x.size)
    assert cb.kl_history[0] > 0 and abs(cb.kl_history[0] - float(exact.mean())) < 4 * se
    # and the stored behaviour log-probs are those of the same π_θ (what makes the estimate unbiased)
    a = torch.as_tensor(before["actions"].astype(np.int64)).reshape(-1, 1)
    np.testing.assert_allclose(p.gather(1, a).log().reshape(before["log_probs"].shape).numpy(), before["log_probs"],
                               atol=1e-5)


class Unscored:
    pass


def test_bad_inputs_are_refused(tmp_path):
    ref = FixedReference(np.full(N_ACTIONS, 1 / N_ACTIONS))
    with pytest.raises(ValueError, match="beta"):
        KLToReferenceCallback(ref, -0.1)
    with pytest.raises(ValueError, match="beta"):
        KLToReferenceCallback(ref, float("nan"))
    with pytest.raises(TypeError, match="log_prob"):
        KLToReferenceCallback(Unscored(), 0.1)  # type: ignore[arg-type]
    assert isinstance(ref, ReferencePolicy) and not isinstance(Unscored(), ReferencePolicy)
    for beta in (-1.0, 0.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="kl-beta must be a finite number > 0"):
            KLSpec(ref, beta)
    with pytest.raises(ValueError, match="needs a reference"):
        KLSpec(None, 0.1)
    with pytest.raises(ValueError, match="policy of pong, not breakout"):
        train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(FixedReference(np.full(6, 1 / 6), game="pong"), 0.1)), tmp_path / "pong")
    with pytest.raises(ValueError, match="over 6 actions, but this env has 4"):
        train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(FixedReference(np.full(6, 1 / 6)), 0.1)), tmp_path / "six")
    with pytest.raises(ValueError, match="does not exist"):
        train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(tmp_path / "nowhere", 0.1)), tmp_path / "x")
    assert not any((tmp_path / d).exists() for d in ("neg", "noref", "pong", "six", "x"))


def test_smoke_run_with_a_reference_object_writes_the_card_fields(tmp_path):
    ref = FixedReference(one_hot_ish(1))
    out = train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(ref, 0.1)), tmp_path / "agent", progress=False)
    card = read_json(out / "card.json")
    assert card["kl_beta"] == 0.1
    assert card["kl_to"]["source"] == "object" and card["kl_to"]["type"] == "FixedReference"
    assert card["kl_mean"]["rollouts"] == 2 and card["kl_mean"]["first"] > 1.0
    assert any((out / "tb").rglob("events.out.tfevents.*"))


def test_a_resumed_run_keeps_the_kl_history_of_its_checkpoint(tmp_path):
    """The KL history is saved beside each checkpoint: a run cut after its first checkpoint and resumed reports all
    its rollouts in the card, not only those after the resume."""
    import shutil

    cfg = TINY.replace(total_steps=128, checkpoint_every=48)  # checkpoints at 48 (after 1 update) and 96
    job = PPOJob("breakout", cfg, seed=0, kl=KLSpec(FixedReference(one_hot_ish(1)), 0.1))
    whole = read_json(train_ppo(job, tmp_path / "whole", progress=False) / "card.json")["kl_mean"]
    out = tmp_path / "cut"
    train_ppo(job, out, progress=False)
    for name in ("card.json", "agent.zip", "checkpoints/ppo_96_steps.zip"):
        (out / name).unlink()
    shutil.rmtree(out / "checkpoints" / "ppo_96_steps.online", ignore_errors=True)
    resumed = read_json(train_ppo(job, out, progress=False, resume=True) / "card.json")
    assert resumed["resumed_from"] == 32 and whole["rollouts"] == resumed["kl_mean"]["rollouts"] == 4
    assert resumed["kl_mean"]["first"] == whole["first"] and "from_step" not in resumed["kl_mean"]
    # A checkpoint without a history (written before it was kept): the card says where the history begins.
    for name in ("card.json", "agent.zip", "checkpoints/ppo_96_steps.zip"):
        (out / name).unlink()
    shutil.rmtree(out / "checkpoints" / "ppo_48_steps.online", ignore_errors=True)
    shutil.rmtree(out / "checkpoints" / "ppo_96_steps.online", ignore_errors=True)
    older = read_json(train_ppo(job, out, progress=False, resume=True) / "card.json")["kl_mean"]
    assert (older["rollouts"], older["from_step"]) == (3, 32)


def test_without_kl_the_card_says_so(tmp_path):
    out = train_ppo(PPOJob("breakout", TINY.replace(total_steps=32), seed=0), tmp_path / "a", progress=False)
    card = read_json(out / "card.json")
    assert card["kl_beta"] == 0.0 and card["kl_mean"] is None and card["kl_to"] is None


@pytest.fixture(scope="module")
def bc_dirs(tmp_path_factory):
    """Saved BC models (random weights): breakout (4 actions), pong (6), and breakout with 6 logits."""
    from trex_bench.bc.folder import save_bc
    from trex_bench.bc.train import BCPolicy, init_bc_net

    root = tmp_path_factory.mktemp("bc")
    gen = torch.Generator().manual_seed(0)
    dirs = {}
    for name, game, n in (("breakout", "breakout", 4), ("pong", "pong", 6), ("breakout6", "breakout", 6)):
        dirs[name] = save_bc(BCPolicy(init_bc_net(n, gen), game), root / name, {"profile": "paper"})
    return dirs


def test_end_to_end_with_a_saved_bc_model(tmp_path, bc_dirs):
    out = train_ppo(PPOJob("breakout", TINY.replace(total_steps=32), seed=0, kl=KLSpec(bc_dirs["breakout"], 0.05)), tmp_path / "agent", progress=False)
    card = read_json(out / "card.json")
    assert card["kl_to"]["source"] == "bc" and card["kl_to"]["path"] == str(bc_dirs["breakout"])
    assert len(card["kl_to"]["card_hash"]) == 16 and card["kl_to"]["n_actions"] == 4
    assert card["kl_beta"] == 0.05 and card["kl_mean"]["rollouts"] == 1 and math.isfinite(card["kl_mean"]["last"])
    with pytest.raises(ValueError, match="BC model of pong, not breakout"):
        train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(bc_dirs["pong"], 0.1)), tmp_path / "p")
    with pytest.raises(ValueError, match="over 6 actions, but this env has 4"):
        train_ppo(PPOJob("breakout", TINY, seed=0, kl=KLSpec(bc_dirs["breakout6"], 0.1)), tmp_path / "s")
    assert not (tmp_path / "p").exists() and not (tmp_path / "s").exists()
