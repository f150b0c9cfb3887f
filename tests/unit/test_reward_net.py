"""Spec of the reward net: shapes, the score mask, the two widths, and the model folder round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trex_bench.core.games import get_game
from trex_bench.reward.net import RewardEnsemble, RewardNet, load_model, save_model


def _net(game: str = "breakout", arch: str = "trex", seed: int = 0) -> RewardNet:
    with torch.random.fork_rng():  # deterministic init without touching the global RNG of other tests
        torch.manual_seed(seed)
        return RewardNet(game, arch).eval()  # type: ignore[arg-type]


def _stacks(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 4, 84, 84), dtype=np.uint8)


def test_per_frame_shape_and_dtype() -> None:
    net = _net()
    r = net.per_frame(_stacks(5), batch_size=2)  # batches of 2 must concatenate to one row per stack
    assert r.shape == (5,) and r.dtype == torch.float32
    assert torch.allclose(r, net(torch.from_numpy(_stacks(5))), atol=1e-6)
    assert net.per_frame(np.zeros((0, 4, 84, 84), np.uint8)).shape == (0,)


@pytest.mark.parametrize("shape", [(3, 84, 84), (2, 3, 84, 84), (2, 4, 84, 80)])
def test_per_frame_rejects_wrong_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected stacks"):
        _net().per_frame(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("game", ["breakout", "seaquest", "hero"])  # top only, top + bottom, bottom only
def test_mask_hides_score_rows_only(game: str) -> None:
    g = get_game(game)
    net = _net(game)
    x = _stacks(3)
    base = net.per_frame(x)
    masked = x.copy()
    masked[:, :, list(g.mask_rows)] = 255 - masked[:, :, list(g.mask_rows)]
    assert torch.equal(net.per_frame(masked), base), "changing masked score/lives rows changed r(s)"
    free = x.copy()
    free[:, :, 40] = 255 - free[:, :, 40]  # row 40 is in the play field of every game
    assert not torch.allclose(net.per_frame(free), base), "changing an unmasked row left r(s) unchanged"


def test_input_is_scaled_by_255() -> None:
    """uint8 and float 0–255 inputs give the same r(s): the net owns the /255."""
    net, x = _net(), _stacks(2)
    assert torch.allclose(net.per_frame(x), net.per_frame(torch.from_numpy(x).float()), atol=1e-6)


def test_drex_width_and_unknown_arch() -> None:
    d, t = _net(arch="drex"), _net(arch="trex")
    assert d.conv1.weight.shape == (32, 4, 7, 7) and d.conv2.weight.shape == (16, 32, 5, 5)
    assert t.conv1.weight.shape == (16, 4, 7, 7) and t.conv2.weight.shape == (16, 16, 5, 5)
    assert d.per_frame(_stacks(2)).shape == (2,)
    assert list(d.state_dict()) == list(t.state_dict())  # same keys as the released .params
    with pytest.raises(ValueError, match="unknown reward-net architecture"):
        RewardNet("breakout", "wide")  # type: ignore[arg-type]


def test_ensemble_is_mean_of_members() -> None:
    a, b = _net(seed=1), _net(seed=2)
    ens = RewardEnsemble([a, b])
    x = _stacks(4)
    assert torch.allclose(ens.per_frame(x), (a.per_frame(x) + b.per_frame(x)) / 2, atol=1e-6)
    assert ens.per_frame_members(x).shape == (2, 4)
    with pytest.raises(ValueError, match="share game"):
        RewardEnsemble([a, _net("pong")])


def test_save_load_round_trip(tmp_path) -> None:
    net, x = _net(seed=3), _stacks(3)
    save_model(net, tmp_path / "m", {"profile": "paper", "note": "unit test"})
    loaded, card = load_model(tmp_path / "m", game="BreakoutNoFrameskip-v4", profile="paper")
    assert torch.equal(loaded.per_frame(x), net.per_frame(x))
    assert card["game"] == "breakout" and card["arch"] == "trex" and card["ensemble_size"] == 1
    assert card["note"] == "unit test" and card["mask_rows"] == [10, 0]
    assert not loaded.training


def test_load_model_refuses_wrong_game_profile_and_missing(tmp_path) -> None:
    save_model(_net(), tmp_path / "m", {"profile": "paper"})
    with pytest.raises(ValueError, match="reward model for breakout, not pong"):
        load_model(tmp_path / "m", game="pong")
    with pytest.raises(ValueError, match="env profile"):
        load_model(tmp_path / "m", profile="machado")
    with pytest.raises(ValueError, match="not a reward model"):
        load_model(tmp_path / "nothing")
