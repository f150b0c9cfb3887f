"""Bad demo sets and bad output folders (issue 16: D2, D3, D7, D11, D16): refused at load or before writing,
in one line naming the user's file; files keep the modes a user expects."""

from __future__ import annotations

import json
import os
import stat

import numpy as np
import pytest

from trex_bench.cli import main
from trex_bench.demos.store import DemoError, load_demos, save_demos


@pytest.fixture
def demo_dir(tmp_path, breakout_demos):
    return save_demos(breakout_demos, tmp_path / "set")


def _edit_npz(path, **changes):
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    for k, fn in changes.items():
        arrays[k] = fn(arrays[k])
    with open(path, "wb") as f:
        np.savez_compressed(f, **arrays)


def _edit_manifest(folder, fn):
    m = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps(fn(m)))


def _one_line_error(capsys, argv):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_reward_is_refused_naming_file_and_step(demo_dir, capsys, bad):
    def poison(r):
        r = r.copy()
        r[5] = bad
        return r

    _edit_npz(demo_dir / "ep_0001.npz", rewards=poison)
    with pytest.raises(DemoError, match=r"ep_0001\.npz: non-finite reward .* at step 5"):
        load_demos(demo_dir)
    assert "ep_0001.npz" in _one_line_error(capsys, ["demos", "verify", str(demo_dir)])


def test_non_finite_manifest_return_is_refused(demo_dir):
    _edit_manifest(demo_dir, lambda m: {**m, "episodes": [{**m["episodes"][0], "return": float("nan")}, *m["episodes"][1:]]})
    with pytest.raises(DemoError, match="non-finite return"):
        load_demos(demo_dir)


@pytest.mark.parametrize("name", ["../other/ep_0000.npz", "ABS", "sub/../ep_0000.npz"])
def test_manifest_file_outside_the_set_is_refused(demo_dir, tmp_path, name):
    other = tmp_path / "other"
    other.mkdir()
    (other / "ep_0000.npz").write_bytes((demo_dir / "ep_0000.npz").read_bytes())  # a valid episode, elsewhere
    name = str(other / "ep_0000.npz") if name == "ABS" else name
    _edit_manifest(demo_dir, lambda m: {**m, "episodes": [{**m["episodes"][0], "file": name}, *m["episodes"][1:]]})
    with pytest.raises(DemoError, match="not a file inside the demo set"):
        load_demos(demo_dir)


@pytest.mark.parametrize("break_it", [
    lambda d: (d / "manifest.json").write_text("[1, 2]"),
    lambda d: _edit_manifest(d, lambda m: {k: v for k, v in m.items() if k != "profile"}),
    lambda d: _edit_manifest(d, lambda m: {**m, "episodes": {"0": 1}}),
    lambda d: _edit_manifest(d, lambda m: {**m, "episodes": [{k: v for k, v in m["episodes"][0].items() if k != "file"}]}),
    lambda d: _edit_manifest(d, lambda m: {**m, "episodes": ["ep_0000.npz"]}),
    lambda d: (d / "manifest.json").write_bytes(b'{"game": "\xff\xfe"}'),
    lambda d: ((d / "manifest.json").unlink(), (d / "manifest.json").mkdir()),
], ids=["list", "no-profile", "episodes-dict", "entry-without-file", "entry-a-string",
        "not-utf8", "a-directory"])
def test_malformed_manifest_is_one_clear_line(demo_dir, capsys, break_it):
    break_it(demo_dir)
    with pytest.raises(DemoError, match="manifest.json"):
        load_demos(demo_dir)
    assert "manifest.json" in _one_line_error(capsys, ["demos", "info", str(demo_dir)])


def test_versions_that_are_not_a_mapping_only_warn(demo_dir):
    _edit_manifest(demo_dir, lambda m: {**m, "versions": "1.0"})
    with pytest.warns(UserWarning, match="recorded with ale-py None"):
        assert len(load_demos(demo_dir).episodes) == 4


