"""Loading SB3 agent zips runs no pickled code (issue 16, D1): ours load from weights + card, foreign ones only
with an explicit --trust-pickle; bad zips and cards are refused in one line."""

from __future__ import annotations

import base64
import json
import pickle
import shutil
import zipfile

import numpy as np
import pytest
import torch

from trex_bench.evaluation.evaluate import evaluate_agent
from trex_bench.rl.agent_io import SB3Policy
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import load_agent, train_ppo

TINY = PPOConfig("tiny", total_steps=32, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=16)


class _Touch:
    """Unpickling this creates ``path``: the marker of code run from a zip."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


def _rewrite_zip(path, data=None, policy_pth=None):
    """Rewrite an SB3 zip in place, changing its ``data`` JSON and/or its ``policy.pth`` bytes."""
    with zipfile.ZipFile(path) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    if data is not None:
        d = json.loads(entries["data"])
        d.update(data)
        entries["data"] = json.dumps(d).encode()
    if policy_pth is not None:
        entries["policy.pth"] = policy_pth
    with zipfile.ZipFile(path, "w") as zf:
        for n, b in entries.items():
            zf.writestr(n, b)


def _evil(marker):
    return {"evil": {":serialized:": base64.b64encode(pickle.dumps(_Touch(marker))).decode()}}


@pytest.fixture(scope="module")
def agent_dir(tmp_path_factory):
    return train_ppo(PPOJob("breakout", TINY, seed=0), tmp_path_factory.mktemp("agent") / "a", progress=False)


@pytest.fixture
def evil_agent(agent_dir, tmp_path):
    """A copy of the agent whose final zip and checkpoints each carry a pickle that would create ``marker``."""
    copy = shutil.copytree(agent_dir, tmp_path / "evil")
    marker = tmp_path / "PWNED"
    for z in [copy / "agent.zip", *(copy / "checkpoints").glob("*.zip")]:
        _rewrite_zip(z, data=_evil(marker))
    return copy, marker


def _obs(n=3):
    return np.random.default_rng(0).integers(0, 256, (n, 4, 84, 84), dtype=np.uint8)


@pytest.mark.parametrize("how", ["load_agent", "sb3_final", "sb3_checkpoint", "evaluate"])
def test_embedded_pickles_never_run(evil_agent, tmp_path, how):
    folder, marker = evil_agent
    if how == "load_agent":
        model, card = load_agent(folder)
        actions, _ = model.predict(_obs())
        assert card["game"] == "breakout" and model.n_envs == 2
    elif how == "evaluate":
        rep = evaluate_agent(folder, episodes=1, n_envs=1, out=tmp_path / "eval.json")
        assert rep["episodes"] == 1 and rep["lengths"][0] > 0
        actions = np.zeros(3, np.int64)
    else:
        zip_path = folder / "agent.zip" if how == "sb3_final" else sorted((folder / "checkpoints").glob("*.zip"))[0]
        actions = SB3Policy(zip_path, game="breakout").act(_obs())
    assert not marker.exists(), "a pickle in the zip was run"
    assert actions.shape == (3,) and set(np.asarray(actions).tolist()) <= {0, 1, 2, 3}


def test_rebuilt_policy_is_the_trained_one(agent_dir):
    from stable_baselines3 import PPO

    ours, _ = load_agent(agent_dir)
    theirs = PPO.load(agent_dir / "agent.zip", device="cpu")  # the trusted reference: a zip we just wrote
    for k, v in theirs.policy.state_dict().items():
        torch.testing.assert_close(ours.policy.state_dict()[k], v)
    obs = torch.as_tensor(_obs(5))
    with torch.no_grad():
        torch.testing.assert_close(ours.policy.get_distribution(obs).distribution.probs,
                                   theirs.policy.get_distribution(obs).distribution.probs)


def test_foreign_zip_needs_trust_pickle(agent_dir, tmp_path, capsys):
    foreign = tmp_path / "zoo" / "ppo-BreakoutNoFrameskip-v4.zip"
    foreign.parent.mkdir()
    shutil.copy(agent_dir / "agent.zip", foreign)
    with pytest.raises(ValueError, match="--trust-pickle"):
        SB3Policy(foreign, game="breakout")
    assert SB3Policy(foreign, game="breakout", trust_pickle=True).act(_obs()).shape == (3,)
    from trex_bench.cli import main

    args = ["demos", "collect", "breakout", "--demonstrator", f"sb3:{foreign}", "--episodes", "1", "--seed", "0",
            "--max-steps", "10", "--envs", "1", "--no-progress", "--out"]
    assert main([*args, str(tmp_path / "d1")]) == 2
    err = capsys.readouterr().err
    assert "--trust-pickle" in err and len(err.strip().splitlines()) == 1 and not (tmp_path / "d1").exists()
    assert main([*args, str(tmp_path / "d2"), "--trust-pickle"]) == 0


def test_no_dqn_retry(tmp_path):
    from stable_baselines3 import DQN

    from trex_bench.core.envs import make_vec_env

    env = make_vec_env("breakout", 1)
    DQN("CnnPolicy", env, buffer_size=8, learning_starts=0, device="cpu").save(tmp_path / "dqn.zip")
    env.close()
    with pytest.raises(ValueError, match="not a loadable SB3 PPO zip"):
        SB3Policy(tmp_path / "dqn.zip", game="breakout", trust_pickle=True)


def _edited_copy(agent_dir, tmp_path, card_edit=None, card_text=None, policy_pth=None):
    copy = shutil.copytree(agent_dir, tmp_path / "c", ignore=shutil.ignore_patterns("checkpoints", "tb"))
    if card_edit is not None:
        card = json.loads((copy / "card.json").read_text())
        card.update(card_edit)
        (copy / "card.json").write_text(json.dumps(card))
    if card_text is not None:
        (copy / "card.json").write_text(card_text)
    if policy_pth is not None:
        _rewrite_zip(copy / "agent.zip", policy_pth=policy_pth)
    return copy


@pytest.mark.parametrize("edit, match", [
    (dict(card_edit={"game": "pong"}), r"weights do not fit a fp32 CnnPolicy for pong \(6 actions\).*wrong shape"),
    (dict(card_edit={"precision": "fp8"}), "unknown precision 'fp8'"),
    (dict(card_text="[1, 2]"), "is not an agent card"),
    (dict(card_text='{"kind": "agent", "profile": "paper"}'), "agent card names no game"),
    (dict(card_text='{"kind": "agent", "game": "breakout"}'), "agent card names no profile"),
    (dict(policy_pth=pickle.dumps({"a": object()})), r"policy.pth is not a plain tensor state dict \(UnpicklingError"),
    (dict(policy_pth=b"torn"), "policy.pth is not a plain tensor state dict"),
])
def test_bad_agents_are_refused_in_one_line(agent_dir, tmp_path, edit, match):
    folder = _edited_copy(agent_dir, tmp_path, **edit)
    with pytest.raises(ValueError, match=match) as e:
        load_agent(folder)
    assert "\n" not in str(e.value) and str(folder) in str(e.value)
    from trex_bench.cli import main

    assert main(["evaluate", "--agent", str(folder), "--episodes", "1", "--no-progress"]) == 2


def test_collect_refuses_an_agent_of_another_game(agent_dir):
    with pytest.raises(ValueError, match="is an agent for breakout .* not pong"):
        SB3Policy(agent_dir / "agent.zip", game="pong")
