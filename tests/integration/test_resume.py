"""A PPO run cut off before its end goes on from its newest checkpoint, only with the settings it was started with."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from trex_bench.core.io import read_json
from trex_bench.rl.agent_io import read_zip_member
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import train_ppo
from trex_bench.rl.resume import RUN_FILE, list_checkpoints

# A rollout is 32 steps; checkpoints at 48 (saved inside the 2nd rollout, after 1 update) and 96 (after 2).
TINY = PPOConfig("tiny", total_steps=128, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=48)


def _cut_after_first_checkpoint(out: Path) -> None:
    """What a kill after the first checkpoint leaves: no agent, no card, no later checkpoint."""
    (out / "card.json").unlink()
    (out / "agent.zip").unlink()
    (out / "checkpoints" / "ppo_96_steps.zip").unlink()


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("run") / "agent"
    return train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)


def test_a_cut_run_resumes_from_its_newest_checkpoint_and_finishes(finished, tmp_path):
    out = tmp_path / "agent"
    shutil.copytree(finished, out)
    _cut_after_first_checkpoint(out)
    train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)
    card = read_json(out / "card.json")
    # The checkpoint at 48 holds the policy after the update at 32: the run goes on from there, on the same grid.
    assert (card["resumed_from"], card["steps"], card["stopped"]) == (32, 128, "total steps")
    assert [s for s, _ in list_checkpoints(out / "checkpoints")] == [48, 96]
    assert sorted(p.name for p in (out / "tb").iterdir()) == ["ppo_1"]  # TensorBoard continues the same log
    assert read_json(finished / "card.json")["resumed_from"] is None


def test_restore_loads_the_checkpoints_weights_and_adam_state(finished, tmp_path):
    from trex_bench.core.envs import make_vec_env
    from trex_bench.rl.ppo import _make_model
    from trex_bench.rl.resume import ResumePoint, restore

    ckpt = finished / "checkpoints" / "ppo_96_steps.zip"
    env = make_vec_env("breakout", TINY.n_envs, "paper", seed=0, training=True)
    try:
        model = _make_model(env, PPOJob("breakout", TINY, seed=1, channels_last=True), tmp_path, "fp32")
        weights, adam_state = read_zip_member(ckpt, "policy.pth"), read_zip_member(ckpt, "policy.optimizer.pth")
        point = ResumePoint(96, ckpt, weights, adam_state)
        assert restore(model, point, rollout=32) == 64  # two updates done when it was saved
    finally:
        env.close()
    want = read_zip_member(ckpt, "policy.pth")
    got = model.policy.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.items())
    adam = model.policy.optimizer.state_dict()["state"]
    saved = read_zip_member(ckpt, "policy.optimizer.pth")["state"]
    assert saved and adam.keys() == saved.keys()
    assert all(torch.equal(adam[i]["exp_avg"], saved[i]["exp_avg"]) for i in adam)
    assert {float(v["step"]) for v in adam.values()} == {4.0}  # 2 updates × 1 epoch × 2 minibatches
    assert model.num_timesteps == 64


def test_resume_refuses_other_settings_a_finished_run_and_an_unchecked_folder(finished, tmp_path):
    with pytest.raises(ValueError, match="finished run"):
        train_ppo(PPOJob("breakout", TINY, seed=0), finished, progress=False, resume=True)
    out = tmp_path / "agent"
    shutil.copytree(finished, out)
    _cut_after_first_checkpoint(out)
    with pytest.raises(ValueError, match=r"other settings \(seed\)"):
        train_ppo(PPOJob("breakout", TINY, seed=1), out, progress=False, resume=True)
    with pytest.raises(ValueError, match=r"other settings \(config, reward\)"):
        train_ppo(PPOJob("breakout", TINY.replace(n_epochs=2), seed=0, reward="constant"), out, progress=False, resume=True)
    (out / RUN_FILE).unlink()
    with pytest.raises(ValueError, match="no run.json"):
        train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)


def test_a_torn_newest_checkpoint_falls_back_to_the_one_before(finished, tmp_path):
    """The torn one is written again when the run gets there, and the temp file of a write a kill cut short (a
    SIGKILL during ``atomic_write``) is deleted, not left in the run's folder."""
    from trex_bench.rl.agent_io import read_zip_member

    out = tmp_path / "agent"
    shutil.copytree(finished, out)
    (out / "card.json").unlink()
    (out / "agent.zip").unlink()
    (out / "checkpoints" / "ppo_96_steps.zip").write_bytes(b"PK\x03\x04 torn")
    cut_write = out / "checkpoints" / ".ppo_96_steps.zip.k3x9q1.tmp.zip"
    cut_write.write_bytes(b"PK\x03\x04 half")
    with pytest.warns(UserWarning, match="unreadable checkpoint"):
        train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)
    assert read_json(out / "card.json")["resumed_from"] == 32
    assert read_zip_member(out / "checkpoints" / "ppo_96_steps.zip", "policy.pth")
    assert not cut_write.exists()


