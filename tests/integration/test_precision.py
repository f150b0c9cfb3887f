"""The PPO policy's numerics: the per-machine probe, fp32 = SB3's own extractor, bf16 runs, channels-last inputs."""

from __future__ import annotations

import json

import pytest
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from trex_bench.core.io import read_json
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import load_agent, train_ppo
from trex_bench.rl.precision import FastCnnPolicy, FastNatureCNN, bf16_supported, probe_precision, resolve_precision

TINY = PPOConfig("tiny", total_steps=64, n_envs=2, n_steps=16, batch_size=16, n_epochs=1)


def test_probe_returns_a_valid_mode_and_caches_it_per_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("TREX_BENCH_CACHE", str(tmp_path))
    out = probe_precision(rounds=1, steps=1, batch=8)
    assert out["choice"] in ("fp32", "bf16") and out["stacks_per_s"]["fp32"] > 0
    mode, record = resolve_precision("auto")
    assert mode in ("fp32", "bf16") and record["asked"] == "auto" and record["choice"] == mode
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert cached[record["machine"]]["choice"] == mode
    # a second call reads the cache rather than probing again
    cached[record["machine"]]["choice"] = "fp32" if mode == "bf16" else "bf16"
    (tmp_path / "precision.json").write_text(json.dumps(cached))
    assert resolve_precision("auto")[0] != mode


def test_unknown_precision_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(ValueError, match="unknown precision 'fp8'"):
        train_ppo(PPOJob("breakout", TINY, seed=0, precision="fp8"), tmp_path / "agent", progress=False)
    assert not (tmp_path / "agent").exists()
    from trex_bench.cli import main

    with pytest.raises(SystemExit):  # argparse: one line naming the choices, exit 2
        main(["rl", "train", "breakout", "--reward", "true", "--budget", "smoke", "--seed", "0", "--out",
              str(tmp_path / "a2"), "--precision", "fp16"])
    assert not (tmp_path / "a2").exists()


def test_fp32_keeps_sb3s_own_extractor_and_records_the_mode(tmp_path):
    out = train_ppo(PPOJob("breakout", TINY, seed=0, precision="fp32"), tmp_path / "agent", progress=False)
    card = read_json(out / "card.json")
    assert card["precision"] == "fp32" and card["precision_probe"] == {"asked": "fp32"}
    model, _ = load_agent(out)
    assert type(model.policy.features_extractor) is NatureCNN  # the numerics of every row made before bf16 existed


@pytest.mark.skipif(not bf16_supported(), reason="this torch build cannot autocast convolutions to bf16 on the CPU")
def test_bf16_runs_at_smoke_with_channels_last_inputs_and_fp32_heads(tmp_path):
    seen = []
    hook = lambda mod, args: seen.append((args[0].is_contiguous(memory_format=torch.channels_last), args[0].dtype))  # noqa: E731
    orig_init = FastNatureCNN.__init__

    def init(self, *a, **kw):
        orig_init(self, *a, **kw)
        self.cnn[0].register_forward_pre_hook(hook)

    FastNatureCNN.__init__ = init
    try:
        out = train_ppo(PPOJob("breakout", TINY, seed=0, precision="bf16"), tmp_path / "agent", progress=False)
    finally:
        FastNatureCNN.__init__ = orig_init
    assert seen and all(cl for cl, _ in seen), "observations must reach the first conv channels-last"
    card = read_json(out / "card.json")
    assert card["precision"] == "bf16" and card["steps"] >= TINY.total_steps
    model, _ = load_agent(out)
    assert isinstance(model.policy.features_extractor, FastNatureCNN) and model.policy.features_extractor.bf16
    obs = torch.zeros(3, 4, 84, 84)
    feats = model.policy.extract_features(obs, model.policy.features_extractor)
    assert feats.dtype == torch.float32  # heads, softmax, log-probs and losses see fp32
    assert all(p.dtype == torch.float32 for p in model.policy.parameters())  # fp32 master weights


@pytest.mark.parametrize("bf16", [False, pytest.param(True, marks=pytest.mark.skipif(not bf16_supported(), reason="no bf16"))])
def test_fast_policy_gives_sb3s_cnn_policy_numerics_bit_for_bit(bf16):
    """Issue 13: the uint8 stacks are laid out channels-last and scaled after the cast; values, losses, gradients and
    the updated weights are exactly those of SB3's CnnPolicy with the same weights (fp32: every earlier row)."""
    import gymnasium as gym
    from stable_baselines3.common.policies import ActorCriticCnnPolicy

    space, actions = gym.spaces.Box(0, 255, (4, 84, 84), dtype="uint8"), gym.spaces.Discrete(4)
    kwargs = {"features_extractor_class": FastNatureCNN, "features_extractor_kwargs": {"bf16": True}} if bf16 else {}
    gen = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 256, (16, 4, 84, 84), generator=gen, dtype=torch.uint8)
    act = torch.randint(0, 4, (16,), generator=gen)
    results = []
    for cls in (ActorCriticCnnPolicy, FastCnnPolicy):
        torch.manual_seed(0)
        policy = cls(space, actions, lambda _: 2.5e-4, **kwargs).to(memory_format=torch.channels_last)
        values, log_prob, entropy = policy.evaluate_actions(obs, act)
        loss = -log_prob.mean() + 0.5 * values.square().mean() - 0.01 * entropy.mean()
        loss.backward()
        policy.optimizer.step()
        results.append((loss.detach(), [p.detach().clone() for p in policy.parameters()]))
    (loss_sb3, params_sb3), (loss_fast, params_fast) = results
    assert torch.equal(loss_sb3, loss_fast)
    assert all(torch.equal(a, b) for a, b in zip(params_sb3, params_fast, strict=True))


@pytest.mark.parametrize("text", ["[1, 2]", '"fp32"', "{MACHINE: 3}", '{MACHINE: {"choice": "fp8"}}', "{not json"])
def test_a_corrupt_precision_cache_is_measured_again(tmp_path, monkeypatch, text):
    """Issue 16, D7 (corrupt cache files): valid JSON of another shape was a TypeError/KeyError traceback."""
    from trex_bench.rl import precision

    monkeypatch.setenv("TREX_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "probe_precision", lambda device: {"choice": "fp32", "measured": True})
    machine = precision._machine_key(torch.device("cpu"))
    (tmp_path / "precision.json").write_text(text.replace("MACHINE", json.dumps(machine)))
    mode, record = resolve_precision("auto")
    assert mode == "fp32" and record["measured"]
    assert json.loads((tmp_path / "precision.json").read_text())[machine]["choice"] == "fp32"
