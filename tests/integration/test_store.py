"""Demo format: save/load round trip, replay determinism, verify catching tampering, frame cache, bad input."""

import json
import zipfile

import numpy as np
import pytest

from trex_bench.demos.frames import FrameCache
from trex_bench.demos.replay import frame_hash, replay, replay_many, verify_demos
from trex_bench.demos.store import DemoError, load_demos, save_demos


def test_round_trip(tmp_path, breakout_demos):
    out = save_demos(breakout_demos, tmp_path / "d")
    ds = load_demos(out)
    assert ds.game == "breakout" and ds.profile == "paper" and len(ds.episodes) == 4
    assert ds.content_hash() == breakout_demos.content_hash()
    for a, b in zip(ds.episodes, breakout_demos.episodes):
        assert np.array_equal(a.actions, b.actions) and np.array_equal(a.rewards, b.rewards)
        assert a.seed == b.seed and a.noise == b.noise and a.ret == b.ret
    m = json.loads((out / "manifest.json").read_text())
    assert m["profile_settings"]["noop_max"] == 30 and "ale-py" in m["versions"]
    with zipfile.ZipFile(out / "ep_0000.npz") as z:
        assert all(name.endswith(".npy") for name in z.namelist())


def test_replay_is_deterministic_and_matches_hashes(breakout_demos):
    ep = breakout_demos.episodes[0]
    f1, f2 = replay(ep, "breakout"), replay(ep, "breakout")
    assert f1.shape == (ep.length + 1, 84, 84) and f1.dtype == np.uint8
    assert np.array_equal(f1, f2)
    got = np.array([frame_hash(f1[s]) for s in ep.hash_steps], dtype=np.uint64)
    assert np.array_equal(got, ep.frame_hashes)


def test_replay_many_matches_single_replay(breakout_demos):
    many = replay_many(breakout_demos.episodes, "breakout", n_envs=3)
    for ep, (frames, rewards) in zip(breakout_demos.episodes, many):
        assert np.array_equal(frames, replay(ep, "breakout"))
        assert rewards.sum() == pytest.approx(ep.ret)


def test_verify_ok(breakout_demos):
    assert all(r.ok for r in verify_demos(breakout_demos))


