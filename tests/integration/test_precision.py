"""The PPO policy's numerics: the per-machine probe, fp32 = SB3's own extractor, bf16 runs, channels-last inputs."""

from __future__ import annotations

import json

import pytest
import torch
from stable_baselines3.common.torch_layers import NatureCNN

from trex_bench.core.io import read_json
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import load_agent, train_ppo
from trex_bench.rl.precision import FastCnnPolicy, FastNatureCNN, bf16_supported, resolve_precision

TINY = PPOConfig("tiny", total_steps=64, n_envs=2, n_steps=16, batch_size=16, n_epochs=1)


class _FakeClock:
    """A timer the fake update steps advance: fp32 steps take ``fp32`` s, bf16 steps ``bf16`` s."""

    def __init__(self, fp32: float, bf16: float) -> None:
        self.t, self.cost = 0.0, {False: fp32, True: bf16}

    def __call__(self) -> float:
        return self.t

    def stepper(self, _space, _x, bf16: bool):
        def step() -> None:
            self.t += self.cost[bf16]

        return step


@pytest.fixture
def fake_probe(tmp_path, monkeypatch):
    """No real probing: update steps that only advance a fake clock (bf16 twice as fast), a load average of 0.5."""
    from trex_bench.rl import precision

    clock = _FakeClock(fp32=0.002, bf16=0.001)
    monkeypatch.setenv("TREX_BENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(precision, "_update_step", clock.stepper)
    monkeypatch.setattr(precision, "bf16_supported", lambda device="cpu": True)
    monkeypatch.setattr(precision.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    real = precision.probe_precision
    calls = []

    def probe(device="cpu"):
        calls.append(device)
        return real(device, rounds=3, steps=2, batch=8, clock=clock)

    monkeypatch.setattr(precision, "probe_precision", probe)
    return calls


def test_probe_records_its_margin_load_and_time_and_caches_it_per_machine(tmp_path, fake_probe):
    mode, record = resolve_precision("auto")
    assert mode == "bf16" and record["stacks_per_s"] == {"fp32": 4000.0, "bf16": 8000.0}
    assert record["margin"] == 2.0 and record["load"] == 0.5 and record["cores"] >= 1 and record["probed_at"] > 0
    assert record["reason"].startswith("probed now (no cached probe")
    cached = json.loads((tmp_path / "precision.json").read_text())
    assert cached[record["machine"]]["choice"] == "bf16"
    # a second call reads the robust cached choice rather than probing again
    cached[record["machine"]]["choice"] = "fp32"
    (tmp_path / "precision.json").write_text(json.dumps(cached))
    mode, again = resolve_precision("auto")
    assert (mode, len(fake_probe), again["reason"]) == ("fp32", 1, "the cached probe of this machine"), again


@pytest.mark.parametrize("entry, why", [
    (dict(margin=1.1), "margin was small (1.10x"),
    (dict(load=4.0, cores=2), "ran under load (4.0 on 2 cores)"),
    (dict(probed_at=0), "older than 30 days"),
    (dict(margin=None), "did not record its margin, load and time"),
])
def test_a_cached_choice_made_under_load_or_by_a_small_margin_is_probed_again(tmp_path, fake_probe, entry, why):
    """A quickstart's probe under load (bf16 325 vs fp32 520 stacks/s on a CPU where idle bf16 is 1.9x faster)
    was cached as fp32 forever."""
    import time as _time

    from trex_bench.rl import precision

    machine = precision._machine_key(torch.device("cpu"))
    stale = {"choice": "fp32", "stacks_per_s": {"fp32": 520.0, "bf16": 325.0}, "margin": 1.6, "load": 0.1,
             "cores": 2, "probed_at": _time.time() - 3600} | entry
    (tmp_path / "precision.json").write_text(json.dumps({machine: stale}))
    mode, record = resolve_precision("auto")
    assert len(fake_probe) == 1 and mode == "bf16" and why in record["reason"]
    line = precision.precision_line(mode, record)
    assert line.startswith("precision bf16: --precision auto, probed now (") and "2.00x" in line
    assert "load 0.5 on" in line and len(line.splitlines()) == 1


def test_a_robust_cached_choice_is_kept(tmp_path, fake_probe):
    import time as _time

    from trex_bench.rl import precision

    machine = precision._machine_key(torch.device("cpu"))
    good = {"choice": "fp32", "stacks_per_s": {"fp32": 1624.0, "bf16": 1100.0}, "margin": 1.48, "load": 0.3,
            "cores": 2, "probed_at": _time.time() - 86400}
    (tmp_path / "precision.json").write_text(json.dumps({machine: good}))
    mode, record = resolve_precision("auto")
    assert mode == "fp32" and not fake_probe
    assert precision.precision_line(mode, record) == (
        "precision fp32: --precision auto, the cached probe of this machine: bf16 1,100, fp32 1,624 stacks/s "
        "(1.48x), load 0.3 on 2 cores")


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
    lines = []
    out = train_ppo(PPOJob("breakout", TINY, seed=0, precision="fp32"), tmp_path / "agent", progress=False,
                    log=lines.append)
    card = read_json(out / "card.json")
    assert card["precision"] == "fp32" and card["precision_probe"] == {"asked": "fp32"}
    assert lines == ["precision fp32: asked for (--precision fp32)"]  # which precision, and why, in one line
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