def test_a_fresh_start_never_mixes_its_checkpoints_with_an_earlier_runs(finished, tmp_path):
    out = tmp_path / "agent"
    shutil.copytree(finished, out)
    _cut_after_first_checkpoint(out)
    with pytest.raises(ValueError, match="checkpoints of an earlier run; pass --resume"):
        train_ppo(PPOJob("breakout", TINY, seed=1), out, progress=False)


def test_a_resumed_run_plays_new_games_not_those_it_began_with(finished, tmp_path, monkeypatch):
    """Seeded again with the run's own seed, a resumed run replayed the noop starts and action draws of its first
    steps; it now draws from streams seeded by (seed, step it goes on from), the same for the same resume."""
    from trex_bench.core.envs import AtariVecEnv
    from trex_bench.rl.resume import resume_seed

    first_games: list[list[int]] = []
    original_reset = AtariVecEnv.reset

    def reset(self):
        obs = original_reset(self)
        first_games.append(self.current_seeds.tolist())
        return obs

    monkeypatch.setattr(AtariVecEnv, "reset", reset)
    runs = []
    for name in ("once", "twice"):
        out = tmp_path / name
        shutil.copytree(finished, out)
        _cut_after_first_checkpoint(out)
        train_ppo(PPOJob("breakout", TINY, seed=0), out, progress=False, resume=True)
        runs.append(read_json(out / "card.json"))
    fresh = tmp_path / "fresh"
    train_ppo(PPOJob("breakout", TINY, seed=0), fresh, progress=False)
    # One reset per run (learn()'s first): the two resumes start the same new games, the fresh run its own.
    assert len(first_games) == 3 and first_games[0] == first_games[1] != first_games[2]
    assert runs[0]["resume_seed"] == runs[1]["resume_seed"] == resume_seed(0, 32)
    assert read_json(fresh / "card.json")["resume_seed"] is None


def test_a_resumed_auto_run_keeps_the_precision_it_started_with(finished, tmp_path, monkeypatch):
    import trex_bench.rl.ppo as ppo

    out = tmp_path / "agent"
    shutil.copytree(finished, out)  # started as fp32
    _cut_after_first_checkpoint(out)
    real = ppo.resolve_precision
    monkeypatch.setattr(ppo, "resolve_precision", lambda p, d: ("bf16", {}) if p == "auto" else real(p, d))
    train_ppo(PPOJob("breakout", TINY, seed=0, precision="auto"), out, progress=False, resume=True)
    assert read_json(out / "card.json")["precision"] == "fp32"


def test_the_configs_source_text_is_a_description_not_a_setting(finished, tmp_path):
    """A run started before a budget's ``source`` text was reworded still resumes; a changed value does not."""
    from trex_bench.rl.resume import resume_point

    out = tmp_path / "agent"
    shutil.copytree(finished, out)
    _cut_after_first_checkpoint(out)
    started = read_json(out / RUN_FILE)
    reworded = started | {"config": started["config"] | {"source": "reworded"}}
    assert resume_point(out, reworded).steps == 48
    with pytest.raises(ValueError, match=r"\(config\)"):
        resume_point(out, started | {"config": started["config"] | {"n_epochs": 3}})