def test_overwrite_replaces_only_a_demo_set(tmp_path, breakout_demos, capsys):
    thesis = tmp_path / "X"
    thesis.mkdir()
    (thesis / "thesis.txt").write_text("hi")
    with pytest.raises(DemoError, match="not a demo set"):
        save_demos(breakout_demos, thesis, overwrite=True)
    err = _one_line_error(capsys, ["demos", "collect", "breakout", "--demonstrator", "random", "--episodes", "1",
                                   "--seed", "0", "--max-steps", "5", "--envs", "1", "--no-progress",
                                   "--out", str(thesis), "--overwrite"])
    assert "not a demo set" in err and (thesis / "thesis.txt").read_text() == "hi"
    # a demo set next to a stranger's file is not a demo set either
    mixed = save_demos(breakout_demos, tmp_path / "mixed")
    (mixed / "notes.txt").write_text("mine")
    with pytest.raises(DemoError, match="not a demo set"):
        save_demos(_other_set(breakout_demos), mixed, overwrite=True)
    assert (mixed / "notes.txt").exists()
    # a real demo set is still replaced
    real = save_demos(breakout_demos, tmp_path / "real")
    save_demos(_other_set(breakout_demos), real, overwrite=True)
    assert len(load_demos(real).episodes) == 2


def _other_set(ds):
    from dataclasses import replace

    return replace(ds, episodes=ds.episodes[:2])


def test_out_that_is_a_file_is_refused(tmp_path, breakout_demos, capsys):
    f = tmp_path / "afile"
    f.write_text("x")
    with pytest.raises(DemoError, match="is a file"):
        save_demos(breakout_demos, f)
    assert "is a file" in _one_line_error(capsys, ["demos", "collect", "breakout", "--demonstrator", "random",
                                                   "--episodes", "1", "--seed", "0", "--out", str(f)])
    assert f.read_text() == "x"


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(p):
    return stat.S_IMODE(p.stat().st_mode)


def test_leaderboard_and_demo_sets_get_the_umask_mode_and_keep_theirs(tmp_path, breakout_demos, umask_022):
    from trex_bench.core.io import stable_hash
    from trex_bench.evaluation.leaderboard import append_row

    row = dict(game="breakout", method="trex", seed=0, mean=1.0, std=0.0, min=1.0, max=1.0, n_episodes=1,
               best_demo=2.0, avg_demo=1.0, beats_best_demo=False, env_profile="paper", budget="smoke",
               config_hash=stable_hash({"a": 1}))
    lb = tmp_path / "leaderboard.csv"
    append_row(lb, row)
    assert _mode(lb) == 0o644
    lb.chmod(0o664)
    append_row(lb, {**row, "seed": 1})
    assert _mode(lb) == 0o664
    ds = save_demos(breakout_demos, tmp_path / "set")
    assert _mode(ds) == 0o755 and {_mode(p) for p in ds.iterdir()} == {0o644}


def test_action_outside_the_games_action_set_is_refused_not_replayed_forever(demo_dir, capsys):
    """ale-py's vector env waits forever on an action index it does not have: replay refuses it first."""
    from trex_bench.demos.replay import verify_demos

    def poison(a):
        a = a.copy()
        a[3] = 200
        return a

    _edit_npz(demo_dir / "ep_0001.npz", actions=poison)
    with pytest.raises(ValueError, match="plays action 200 at step 3, but breakout has 4 actions"):
        verify_demos(load_demos(demo_dir), n_envs=2)
    assert "plays action 200" in _one_line_error(capsys, ["demos", "verify", str(demo_dir)])


@pytest.mark.parametrize("seed", [-1, 2**31, 2**62])
def test_seed_outside_the_recorded_range_is_refused(demo_dir, seed):
    """Episodes are recorded with seeds in 0..2**31-1; ale-py's reset takes int32 only (a TypeError traceback)."""
    _edit_npz(demo_dir / "ep_0002.npz", seed=lambda s: np.int64(seed))
    with pytest.raises(DemoError, match=rf"ep_0002\.npz: seed {seed} is outside 0\.\.2\*\*31-1"):
        load_demos(demo_dir)
