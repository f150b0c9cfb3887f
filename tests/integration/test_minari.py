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


@pytest.mark.parametrize("bad_id", ["bad id", "noversion", "/abs/x-v0", "a/../b-v0", "../x-v0", "x-v0/../../y-v1"])
def test_a_bad_dataset_id_is_one_line_and_makes_nothing(tiny, tmp_path, capsys, bad_id):
    """Such an id used to print a traceback and leave `<datasets>/<id>/data/` (or folders outside the datasets
    folder), after which every export and import failed until the user deleted it."""
    before = sorted(p.name for p in tmp_path.iterdir())
    for argv in (["demos", "export-minari", str(tiny), "--out", bad_id],
                 ["demos", "import-minari", bad_id, "--out", str(tmp_path / "back")]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "is not a Minari dataset id" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    minari_root = tmp_path / "minari"
    assert not minari_root.exists() or not any(minari_root.rglob("data"))
    if bad_id == "bad id":  # a valid export still works afterwards (it did not, until the folder was deleted)
        assert main(["demos", "export-minari", str(tiny), "--out", "trex/breakout/fine-v0"]) == 0


def _edit_rewards(folder, value):
    import h5py

    with h5py.File(folder / "main_data.hdf5", "r+") as f:
        r = f["episode_0/rewards"][...]
        r[3] = value
        f["episode_0/rewards"][...] = r


def _edit_actions(folder, value):
    import h5py

    with h5py.File(folder / "main_data.hdf5", "r+") as f:
        a = f["episode_0/actions"][...]
        a[3] = value
        f["episode_0/actions"][...] = a


def _relabel_game(folder, game):
    import json

    meta = json.loads((folder / "metadata.json").read_text())
    inner = json.loads(meta["trex_bench"])
    meta["trex_bench"] = json.dumps(inner | {"game": game})
    (folder / "metadata.json").write_text(json.dumps(meta))


def _truncate(folder):
    path = folder / "main_data.hdf5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.parametrize("edit, words", [
    (lambda d: _edit_rewards(d, 1000.0), "do not replay to their record"),
    (lambda d: _edit_rewards(d, float("nan")), "not a finite number"),
    (lambda d: _edit_actions(d, 200), "plays action 200"),
    (lambda d: _relabel_game(d, "pong"), "do not replay to their record"),
    (_truncate, "cannot be read"),
], ids=["reward-1000", "reward-nan", "action-200", "game-relabelled", "truncated-hdf5"])
def test_an_edited_dataset_is_refused_and_nothing_is_written(tiny, tmp_path, capsys, edit, words):
    """Each of these imported with exit 0 (the NaN one wrote a manifest every later command refused); the truncated
    file was a traceback."""
    folder = export_minari(tiny, "trex/breakout/edited-v0", n_envs=2)
    edit(folder)
    assert main(["demos", "import-minari", "trex/breakout/edited-v0", "--out", str(tmp_path / "back"),
                 "--envs", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err, err
    assert not (tmp_path / "back").exists()


def test_import_into_an_existing_set_names_an_overwrite_that_exists(tiny, tmp_path, capsys):
    export_minari(tiny, "trex/breakout/again-v0", n_envs=2)
    src = load_demos(tiny)
    other = save_demos(dataclasses.replace(src, episodes=src.episodes[:1]), tmp_path / "other")
    assert main(["demos", "import-minari", "trex/breakout/again-v0", "--out", str(other), "--envs", "2"]) == 2
    assert "pass --overwrite" in capsys.readouterr().err
    assert main(["demos", "import-minari", "trex/breakout/again-v0", "--out", str(other), "--envs", "2",
                 "--overwrite"]) == 0
    assert load_demos(other).content_hash() == load_demos(tiny).content_hash()