def test_a_resumed_run_can_be_extended_but_not_shortened(finished, tmp_path):
    """A budget is a prefix of one schedule, so a longer total is the same run going on; run.json records it. Without
    its own schedule horizon the total is the horizon, and a new total another run."""
    from trex_bench.rl.resume import resume_point

    prefix = TINY.replace(schedule_steps=256)
    out = train_ppo(PPOJob("breakout", prefix, seed=0), tmp_path / "agent", progress=False, resume=True)
    _cut_after_first_checkpoint(out)
    started = read_json(out / RUN_FILE)
    with pytest.raises(ValueError, match="extended, not shortened to 96"):
        resume_point(out, started | {"config": started["config"] | {"total_steps": 96}})
    own_horizon = tmp_path / "own-horizon"  # TINY: its schedules anneal over its own total
    shutil.copytree(finished, own_horizon)
    _cut_after_first_checkpoint(own_horizon)
    tiny = read_json(own_horizon / RUN_FILE)
    with pytest.raises(ValueError, match=r"other settings \(config\)"):
        resume_point(own_horizon, tiny | {"config": tiny["config"] | {"total_steps": 160}})
    train_ppo(PPOJob("breakout", prefix.replace(total_steps=160), seed=0), out, progress=False, resume=True)
    card = read_json(out / "card.json")
    assert (card["resumed_from"], card["steps"]) == (32, 160)
    assert read_json(out / RUN_FILE)["config"]["total_steps"] == 160


def test_a_cut_gail_run_resumes_with_the_discriminator_of_its_checkpoint(tmp_path, breakout_demos, monkeypatch):
    """An online reward's state is saved beside every checkpoint and restored with the policy: a GAIL run cut after
    its first checkpoint goes on with that checkpoint's discriminator, not a fresh one."""
    import numpy as np

    from trex_bench.demos.frames import FrameCache
    from trex_bench.rl.gail import GAILReward
    from trex_bench.rl.gail_config import GAILConfig
    from trex_bench.rl.online import state_folder

    def gail() -> GAILReward:
        cfg = GAILConfig(batch_size=32, heldout_size=64)
        return GAILReward("breakout", breakout_demos, FrameCache(breakout_demos, tmp_path / "cache"), cfg,
                          np.random.default_rng(0))

    import trex_bench.rl.checkpoints as checkpoints

    interim = []
    original_save = checkpoints.save_checkpoint

    def save(model, path, states):
        original_save(model, path, states)
        if path.name.endswith(".interim.zip"):
            interim.append((path.name, (state_folder(path) / "discriminator.safetensors").is_file()))

    monkeypatch.setattr(checkpoints, "save_checkpoint", save)
    job = PPOJob("breakout", TINY, seed=0, reward="online")
    out = train_ppo(job, tmp_path / "agent", progress=False, resume=True, online=gail(), interim_every_s=0)
    saved = state_folder(out / "checkpoints" / "ppo_48_steps.zip")
    assert (saved / "discriminator.safetensors").is_file() and (out / "online").is_dir()
    # An interim checkpoint after each update, each with its discriminator; all gone once the run finished.
    assert interim == [(f"ppo_{s}_steps.interim.zip", True) for s in (34, 66, 98)]
    assert not [p.name for p in (out / "checkpoints").iterdir() if "interim" in p.name]
    _cut_after_first_checkpoint(out)
    fresh = gail()
    loaded = []
    original_load = fresh.load
    fresh.load = lambda folder: (loaded.append(Path(folder)), original_load(folder))[1]  # type: ignore[method-assign]
    train_ppo(job, out, progress=False, resume=True, online=fresh)
    assert loaded == [saved]
    card = read_json(out / "card.json")
    assert card["resumed_from"] == 32 and card["online_reward"]["method"] == "gail"
    with pytest.raises(ValueError, match="go together"):
        train_ppo(PPOJob("breakout", TINY, seed=0), tmp_path / "x", progress=False, online=gail())


def test_checkpoints_are_written_whole_and_never_rewritten(tmp_path):
    """A write cut off leaves no file (SB3 wrote the zip in place); a checkpoint that exists is left alone: a resumed
    run reaches the one it resumed from again, with the same weights, and rewriting it would only risk tearing it."""
    from trex_bench.rl.checkpoints import GridCheckpoints

    class CutOff:
        num_timesteps = 48
        saves = 0

        def save(self, path):
            CutOff.saves += 1
            Path(path).write_bytes(b"PK\x03\x04 half")
            raise KeyboardInterrupt

    folder = tmp_path / "checkpoints"
    folder.mkdir()
    callback = GridCheckpoints(1, folder)
    callback.model = CutOff()
    with pytest.raises(KeyboardInterrupt):
        callback.on_step()
    assert list(folder.iterdir()) == []
    (folder / "ppo_48_steps.zip").write_bytes(b"whole")
    callback.on_step()
    assert CutOff.saves == 1 and (folder / "ppo_48_steps.zip").read_bytes() == b"whole"
