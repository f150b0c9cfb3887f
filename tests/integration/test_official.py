"""The authors' released nets: our RewardNet computes exactly their forward, bad files fail loudly, and the
released Breakout T-REX net orders scripted episodes by true return (a learning-signal check on real frames)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from trex_bench.core.games import get_game
from trex_bench.reward.net import load_model
from trex_bench.reward.official import SOURCES, import_official, load_official, official_path


def original_forward(sd: dict[str, torch.Tensor], obs_nhwc: np.ndarray, game: str) -> torch.Tensor:
    """The released nets' forward as the reference README describes it, written functionally from the state dict.

    NHWC uint8 → float /255 → the game's score/lives rows zeroed on all four frames → permute to NCHW →
    conv 7/3, 5/2, 3/1, 3/1 with leaky_relu → view(-1, 784) → fc1 + leaky_relu → fc2: one r(s) per stack.
    """
    g = get_game(game)
    x = torch.from_numpy(obs_nhwc).float() / 255.0
    x[:, list(g.mask_rows), :, :] = 0.0  # mask_score in the original code works on NHWC rows
    x = x.permute(0, 3, 1, 2)
    x = F.leaky_relu(F.conv2d(x, sd["conv1.weight"], sd["conv1.bias"], stride=3))
    x = F.leaky_relu(F.conv2d(x, sd["conv2.weight"], sd["conv2.bias"], stride=2))
    x = F.leaky_relu(F.conv2d(x, sd["conv3.weight"], sd["conv3.bias"], stride=1))
    x = F.leaky_relu(F.conv2d(x, sd["conv4.weight"], sd["conv4.bias"], stride=1))
    x = x.reshape(-1, 784)  # the original view(-1, 784); reshape because the permuted tensor is not contiguous
    x = F.leaky_relu(F.linear(x, sd["fc1.weight"], sd["fc1.bias"]))
    return F.linear(x, sd["fc2.weight"], sd["fc2.bias"]).squeeze(1)


# -- (a) equivalence with the original forward ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "game,which", [("breakout", "trex"), ("breakout", "mturk"), ("breakout", "drex"), ("seaquest", "drex"), ("enduro", "trex")]
)
def test_matches_original_forward(reference_dir: Path, game: str, which: str) -> None:
    sd = torch.load(official_path(game, which, reference_dir), map_location="cpu", weights_only=True)  # type: ignore[arg-type]
    obs = np.random.default_rng(0).integers(0, 256, size=(8, 84, 84, 4), dtype=np.uint8)
    want = original_forward(sd, obs, game)
    net = load_official(game, which, reference_dir)  # type: ignore[arg-type]
    got = net.per_frame(np.ascontiguousarray(obs.transpose(0, 3, 1, 2)))
    assert net.arch == ("drex" if which == "drex" else "trex")
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)
    assert want.std() > 0  # the check can fail: outputs differ between stacks


def test_import_official_card_and_weights(reference_dir: Path, tmp_path: Path) -> None:
    out = import_official("breakout", "drex", reference_dir, tmp_path / "drex-breakout")
    model, card = load_model(out, game="breakout", profile="paper")
    assert card["source_repo"] == "dsbrown1331/CoRL2019-DREX" and card["which"] == "drex" and card["profile"] == "paper"
    assert card["source_commit"] in (reference_dir / "README.md").read_text()  # the commit is the README's
    assert card["source_path"] == "drex-atari/learned_models/breakout_five_bins_noop_earlystop.params"
    x = np.random.default_rng(1).integers(0, 256, size=(4, 4, 84, 84), dtype=np.uint8)
    torch.testing.assert_close(model.per_frame(x), load_official("breakout", "drex", reference_dir).per_frame(x))
    for which in ("trex", "mturk"):
        assert SOURCES[which]["commit"] in (reference_dir / "README.md").read_text()


# -- (b) bad files ------------------------------------------------------------------------------------------------
def _fake_ref(tmp_path: Path, obj: object) -> Path:
    path = tmp_path / "trex" / "progress_masking" / "breakout_progress_masking.params"
    path.parent.mkdir(parents=True)
    torch.save(obj, path)
    return tmp_path


def _good_sd() -> dict[str, torch.Tensor]:
    from trex_bench.reward.net import RewardNet

    return {k: v.clone() for k, v in RewardNet("breakout").state_dict().items()}


def test_tensor_instead_of_state_dict(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"breakout_progress_masking\.params.*expected a state dict"):
        load_official("breakout", "trex", _fake_ref(tmp_path, torch.zeros(3)))


def test_list_instead_of_state_dict(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"breakout_progress_masking\.params.*expected a state dict"):
        load_official("breakout", "trex", _fake_ref(tmp_path, [torch.zeros(3)]))


def test_wrong_shape(tmp_path: Path) -> None:
    sd = _good_sd()
    sd["fc1.weight"] = torch.zeros(64, 783)
    with pytest.raises(ValueError, match=r"breakout_progress_masking\.params.*fc1\.weight: \(64, 783\)"):
        load_official("breakout", "trex", _fake_ref(tmp_path, sd))


def test_drex_weights_in_trex_slot(tmp_path: Path) -> None:
    from trex_bench.reward.net import RewardNet

    sd = dict(RewardNet("breakout", "drex").state_dict())
    with pytest.raises(ValueError, match=r"conv1\.weight: \(32, 4, 7, 7\)"):
        load_official("breakout", "trex", _fake_ref(tmp_path, sd))


def test_wrong_keys(tmp_path: Path) -> None:
    sd = _good_sd()
    sd["fc3.weight"] = sd.pop("fc2.weight")
    with pytest.raises(ValueError, match=r"missing \['fc2.weight'\], unexpected \['fc3.weight'\]"):
        load_official("breakout", "trex", _fake_ref(tmp_path, sd))


def test_not_a_torch_file(tmp_path: Path) -> None:
    path = tmp_path / "trex" / "mturk" / "pong_mturk.params"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"definitely not a zip")
    with pytest.raises(ValueError, match=r"pong_mturk\.params: not a loadable"):
        load_official("pong", "mturk", tmp_path)


def test_missing_file_and_unreleased_game(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"breakout_five_bins_noop_earlystop\.params.*not found"):
        load_official("breakout", "drex", tmp_path)
    with pytest.raises(ValueError, match="no drex reward net for hero"):
        load_official("hero", "drex", tmp_path)
    with pytest.raises(ValueError, match="no trex reward net for mspacman"):
        load_official("mspacman", "trex", tmp_path)
    with pytest.raises(ValueError, match="unknown released-net family"):
        load_official("breakout", "gail", tmp_path)  # type: ignore[arg-type]


def test_hero_drex_missing_in_reference(reference_dir: Path) -> None:
    assert load_official("hero", "trex", reference_dir).arch == "trex"
    with pytest.raises(ValueError, match="hero"):
        load_official("hero", "drex", reference_dir)


# -- (c) learning signal on real frames ---------------------------------------------------------------------------
NOISE_LEVELS = (0.0, 0.25, 0.5, 1.0)  # scripted-Breakout returns fall with ε: ≈13–23, …, ≈0–4


@pytest.fixture(scope="module")
def scripted_breakout(tmp_path_factory: pytest.TempPathFactory):
    """8 scripted Breakout episodes, 2 per noise level, capped at 1500 steps, saved and frame-cached once."""
    from trex_bench.core.types import DemoSet
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.policies import EpsilonGreedy, ScriptedBreakout
    from trex_bench.demos.store import save_demos

    episodes = []
    for k, eps in enumerate(NOISE_LEVELS):
        rng = np.random.default_rng(k)
        cfg = CollectConfig(2, seed=100 + k, noise=eps, max_steps=1500)
        ds = collect("breakout", EpsilonGreedy(ScriptedBreakout(), eps, 4, rng), cfg, progress=False)
        episodes += ds.episodes
    ds = DemoSet(ds.game, ds.profile, ds.profile_settings, "scripted:breakout-tracker, eps-greedy", tuple(episodes))
    root = tmp_path_factory.mktemp("scripted_breakout")
    save_demos(ds, root / "demos")
    cache_dir = root / "cache"
    return ds, root / "demos", cache_dir, FrameCache(ds, cache_dir)


def test_official_breakout_trex_tracks_true_return(reference_dir: Path, scripted_breakout) -> None:
    from trex_bench.reward.fidelity import fidelity_report

    ds, _, _, cache = scripted_breakout
    assert len(np.unique(ds.returns)) >= 4, f"scripted episodes should span returns, got {ds.returns}"
    report = fidelity_report(load_official("breakout", "trex", reference_dir), ds, cache, n_pairs=500)
    rho_mean = report["correlations"]["pred_mean"]["spearman"]
    rho_sum = report["correlations"]["pred_sum"]["spearman"]
    print(f"official breakout T-REX: Spearman mean/frame {rho_mean:.3f}, raw sum {rho_sum:.3f}, "
          f"length vs return {report['length_confound']['spearman_length_vs_return']:.3f}, "
          f"snippet accuracy {report['pairwise']['accuracy']:.3f}")
    assert rho_mean >= 0.8, report["episodes"]


def test_score_command_end_to_end(reference_dir: Path, scripted_breakout, tmp_path: Path) -> None:
    """Imported official net + saved demos → JSON and PNG at the default path; the cache is reused, no replay."""
    from trex_bench.core.io import read_json
    from trex_bench.reward.fidelity import score_command

    ds, demos_dir, cache_dir, _ = scripted_breakout
    model_dir = import_official("breakout", "trex", reference_dir, tmp_path / "trex-breakout")
    report = score_command(model_dir, demos_dir, cache_dir=cache_dir)
    out = model_dir / f"fidelity-{ds.content_hash()}.json"
    assert read_json(out)["correlations"] == report["correlations"]
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert report["model_card"]["source_commit"] == SOURCES["trex"]["commit"]
    pong = import_official("pong", "trex", reference_dir, tmp_path / "trex-pong")
    with pytest.raises(ValueError, match="reward model for pong.*breakout demos"):
        score_command(pong, demos_dir, cache_dir=cache_dir)
