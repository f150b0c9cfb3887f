"""Minari export/import: a tiny demo set round-trips with its actions, rewards and frame hashes; a set whose replay
fails verification is refused."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

pytest.importorskip("minari", reason="the optional extra: pip install -e '.[minari]'")

from trex_bench.cli import main  # noqa: E402
from trex_bench.core.types import DemoSet  # noqa: E402
from trex_bench.demos.minari_io import export_minari, import_minari  # noqa: E402
from trex_bench.demos.store import load_demos, replay, save_demos  # noqa: E402


@pytest.fixture
def tiny(tmp_path, breakout_demos, monkeypatch):
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))
    ds = DemoSet(breakout_demos.game, breakout_demos.profile, breakout_demos.profile_settings,
                 breakout_demos.demonstrator, breakout_demos.episodes[:2], breakout_demos.versions)
    save_demos(ds, tmp_path / "demos")
    return tmp_path / "demos"


def test_round_trip_keeps_actions_rewards_and_frames(tiny, tmp_path):
    import minari

    path = export_minari(tiny, "trex/breakout/tiny-v0", n_envs=2)
    assert path.is_dir()
    data = minari.load_dataset("trex/breakout/tiny-v0")
    src = load_demos(tiny)
    ep0 = next(data.iterate_episodes([0]))
    assert ep0.observations.shape == (src.episodes[0].length + 1, 84, 84)
    assert np.array_equal(ep0.observations, replay(src.episodes[0], src.game))  # frames stored losslessly
    back = import_minari("trex/breakout/tiny-v0", tmp_path / "back")
    assert back.content_hash() == src.content_hash()
    for a, b in zip(load_demos(tmp_path / "back").episodes, src.episodes, strict=True):
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
        assert np.array_equal(a.frame_hashes, b.frame_hashes) and np.array_equal(a.hash_steps, b.hash_steps)
        assert (a.seed, a.reset_index, a.noise, a.checkpoint, a.truncated) == (
            b.seed, b.reset_index, b.noise, b.checkpoint, b.truncated)
    with pytest.raises(ValueError, match="exists already"):
        export_minari(tiny, "trex/breakout/tiny-v0")


def test_a_set_that_fails_replay_is_refused(tiny, tmp_path):
    import minari

    src = load_demos(tiny)
    ep = src.episodes[0]
    acts = ep.actions.copy()
    acts[: len(acts) // 2] = (acts[: len(acts) // 2] + 1) % 4  # other actions: other frames than the hashes say
    bad = dataclasses.replace(src, episodes=(dataclasses.replace(ep, actions=acts), *src.episodes[1:]))
    save_demos(bad, tmp_path / "bad")
    with pytest.raises(ValueError, match="fail replay verification.*refusing to export"):
        export_minari(tmp_path / "bad", "trex/breakout/bad-v0", n_envs=2)
    assert "trex/breakout/bad-v0" not in minari.list_local_datasets()


def test_cli_export_and_import(tiny, tmp_path, capsys):
    assert main(["demos", "export-minari", str(tiny), "--out", "trex/breakout/cli-v0"]) == 0
    assert main(["demos", "import-minari", "trex/breakout/cli-v0", "--out", str(tmp_path / "back")]) == 0
    assert load_demos(tmp_path / "back").content_hash() == load_demos(tiny).content_hash()
    assert main(["demos", "import-minari", "nope/none-v0", "--out", str(tmp_path / "x")]) == 2
    assert "no local Minari dataset" in capsys.readouterr().err
