"""Trainer: the loss is T-REX eq. 1, dedup scoring is exact, it learns a known reward, is deterministic, stops on NaN."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from trex_bench.core.types import DemoSet, Episode, Ranking, SnippetPairs
from trex_bench.experiment.budgets import reward_config
from trex_bench.reward import bradley_terry as bt
from trex_bench.reward import train as tr
from trex_bench.reward.build import train_command
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.snippets import sample_snippet_pairs


class FakeFrames:
    """Synthetic frame source: episode e shows a patch (unmasked rows) of brightness ∝ its quality q_e.

    The true per-frame reward is the patch brightness, so the true return orders episodes like q.
    """

    def __init__(self, quality: np.ndarray, length: int = 40, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.lengths = np.full(len(quality), length, dtype=np.int64)
        self.offsets = np.arange(len(quality), dtype=np.int64) * (length + 1)
        frames = rng.integers(0, 60, size=(len(quality) * (length + 1), 84, 84), dtype=np.uint8)
        level = np.repeat(quality, length + 1) * 180 + rng.uniform(-15, 15, size=len(frames))
        frames[:, 30:50, 30:50] = np.clip(level, 0, 255).astype(np.uint8)[:, None, None]
        self.frames = frames

    def stack_index(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        k = np.asarray(t)[:, None] + np.arange(-3, 1)[None, :]
        return np.where(k >= 0, self.offsets[np.asarray(ep)][:, None] + k, -1)

    def stacks(self, ep: int) -> torch.Tensor:
        t = np.arange(self.lengths[ep] + 1)
        return torch.from_numpy(bt.gather_stacks(self, self.stack_index(np.full(len(t), ep), t)))


FAST = TrainConfig(n_pairs=600, min_len=4, max_len=9, stride=1, lr=1e-3, batch_pairs=8, passes=1.0,
                      max_steps=60, eval_every=10, patience=0, val_frac=0.15)


def test_loss_equals_hand_computation():
    ra, rb, label = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 0.0]), torch.tensor([1, 0])
    # pair 1 prefers b: -log(e^3 / (e^1 + e^3)); pair 2 prefers a: -log(e^2 / (e^2 + e^0)); both = log(1 + e^-2)
    hand = (-math.log(math.exp(3) / (math.exp(1) + math.exp(3))) - math.log(math.exp(2) / (math.exp(2) + 1))) / 2
    assert bt.bradley_terry_loss(ra, rb, label).item() == pytest.approx(hand, rel=1e-6)
    assert hand == pytest.approx(math.log1p(math.exp(-2)))


def test_dedup_scoring_equals_one_forward_per_snippet():
    src = FakeFrames(np.linspace(0, 1, 4), length=30)
    rank = Ranking(4, np.array([[0, 1], [1, 2], [2, 3], [0, 3]]), "return")
    pairs = sample_snippet_pairs(rank, src.lengths, 12, 5, 15, 2, np.random.default_rng(0))
    net = bt.init_net("breakout", "trex", torch.Generator().manual_seed(0))
    ra, rb, n_unique = bt.snippet_returns(net, src, pairs, torch.device("cpu"))
    n_total = 2 * int(pairs.length.sum())
    assert n_unique < n_total  # overlapping snippets share stacks
    for k in range(len(pairs)):
        for ep, start, got in ((pairs.ep_a[k], pairs.start_a[k], ra[k]), (pairs.ep_b[k], pairs.start_b[k], rb[k])):
            t = start + pairs.stride * np.arange(pairs.length[k])
            stacks = torch.from_numpy(bt.gather_stacks(src, src.stack_index(np.full(len(t), ep), t)))
            assert got.item() == pytest.approx(net(stacks).sum().item(), rel=1e-4, abs=1e-4)


def test_a_snippet_at_an_episode_start_sees_zero_filled_stacks():
    # Found by `make test-mutation` (E08): the trainer must build its stacks as the env's frame stack does at reset,
    # with zeros before an episode's first observation, not rows of whatever episode lies before it in the cache.
    src = FakeFrames(np.linspace(0.2, 1, 3), length=20)
    pairs = SnippetPairs(np.array([1, 2]), np.array([0, 1]), np.array([2, 1]), np.array([2, 0]), np.array([3, 3]), 1,
                         np.array([1, 0]))
    net = bt.init_net("breakout", "trex", torch.Generator().manual_seed(0))

    def by_hand(ep: int, start: int) -> float:
        total = 0.0
        for t in range(start, start + 3):
            stack = np.zeros((1, 4, 84, 84), np.uint8)
            for slot, k in enumerate(range(t - 3, t + 1)):
                if k >= 0:
                    stack[0, slot] = src.frames[src.offsets[ep] + k]
            total += net(torch.from_numpy(stack)).item()
        return total

    with torch.no_grad():
        ra, rb, _ = bt.snippet_returns(net, src, pairs, torch.device("cpu"))
        for k in range(len(pairs)):
            assert ra[k].item() == pytest.approx(by_hand(pairs.ep_a[k], pairs.start_a[k]), rel=1e-4, abs=1e-4)
            assert rb[k].item() == pytest.approx(by_hand(pairs.ep_b[k], pairs.start_b[k]), rel=1e-4, abs=1e-4)


def test_learning_signal_on_held_out_episodes():
    """Train on 8 ranked episodes for a few seconds; mean per-frame reward orders 5 unseen ones (Spearman ≥ 0.9)."""
    q_train = np.array([0.0, 0.15, 0.3, 0.45, 0.6, 0.75, 0.9, 1.0])
    q_test = np.array([0.05, 0.25, 0.5, 0.7, 0.95])
    src = FakeFrames(np.concatenate([q_train, q_test]))
    i, j = np.nonzero(q_train[:, None] < q_train[None, :])
    rank = Ranking(len(q_train) + len(q_test), np.stack([i, j], 1), "return")
    net, metrics = tr.train_reward(src, rank, FAST, "breakout", np.random.default_rng(0))
    assert metrics["val_accuracy"] >= 0.9
    means = [float(net.per_frame(src.stacks(e)).mean()) for e in range(len(q_train), len(q_train) + len(q_test))]
    assert spearmanr(means, q_test).statistic >= 0.9


def test_same_seed_same_weights_and_log(tmp_path):
    src = FakeFrames(np.linspace(0, 1, 5), length=25)
    rank = Ranking(5, np.array([(i, j) for i in range(5) for j in range(5) if i < j]), "return")
    cfg = replace(FAST, n_pairs=120, max_steps=6, eval_every=3, ensemble=2)
    a, ma = tr.train_reward(src, rank, cfg, "breakout", np.random.default_rng(3), log_dir=tmp_path, tensorboard=True)
    b, _ = tr.train_reward(src, rank, cfg, "breakout", np.random.default_rng(3))
    c, _ = tr.train_reward(src, rank, cfg, "breakout", np.random.default_rng(4))
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert len(a.members) == 2 and not torch.equal(sa["members.0.conv1.weight"], sa["members.1.conv1.weight"])
    assert (tmp_path / "train_log.json").exists() and len(ma["members"][0]["log"]) >= 2


def test_nan_loss_stops_naming_the_step_and_keeps_good_weights(monkeypatch):
    src = FakeFrames(np.linspace(0, 1, 5), length=25)
    rank = Ranking(5, np.array([(i, j) for i in range(5) for j in range(5) if i < j]), "return")
    real, calls = tr.bradley_terry_loss, {"n": 0}

    def flaky(ra, rb, label):
        loss = real(ra, rb, label)
        if ra.requires_grad:
            calls["n"] += 1
            if calls["n"] == 4:
                return loss * float("nan")
        return loss

    monkeypatch.setattr(tr, "bradley_terry_loss", flaky)
    with pytest.warns(RuntimeWarning, match="step 4"):  # a warning, not a print: the CLI shows it
        net, m = tr.train_reward(src, rank, replace(FAST, max_steps=20, eval_every=100), "breakout",
                                 np.random.default_rng(0))
    assert "step 4" in m["members"][0]["stopped"] and m["members"][0]["steps"] == 3
    assert all(torch.isfinite(p).all() for p in net.parameters())


def test_demo_set_of_another_game_is_refused(monkeypatch, tmp_path):
    ep = Episode(0, np.zeros(5, np.uint8), np.zeros(5, np.float32), np.array([0]), np.array([0], np.uint64))
    monkeypatch.setattr("trex_bench.demos.store.load_demos", lambda *a, **k: DemoSet("breakout", "paper", {}, "t", (ep, ep)))
    with pytest.raises(ValueError, match="holds breakout demos, not pong"):
        train_command("pong", tmp_path / "demos", tmp_path / "out", config=reward_config("smoke"), budget="smoke")
    assert not (tmp_path / "out").exists()


def test_budgets_cite_the_papers():
    paper = reward_config("paper")
    assert (paper.n_pairs, paper.min_len, paper.max_len, paper.stride, paper.lr, paper.batch_pairs, paper.passes) == (6000, 50, 100, 2, 5e-5, 1, 5.0)
    drex = reward_config("paper", "drex")
    assert (drex.n_pairs, drex.lr, drex.method) == (40000, 1e-5, "drex")
    with pytest.raises(ValueError, match="unknown budget"):
        reward_config("huge")


def test_cli_train_smoke_writes_a_loadable_model(tmp_path, breakout_demos, capsys):
    """End to end through the CLI on 4 short Breakout episodes: a model folder with card, refusals exit 2."""
    from trex_bench.cli import main
    from trex_bench.demos.store import save_demos
    from trex_bench.reward.net import load_model

    demos = save_demos(breakout_demos, tmp_path / "demos")
    out = tmp_path / "model"
    rc = main(["reward", "train", "breakout", "--demos", str(demos), "--method", "trex", "--budget", "smoke",
               "--seed", "0", "--out", str(out), "--cache", str(tmp_path / "cache"), "--no-progress"])
    assert rc == 0 and f"wrote reward model to {out}" in capsys.readouterr().out
    model, card = load_model(out, game="breakout")
    assert card["ranking"]["source"] == "return" and card["demos"]["content_hash"] == breakout_demos.content_hash()
    assert card["config"]["n_pairs"] == 200 and "val_accuracy" in card["metrics"]
    assert main(["reward", "train", "pong", "--demos", str(demos), "--method", "trex", "--budget", "smoke",
                 "--seed", "0", "--out", str(tmp_path / "m2")]) == 2
    assert "holds breakout demos, not pong" in capsys.readouterr().err
    assert not (tmp_path / "m2").exists()


@pytest.mark.parametrize("select", ["val_accuracy", "val_loss", "last"])
def test_the_kept_weights_follow_the_selection_rule(select):
    """``last`` keeps the final step's weights; ``val_loss``/``val_accuracy`` the check with the best of that figure."""
    src = FakeFrames(np.linspace(0, 1, 6), length=25)
    rank = Ranking(6, np.array([(i, j) for i in range(6) for j in range(6) if i < j]), "return")
    cfg = replace(FAST, n_pairs=200, max_steps=12, eval_every=3, patience=0, select=select)
    _, m = tr.train_reward(src, rank, cfg, "breakout", np.random.default_rng(0))
    run = m["members"][0]
    log = run["log"]
    if select == "last":
        assert run["best_step"] == run["steps"] == 12
    elif select == "val_loss":
        assert run["best_step"] == min(log, key=lambda e: e["val_loss"])["step"]
    else:
        best = max(e["val_accuracy"] for e in log)
        assert run["best_step"] == min((e["val_loss"], e["step"]) for e in log if e["val_accuracy"] == best)[1]
    with pytest.raises(ValueError, match="select"):
        replace(FAST, select="best")


@pytest.mark.parametrize("passes", [1.0, 2.5, 3.0])
def test_every_step_of_every_pass_has_pairs(passes):
    """Passes over N pairs in batches of B take ceil(passes·N/B) steps, none of them empty (an empty last batch gave a
    NaN loss and stopped `quick` runs at their last steps)."""
    src = FakeFrames(np.linspace(0, 1, 6), length=25)
    rank = Ranking(6, np.array([(i, j) for i in range(6) for j in range(6) if i < j]), "return")
    cfg = replace(FAST, n_pairs=150, batch_pairs=32, passes=passes, eval_every=1000, patience=0, val_frac=0.2)
    _, m = tr.train_reward(src, rank, cfg, "breakout", np.random.default_rng(1))
    run = m["members"][0]
    assert run["stopped"] == "completed", run["stopped"]
    assert run["steps"] == math.ceil(passes * m["n_train_pairs"] / 32)
