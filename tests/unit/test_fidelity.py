"""Spec of the fidelity report on a hand-made case where every number can be worked out by hand.

Episode e is a run of frames of constant brightness b_e; the fake model's r(s) is (brightness − 30) / 10, so
per-frame rewards, their sums and their ranks are known without any env or trained net.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from trex_bench.core.envs import get_profile
from trex_bench.core.games import get_game
from trex_bench.core.types import DemoSet, Episode
from trex_bench.reward.fidelity import PREDICTIONS, fidelity_report, per_step_stats, scatter_plot, score_command

RETURNS = [1.0, 2.0, 3.0, 4.0, 5.0]
BRIGHT = [10, 20, 30, 50, 40]  # ranks 1 2 3 5 4 vs 1 2 3 4 5: Σd² = 2 → Spearman 1 − 6·2/(5·24) = 0.9
LENGTHS = [60, 50, 40, 30, 20]  # longer episodes return less: length vs return Spearman −1
NOISE = [1.0, 0.75, 0.5, 0.25, 0.0]


class BrightnessModel:
    """r(s) = (mean brightness of the newest frame − 30) / 10."""

    def __init__(self, game: str = "breakout") -> None:
        self.game = get_game(game)

    def per_frame(self, stacks: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        return (stacks[:, -1].float().mean(dim=(1, 2)) - 30.0) / 10.0


class FakeCache:
    """Frames of constant brightness per episode; records which steps were asked for."""

    def __init__(self, bright: list[int]) -> None:
        self.bright = np.array(bright, np.uint8)
        self.asked: list[tuple[np.ndarray, np.ndarray]] = []

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        self.asked.append((np.asarray(ep), np.asarray(t)))
        return np.broadcast_to(self.bright[ep][:, None, None, None], (len(ep), 4, 84, 84)).copy()


def _episode(ret: float, length: int, noise: float, seed: int) -> Episode:
    rewards = np.zeros(length, np.float32)
    rewards[-1] = ret
    return Episode(
        seed=seed,
        actions=np.zeros(length, np.uint8),
        rewards=rewards,
        hash_steps=np.array([0, length], np.int64),
        frame_hashes=np.array([seed, seed + 1], np.uint64),
        noise=noise,
    )


def _demos(returns: list[float] = RETURNS, lengths: list[int] = LENGTHS, game: str = "breakout") -> DemoSet:
    eps = tuple(_episode(r, n, z, i) for i, (r, n, z) in enumerate(zip(returns, lengths, NOISE, strict=True)))
    return DemoSet(game, "paper", get_profile("paper").settings(), "hand-made", eps)


def test_report_fields_and_values() -> None:
    cache = FakeCache(BRIGHT)
    rep = fidelity_report(BrightnessModel(), _demos(), cache, snippet_len=10, n_pairs=4000)
    assert rep["game"] == "breakout" and rep["n_episodes"] == 5 and rep["n_distinct_returns"] == 5
    r = (np.array(BRIGHT) - 30) / 10
    for e, want_r, n in zip(rep["episodes"], r, LENGTHS, strict=True):
        assert e["length"] == n and e["noise"] in NOISE and e["checkpoint"] == -1
        assert e["pred_mean"] == pytest.approx(want_r)
        assert e["pred_sum"] == pytest.approx(want_r * n)
        assert e["pred_sigmoid_sum"] == pytest.approx(n / (1 + np.exp(-want_r)))
    assert [e["true_return"] for e in rep["episodes"]] == RETURNS
    assert set(rep["correlations"]) == set(PREDICTIONS)
    assert rep["correlations"]["pred_mean"]["spearman"] == pytest.approx(0.9)
    assert rep["correlations"]["pred_mean"]["pearson"] == pytest.approx(np.corrcoef(r, RETURNS)[0, 1])
    assert rep["length_confound"]["spearman_length_vs_return"] == pytest.approx(-1.0)
    sums = r * np.array(LENGTHS)  # -1.2, -0.5, 0, 0.6, 0.2 → ranks 1 2 3 5 4
    assert rep["correlations"]["pred_sum"]["spearman"] == pytest.approx(0.9)
    assert rep["length_confound"]["spearman_sum_vs_length"] == pytest.approx(-0.9)
    assert np.argsort(sums).tolist() == [0, 1, 2, 4, 3]
    # Constant r per episode: a snippet pair is wrong only for episodes 3 and 4 (1 of 10 pairs) → accuracy ≈ 0.9.
    assert rep["pairwise"]["accuracy"] == pytest.approx(0.9, abs=0.03)
    assert rep["pairwise"]["min_len_used"] == 10


def test_scores_observations_one_to_T() -> None:
    cache = FakeCache(BRIGHT)
    fidelity_report(BrightnessModel(), _demos(), cache)
    for e, n in enumerate(LENGTHS):
        ts = np.concatenate([t for ep, t in cache.asked if ep[0] == e])
        assert ts.tolist() == list(range(1, n + 1))


def test_perfect_model_and_short_episodes() -> None:
    """Snippets shorter than snippet_len when an episode is short; a perfectly ordered model gets 1.0."""
    rep = fidelity_report(BrightnessModel(), _demos(), FakeCache([10, 20, 30, 40, 50]), snippet_len=50, n_pairs=300)
    assert rep["correlations"]["pred_mean"]["spearman"] == pytest.approx(1.0)
    assert rep["pairwise"]["accuracy"] == 1.0 and rep["pairwise"]["min_len_used"] == 20


def test_constant_prediction_gives_none_not_nan() -> None:
    rep = fidelity_report(BrightnessModel(), _demos(), FakeCache([30] * 5), n_pairs=50)
    assert rep["correlations"]["pred_mean"]["spearman"] is None
    assert rep["pairwise"]["accuracy"] == 0.5  # every snippet pair ties


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least 2 distinct true returns"):
        fidelity_report(BrightnessModel(), _demos(returns=[3.0] * 5), FakeCache(BRIGHT))
    with pytest.raises(ValueError, match="reward model is for pong, the demos are breakout"):
        fidelity_report(BrightnessModel("pong"), _demos(), FakeCache(BRIGHT))
    with pytest.raises(ValueError, match="snippet_len"):
        fidelity_report(BrightnessModel(), _demos(), FakeCache(BRIGHT), snippet_len=0)


class StepCache:
    """Brightness t at observation t: with ``BrightnessModel`` r(s_t) = (t − 30) / 10, rising 0.1 a step."""

    def stacks(self, ep: np.ndarray, t: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.asarray(t, np.uint8)[:, None, None, None], (len(t), 4, 84, 84)).copy()


def test_per_step_diagnostics() -> None:
    """A reward that rises with the score is a progress potential; a constant one is all survival bonus."""
    rep = fidelity_report(BrightnessModel(), _demos(), StepCache(), n_pairs=50)["per_step"]
    # true rewards: only the last step scores, so "score so far" is 0 … 0, R; r rises every step
    assert rep["delta_at_scoring_steps"] == pytest.approx(0.1) and rep["delta_elsewhere"] == pytest.approx(0.1)
    assert rep["delta_std"] == pytest.approx(0.0, abs=1e-6)
    assert 0 < rep["spearman_vs_score_so_far"] < 1
    r = np.concatenate([(np.arange(1, n + 1) - 30) / 10 for n in LENGTHS])
    sig = 1 / (1 + np.exp(-r))
    assert rep["sigmoid_constant_share"] == pytest.approx(sig.mean() ** 2 / np.mean(sig**2))

    flat = fidelity_report(BrightnessModel(), _demos(), FakeCache([30] * 5), n_pairs=50)["per_step"]
    assert flat["sigmoid_constant_share"] == pytest.approx(1.0) and flat["spearman_vs_score_so_far"] is None
    assert flat["delta_at_scoring_steps"] == 0.0 and flat["delta_std"] == 0.0

    every_step = [np.full(n, 1.0) for n in LENGTHS]  # scoring every step: the score so far is t, as r is
    rs = [(np.arange(1, n + 1) - 30) / 10 for n in LENGTHS]
    assert per_step_stats(rs, every_step)["spearman_vs_score_so_far"] == pytest.approx(1.0)


def test_scatter_plot_png(tmp_path: Path) -> None:
    rep = fidelity_report(BrightnessModel(), _demos(), FakeCache(BRIGHT), n_pairs=50)
    out = scatter_plot(rep, tmp_path / "sub" / "scatter.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in out.parent.iterdir()] == ["scatter.png"]  # no temp file left behind


def _saved(tmp_path: Path, ds: DemoSet, bright: list[int]) -> tuple[Path, Path]:
    """Save ``ds`` and pre-fill the frame cache with constant-brightness frames, so no env replay is needed."""
    from trex_bench.demos.store import save_demos

    demos_dir = save_demos(ds, tmp_path / "demos")
    cache_dir = tmp_path / "cache"
    folder = cache_dir / "frames" / f"{ds.game}-{ds.content_hash()}"
    folder.mkdir(parents=True)
    for i, (ep, b) in enumerate(zip(ds.episodes, bright, strict=True)):
        np.save(folder / f"ep_{i:04d}.npy", np.full((ep.length + 1, 84, 84), b, np.uint8))
    return demos_dir, cache_dir


def test_score_command_writes_json_and_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from trex_bench.core.io import read_json
    from trex_bench.reward.net import RewardNet, save_model

    ds = _demos()
    demos_dir, cache_dir = _saved(tmp_path, ds, BRIGHT)
    model_dir = save_model(RewardNet("breakout"), tmp_path / "model", {"profile": "paper"})
    rep = score_command(model_dir, demos_dir, cache_dir=cache_dir)
    out = model_dir / f"fidelity-{ds.content_hash()}.json"
    assert read_json(out)["episodes"] == rep["episodes"] and rep["demos_hash"] == ds.content_hash()
    assert rep["plot"] == out.with_suffix(".png").name and (out.parent / rep["plot"]).read_bytes()[:4] == b"\x89PNG"
    from trex_bench.cli import main

    assert main(["reward", "score", "--model", str(model_dir), "--demos", str(demos_dir), "--cache", str(cache_dir)]) == 0
    assert f"wrote fidelity report to {out} and its scatter plot to {out.with_suffix('.png')}" in capsys.readouterr().out
    custom = score_command(model_dir, demos_dir, tmp_path / "r" / "f.json", cache_dir)
    assert (tmp_path / "r" / "f.json").exists() and (tmp_path / "r" / "f.png").exists()
    assert custom["correlations"] == rep["correlations"]


def test_score_command_refuses_other_game(tmp_path: Path) -> None:
    from trex_bench.reward.net import RewardNet, save_model

    demos_dir, cache_dir = _saved(tmp_path, _demos(), BRIGHT)
    model_dir = save_model(RewardNet("pong"), tmp_path / "pong-model", {"profile": "paper"})
    with pytest.raises(ValueError, match="reward model for pong, but .* holds breakout demos"):
        score_command(model_dir, demos_dir, cache_dir=cache_dir)


def test_the_constant_share_is_of_what_ppo_is_paid():
    """σ(r) for T-REX and D-REX; r itself for the preference loop, whose normalised r̂ has no constant to share."""
    r = [np.array([-1.0, 1.0, -1.0, 1.0])]
    true = [np.zeros(4)]
    assert per_step_stats(r, true, paid_sigmoid=False)["sigmoid_constant_share"] == pytest.approx(0.0)
    sig = 1 / (1 + np.exp(-r[0]))
    assert per_step_stats(r, true)["sigmoid_constant_share"] == pytest.approx(sig.mean() ** 2 / np.mean(sig**2))
    assert per_step_stats([np.zeros(4)], true, paid_sigmoid=False)["sigmoid_constant_share"] is None