def test_verify_catches_tampered_actions(tmp_path, breakout_demos):
    out = save_demos(breakout_demos, tmp_path / "d")
    path = out / "ep_0001.npz"
    with np.load(path) as z:
        data = dict(z)
    data["actions"] = data["actions"].copy()
    data["actions"][len(data["actions"]) // 3 :] = 0  # stop moving the paddle a third of the way in
    np.savez_compressed(path, **data)
    results = verify_demos(load_demos(out))
    assert results[0].ok and not results[1].ok
    assert "mismatch" in results[1].message


def test_verify_catches_a_recorded_return_the_replay_does_not_reach(breakout_demos):
    # Found by `make test-mutation` (E17): every frame replays to its hash, but the recorded rewards (and so the
    # return, and a manifest written from them) say one point more than the game paid.
    import dataclasses

    ep = breakout_demos.episodes[1]
    rewards = ep.rewards.copy()
    rewards[-1] += np.float32(1.0)
    tampered = dataclasses.replace(ep, rewards=rewards)
    results = verify_demos(dataclasses.replace(breakout_demos, episodes=(breakout_demos.episodes[0], tampered)))
    assert results[0].ok and not results[1].ok
    assert results[1].message.startswith("return mismatch")


def test_verify_catches_tampered_rewards_via_manifest(tmp_path, breakout_demos):
    out = save_demos(breakout_demos, tmp_path / "d")
    with np.load(out / "ep_0002.npz") as z:
        data = dict(z)
    data["rewards"] = data["rewards"] + np.float32(1.0)
    np.savez_compressed(out / "ep_0002.npz", **data)
    with pytest.raises(DemoError, match="ep_0002.npz: return/length disagree"):
        load_demos(out)


def test_missing_truncated_and_corrupt_files(tmp_path, breakout_demos):
    out = save_demos(breakout_demos, tmp_path / "d")
    raw = (out / "ep_0003.npz").read_bytes()
    (out / "ep_0003.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DemoError, match="ep_0003.npz: corrupt or truncated"):
        load_demos(out)
    (out / "ep_0003.npz").unlink()
    with pytest.raises(DemoError, match="ep_0003.npz: episode file is missing"):
        load_demos(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DemoError, match="not valid JSON"):
        load_demos(out)
    with pytest.raises(DemoError, match="no manifest.json"):
        load_demos(tmp_path / "nowhere")


def test_other_game_profile_or_version(tmp_path, breakout_demos):
    out = save_demos(breakout_demos, tmp_path / "d")
    with pytest.raises(DemoError, match="holds breakout demos, not pong"):
        load_demos(out, game="pong")
    with pytest.raises(DemoError, match="profile 'paper', not 'machado'"):
        load_demos(out, profile="machado")
    m = json.loads((out / "manifest.json").read_text())
    m["versions"]["ale-py"] = "0.8.1"
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.warns(UserWarning, match="ale-py 0.8.1"):
        load_demos(out)
    with pytest.raises(DemoError, match="ale-py 0.8.1"):
        load_demos(out, strict_versions=True)
    m["profile_settings"]["noop_max"] = 0
    (out / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(DemoError, match="differ from this trex_bench"):
        load_demos(out)


def test_refuse_overwriting_a_different_set(tmp_path, breakout_demos):
    from dataclasses import replace

    out = save_demos(breakout_demos, tmp_path / "d")
    before = (out / "manifest.json").read_bytes()
    save_demos(breakout_demos, out)  # the very same set: a no-op
    other = replace(breakout_demos, episodes=breakout_demos.episodes[:2])
    with pytest.raises(DemoError, match="--overwrite"):
        save_demos(other, out)
    assert (out / "manifest.json").read_bytes() == before
    save_demos(other, out, overwrite=True)
    assert len(load_demos(out).episodes) == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")], "temp folders left behind"


def test_frame_cache_keeps_no_frames_that_differ_from_the_record(tmp_path, breakout_demos):
    """A set whose replay differs from its recorded frames (another ale-py: only a warning when loaded) had its
    replayed frames cached, and trained and scored on from then on."""
    import dataclasses

    eps = list(breakout_demos.episodes)
    eps[1] = dataclasses.replace(eps[1], frame_hashes=eps[1].frame_hashes ^ np.uint64(1))
    drifted = dataclasses.replace(breakout_demos, episodes=tuple(eps))
    with pytest.raises(DemoError, match="episode 1 of the breakout demo set does not replay to its recorded frames"):
        FrameCache(drifted, cache_dir=tmp_path)
    assert not list((tmp_path / "frames").rglob("ep_0001.npy"))


def test_frame_cache_builds_stacks_from_indices(tmp_path, breakout_demos):
    cache = FrameCache(breakout_demos, cache_dir=tmp_path)
    ep = breakout_demos.episodes[2]
    frames = replay(ep, "breakout")
    assert np.array_equal(cache.episode_frames(2), frames)
    t = np.array([0, 1, 2, 3, 10, ep.length])
    stacks = cache.stacks(np.full(len(t), 2), t)
    assert stacks.shape == (len(t), 4, 84, 84)
    assert not stacks[0, :3].any() and np.array_equal(stacks[0, 3], frames[0])
    assert not stacks[1, :2].any() and np.array_equal(stacks[1, 2:], frames[:2])
    assert np.array_equal(stacks[4], frames[7:11])
    # Stacks rebuilt from single frames equal the env's own observations.
    from trex_bench.core.envs import make_env

    env = make_env("breakout")
    obs = [env.reset(seed=ep.seed)[0]]
    for a in ep.actions[:10]:
        obs.append(env.step(int(a))[0])
    env.close()
    assert np.array_equal(cache.stacks(np.full(11, 2), np.arange(11)), np.stack(obs))
    # A second cache over the same set reuses the files instead of replaying.
    mtimes = sorted(p.stat().st_mtime_ns for p in cache.folder.iterdir())
    FrameCache(breakout_demos, cache_dir=tmp_path)
    assert sorted(p.stat().st_mtime_ns for p in cache.folder.iterdir()) == mtimes


@pytest.fixture(scope="module")
def built_cache(tmp_path_factory, breakout_demos):
    root = tmp_path_factory.mktemp("cache")
    return root, FrameCache(breakout_demos, cache_dir=root)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "other-shape"])
def test_frame_cache_rebuilds_a_corrupt_file(tmp_path, breakout_demos, built_cache, damage):
    """A torn or foreign cache file is replayed again (issue 16, D7: it was an unnamed ValueError or EOFError)."""
    import shutil

    root, cache = built_cache
    shutil.copytree(root, tmp_path, dirs_exist_ok=True)
    path = tmp_path / cache.folder.relative_to(root) / "ep_0001.npy"
    data = path.read_bytes()
    if damage == "other-shape":
        np.save(path, np.zeros((3, 84, 84), np.uint8))
    else:
        path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"hello", "empty": b""}[damage])
    again = FrameCache(breakout_demos, cache_dir=tmp_path)
    assert np.array_equal(again.episode_frames(1), cache.episode_frames(1)) and path.read_bytes() == data
