"""The benchmark protocol, pinned where a bug would silently change a reported number (issue 19).

Each test names the protocol fact it pins. ``docs/protocol-tests.md`` lists the mutation each one was written to
catch and the evidence that it does.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from fakes import BrightnessFrames, PixelValue, ScriptedVecEnv

from trex_bench.core.envs import PROFILES, EnvProfile, make_vec_env
from trex_bench.rl.config import PPOConfig, PPOJob
from trex_bench.rl.ppo import load_agent, train_ppo
from trex_bench.rl.wrappers import LearnedRewardVecEnv

NOOP = 0  # Breakout's minimal action set: NOOP, FIRE, RIGHT, LEFT

# The paper profile with a 2 000-frame cap (500 agent steps), so a game that never relaunches the ball ends quickly.
SHORT = EnvProfile("paper-short", 0.0, 30, 4, True, 4, 84, True, 2_000)
TINY = PPOConfig("tiny", total_steps=32, n_envs=2, n_steps=16, batch_size=16, n_epochs=1)


def _tb_scalars(folder) -> dict[str, list[float]]:
    """Every scalar SB3 wrote to TensorBoard under ``folder``, by tag."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = {p.parent for p in folder.rglob("events.out.tfevents.*")}
    acc = EventAccumulator(str(events))
    acc.Reload()
    return {tag: [e.value for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


# -- env: what an episode is --------------------------------------------------------------------------------------
def test_a_lost_life_ends_the_learners_episode_but_never_an_evaluation_game():
    """training=False (evaluation, demos): a life loss is not ``done``; training=True: it is, and the game goes on."""
    seen = {}
    for training in (False, True):
        env = make_vec_env("breakout", 1, seed=0, training=training)
        env.reset()
        lives = 5
        for _ in range(80):  # NOOP lets the ball (launched by the FIRE reset) through within ~25 steps
            _, _, dones, infos = env.step(np.array([NOOP]))
            if infos[0]["lives"] < lives:
                lives = infos[0]["lives"]
                seen[training] = (bool(dones[0]), infos[0]["game_over"], "episode" in infos[0])
                break
        env.close()
    assert seen[False] == (False, False, False), "a lost life ended an evaluation episode"
    assert seen[True] == (True, False, False), "a lost life must end the learner's episode, not the game"


# -- evaluation ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def noop_agent(tmp_path_factory):
    """A PPO agent (short-cap profile) whose policy presses NOOP with probability 1 − 3e⁻³⁰."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROFILES, SHORT.name, SHORT)
        out = train_ppo(PPOJob("breakout", TINY, seed=0, profile=SHORT.name), tmp_path_factory.mktemp("noop"), progress=False)
        model, _ = load_agent(out)
        with torch.no_grad():
            model.policy.action_net.weight.zero_()
            model.policy.action_net.bias.copy_(torch.tensor([30.0, 0.0, 0.0, 0.0]))
        model.save(out / "agent.zip")
        yield out


@pytest.mark.parametrize("deterministic", [False, True])
def test_evaluation_plays_the_agents_own_actions_in_full_games(noop_agent, tmp_path, deterministic):
    """No forced FIRE and no life-loss episodes in evaluation: an agent that never relaunches the ball plays on to
    the frame cap (with training-time FIRE it would lose its 5 lives in ~120 steps)."""
    from trex_bench.evaluation.evaluate import evaluate_agent

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROFILES, SHORT.name, SHORT)
        rep = evaluate_agent(noop_agent, episodes=1, seed=0, n_envs=1, out=tmp_path, deterministic=deterministic)
    assert rep["lengths"] == [SHORT.max_frames_per_episode // SHORT.frameskip]
    assert rep["returns"] == [0.0]
    assert rep["deterministic"] is deterministic
    assert ("deterministic" if deterministic else "stochastic") in rep["protocol"]


@pytest.fixture(scope="module")
def near_uniform_agent(noop_agent, tmp_path_factory):
    """The NOOP agent's folder with a policy of P(NOOP) ≈ 0.28 and 0.24 for each other action: argmax is NOOP."""
    import shutil

    out = tmp_path_factory.mktemp("uniform") / "agent"
    shutil.copytree(noop_agent, out)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROFILES, SHORT.name, SHORT)
        model, _ = load_agent(out)
    with torch.no_grad():
        model.policy.action_net.bias.copy_(torch.tensor([1.0, 0.85, 0.85, 0.85]))
    model.save(out / "agent.zip")
    return out


def test_evaluation_samples_the_policy_by_default(near_uniform_agent, tmp_path):
    """T-REX evaluates the stochastic policy: sampled, it presses FIRE and loses its lives long before the cap;
    ``deterministic=True`` is the argmax (NOOP here) and plays on to the cap."""
    from trex_bench.evaluation.evaluate import evaluate_agent

    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(PROFILES, SHORT.name, SHORT)
        sampled = evaluate_agent(near_uniform_agent, episodes=2, seed=0, n_envs=2, out=tmp_path / "s.json")
        argmax = evaluate_agent(near_uniform_agent, episodes=1, seed=0, n_envs=1, out=tmp_path / "d.json",
                                deterministic=True)
    cap = SHORT.max_frames_per_episode // SHORT.frameskip
    assert sampled["deterministic"] is False and max(sampled["lengths"]) < cap
    assert argmax["lengths"] == [cap]


# -- PPO: the true score survives every wrapper ---------------------------------------------------------------------
@pytest.mark.parametrize("reward", ["constant", "true", "model"])
def test_ppo_logs_the_true_full_game_score_not_the_reward_it_optimises(tmp_path, reward):
    """SB3's ``rollout/ep_rew_mean`` is the true score of whole games whatever reward PPO optimises: a monitor placed
    above the reward wrapper would log episodes of single lives (and, with reward 1 per step, ep_rew == ep_len)."""
    if reward == "model":
        from trex_bench.reward.net import RewardNet, save_model

        torch.manual_seed(0)
        reward = save_model(RewardNet("breakout"), tmp_path / "reward", {"profile": "paper", "method": "trex"})
    cfg = PPOConfig("tiny", total_steps=512, n_envs=2, n_steps=128, batch_size=128, n_epochs=1)
    out = train_ppo(PPOJob("breakout", cfg, seed=0, reward=reward, transform="normalized"), tmp_path / "agent", progress=False)
    tb = _tb_scalars(out / "tb")
    assert tb.get("rollout/ep_len_mean"), "no game ended during the run: the test needs at least one"
    for score, length in zip(tb["rollout/ep_rew_mean"], tb["rollout/ep_len_mean"], strict=True):
        assert length > 100, "episodes of single lives, not whole games (5 lives)"
        assert 0 <= score < 30 and score != length, "the logged score is not Breakout's true score"


# -- reward wrappers ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("transform", ["raw", "sigmoid", "normalized"])
def test_a_game_over_is_scored_on_its_terminal_stack_not_the_next_games_first(transform):
    # env 0's game ends at step 1 on a stack of 200; the observation returned is the next game's first stack (30)
    venv = ScriptedVecEnv(values=[[10, 20], [30, 40], [50, 60]], game_over=[[False, False], [True, False], [False, False]],
                          terminal=[[0, 0], [200, 0], [0, 0]])
    norm = {"mean": [0.0], "var": [1e4], "count": 1.0}
    env = LearnedRewardVecEnv(venv, PixelValue(), transform, norm_state=norm, update_norm=False)
    env.reset()
    env.step(np.zeros(2, int))
    obs, r, dones, infos = env.step(np.zeros(2, int))
    assert dones.tolist() == [True, False] and obs[0, 0, 0, 0] == 30
    assert [i["learned_reward"] for i in infos] == [200.0, 40.0]
    want = {"raw": np.array([200.0, 40.0]), "sigmoid": 1 / (1 + np.exp(-np.array([200.0, 40.0]))),
            "normalized": np.array([2.0, 0.4])}[transform]
    np.testing.assert_allclose(r, want, rtol=1e-6)
    assert [i["true_reward"] for i in infos] == [1.0, 1.0]


def test_delta_crosses_no_game_boundary():
    """delta pays r̂(s′) − r̂(s) inside a game: the terminal stack closes the old game, the next game's first stack
    is the new baseline."""
    venv = ScriptedVecEnv(values=[[10, 20], [30, 40], [50, 60]], game_over=[[False, False], [True, False], [False, False]],
                          terminal=[[0, 0], [200, 0], [0, 0]], reset_value=5)
    env = LearnedRewardVecEnv(venv, PixelValue(), "delta")
    env.reset()
    got = [env.step(np.zeros(2, int))[1].tolist() for _ in range(3)]
    assert got == [[10 - 5, 20 - 5], [200 - 10, 40 - 20], [50 - 30, 60 - 40]]


def test_normalized_reward_is_clipped():
    """``normalized`` is r̂/σ_R clipped to ±clip (SB3 ``VecNormalize``): an outlier cannot dominate a rollout."""
    fixed = {"mean": [100.0], "var": [4.0], "count": 10.0}
    env = LearnedRewardVecEnv(ScriptedVecEnv([[255, 0, 11]]), PixelValue(), "normalized", norm_state=fixed,
                              update_norm=False, clip=10.0)
    env.reset()
    _, r, _, _ = env.step(np.zeros(3, int))
    np.testing.assert_allclose(r, np.array([10.0, 0.0, 5.5], np.float32), rtol=1e-6)  # the mean is not subtracted


def test_normalized_divides_by_the_return_std_and_keeps_a_survival_bonus_positive():
    """Issue 14: (r̂ − μ)/σ turned a constant positive reward (a survival bonus) into ~0 or a penalty. Gymnasium's
    ``NormalizeReward`` and SB3's ``VecNormalize`` divide by the std of the discounted return and keep the sign."""
    steady = [[100] for _ in range(300)]
    env = LearnedRewardVecEnv(ScriptedVecEnv(steady), PixelValue(), "normalized", gamma=0.9)
    env.reset()
    rewards = np.array([env.step(np.zeros(1, int))[1][0] for _ in range(300)])
    assert (rewards > 0).all()
    returns = np.array([100 * sum(0.9**k for k in range(t + 1)) for t in range(300)])  # R_t = 0.9 R_{t-1} + 100
    assert rewards[-1] == pytest.approx(100 / np.sqrt(returns.var() + 1e-8), rel=1e-3)


# -- reward net -----------------------------------------------------------------------------------------------------
def _reference_forward(net, stacks: torch.Tensor) -> torch.Tensor:
    """PAPERS.md "Reward net", written out: x/255 with the score rows zeroed, 4 convs, 2 linears, leaky ReLU."""
    x = stacks.double() / 255.0
    x[:, :, list(net.game.mask_rows), :] = 0.0
    for conv in (net.conv1, net.conv2, net.conv3, net.conv4):
        x = F.leaky_relu(F.conv2d(x, conv.weight.double(), conv.bias.double(), stride=conv.stride))
    x = F.leaky_relu(F.linear(x.flatten(1), net.fc1.weight.double(), net.fc1.bias.double()))
    return F.linear(x, net.fc2.weight.double(), net.fc2.bias.double()).squeeze(1)


@pytest.mark.parametrize("arch", ["trex", "drex"])
def test_reward_net_sees_pixels_scaled_to_0_1(arch):
    from trex_bench.reward.net import RewardNet

    torch.manual_seed(0)
    net = RewardNet("breakout", arch).eval()
    seen = []
    net.conv1.register_forward_pre_hook(lambda m, inp: seen.append(inp[0]))
    rng = np.random.default_rng(0)
    stacks = torch.from_numpy(np.concatenate([rng.integers(0, 256, (3, 4, 84, 84), dtype=np.uint8),
                                              np.full((1, 4, 84, 84), 255, np.uint8)]))
    with torch.no_grad():
        out = net(stacks)
    x = seen[0]
    assert float(x.max()) == 1.0 and float(x.min()) == 0.0, "the first conv must see pixels in [0, 1]"
    assert torch.all(x[3][:, list(net.game.mask_rows)] == 0) and torch.all(x[3][:, 30] == 1.0)
    torch.testing.assert_close(out.double(), _reference_forward(net, stacks), rtol=1e-4, atol=1e-5)


# -- reward trainer -------------------------------------------------------------------------------------------------
def _val_scores(net, source, pairs) -> tuple[float, float]:
    """(pair accuracy, Bradley-Terry loss) of ``net`` on ``pairs``, computed here from the public pieces."""
    from trex_bench.reward.bradley_terry import bradley_terry_loss, snippet_returns

    with torch.no_grad():
        ra, rb, _ = snippet_returns(net, source, pairs, torch.device("cpu"))
        label = torch.from_numpy(pairs.label)
        loss = float(bradley_terry_loss(ra, rb, label))
    return float((((rb > ra).long() == label) & (ra != rb)).float().mean()), loss


@pytest.mark.parametrize("select", ["val_accuracy", "val_loss", "last"])
def test_reward_trainer_returns_the_weights_it_selected(select):
    """The returned net is the selected checkpoint: with validation labels that contradict training, the best
    validation step is the first and the final weights are far worse on validation."""
    from trex_bench.core.types import Ranking
    from trex_bench.reward.config import TrainConfig
    from trex_bench.reward.snippets import sample_snippet_pairs
    from trex_bench.reward.train import train_reward

    src = BrightnessFrames(np.linspace(0, 1, 6), length=30)
    i, j = np.triu_indices(6, 1)
    rank = Ranking(6, np.stack([i, j], 1), "return")
    rng = np.random.default_rng(0)
    train_p = sample_snippet_pairs(rank, src.lengths, 240, 4, 9, 1, rng)
    val = sample_snippet_pairs(rank, src.lengths, 60, 4, 9, 1, rng)
    contrary = dataclasses.replace(val, label=1 - val.label)
    cfg = TrainConfig(n_pairs=300, min_len=4, max_len=9, stride=1, lr=1e-3, batch_pairs=8, passes=1.0, max_steps=30,
                      eval_every=5, patience=0, select=select, channels_last=False)
    net, metrics = train_reward(src, rank, cfg, "breakout", np.random.default_rng(2), pairs=(train_p, contrary))
    m = metrics["members"][0]
    log = {e["step"]: e for e in m["log"]}
    last, kept = log[m["steps"]], log[m["best_step"]]
    assert last["val_accuracy"] <= 0.2 and last["val_loss"] > 10, "training should have learned the contrary order"
    if select == "last":
        assert m["best_step"] == m["steps"]
    else:
        assert m["best_step"] < m["steps"] and kept["val_loss"] < last["val_loss"] / 10
        assert m["best_val_accuracy"] == kept["val_accuracy"] and m["best_val_loss"] == kept["val_loss"]
    acc, loss = _val_scores(net, src, contrary)
    assert loss == pytest.approx(kept["val_loss"], rel=1e-3) and acc == pytest.approx(kept["val_accuracy"], abs=0.02)


# -- demos ----------------------------------------------------------------------------------------------------------
def test_verify_compares_every_recorded_frame_hash(breakout_demos):
    """A record whose frames differ fails ``verify`` on its frame hashes, even where return and length agree."""
    from trex_bench.demos.replay import verify_demos

    ep = breakout_demos.episodes[0]
    hashes = ep.frame_hashes.copy()
    hashes[2] ^= np.uint64(1)  # one recorded hash off by one bit: same actions, same return, same length
    ds = dataclasses.replace(breakout_demos, episodes=(ep, dataclasses.replace(ep, frame_hashes=hashes)))
    ok, bad = verify_demos(ds, n_envs=2)
    assert ok.ok and ok.message == "ok"
    assert not bad.ok and bad.replayed_ret == bad.ret
    assert bad.message == f"frame hash mismatch at step {int(ep.hash_steps[2])} (1 of {len(hashes)} hashes differ)"


# -- pipeline -------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, breakout_demos):
    """A finished T-REX run (smoke budget, PPO cut to 32 steps, 1 evaluation game) on 3 short scripted episodes."""
    from trex_bench.demos.store import save_demos
    from trex_bench.experiment import budgets
    from trex_bench.experiment.options import PipelineConfig
    from trex_bench.experiment.pipeline import run_pipeline

    root = tmp_path_factory.mktemp("protocol-run")
    demos = save_demos(dataclasses.replace(breakout_demos, episodes=breakout_demos.episodes[:3]), root / "demos")
    kw = dict(out=root / "run", leaderboard=None, progress=False, cache_dir=root / "cache")
    cfg = PipelineConfig(game="breakout", method="trex", budget="smoke", eval_episodes=1, demos=demos)
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(budgets.BUDGETS, "smoke", dataclasses.replace(budgets.BUDGETS["smoke"], ppo=TINY.replace(name="smoke")))
        summary = run_pipeline(cfg.resolve(), **kw)
        yield root, cfg, kw, summary


def test_the_row_names_what_the_reward_net_was_trained_on(smoke_run):
    from trex_bench.core.io import file_hash, read_json

    root, _, _, summary = smoke_run
    card = read_json(root / "run" / "reward" / "card.json")
    assert summary["row"]["ranking_source"] == card["ranking"]["source"] == "return"
    assert card["demos"]["content_hash"] == read_json(root / "demos" / "manifest.json")["content_hash"]
    agent = read_json(root / "run" / "agent" / "card.json")
    assert agent["reward"]["model_card_hash"] == file_hash(root / "run" / "reward" / "card.json")
    ev, row = read_json(root / "run" / "eval" / "eval.json"), summary["row"]
    assert (row["n_episodes"], row["mean"], row["rl_steps"]) == (ev["episodes"], ev["mean"], agent["steps"]) == \
        (1, ev["returns"][0], 32)
    assert row["env_profile"] == agent["profile"] == ev["profile"] == "paper"


def test_agent_stage_key_covers_the_reward_transform(smoke_run):
    """Resuming a run folder with another transform must not reuse the agent trained on the first one."""
    from trex_bench.core.io import read_json
    from trex_bench.experiment.pipeline import run_pipeline

    root, cfg, kw, _ = smoke_run
    with pytest.raises(ValueError, match=r"agent was made by another config"):
        run_pipeline(dataclasses.replace(cfg, transform="raw").resolve(), resume=True, **kw)
    assert read_json(root / "run" / "agent" / "card.json")["reward"]["transform"] == "sigmoid"
    assert read_json(root / "run" / "agent" / "stage.json")["key_of"]["transform"] == "sigmoid"


@pytest.mark.parametrize(("change", "stage"), [
    (dict(seed=1), "reward"),
    (dict(ranking="synthetic"), "reward"),
    (dict(max_seconds=1e6), "agent"),
    (dict(kl_to="bc-policy", kl_beta=0.1), "agent"),
    (dict(eval_episodes=2), "eval"),
])
def test_every_input_keys_its_stage(smoke_run, change, stage):
    """A resumed run with any one input changed refuses at the first stage that input reaches: nothing is reused
    that was made from other inputs."""
    from trex_bench.experiment.pipeline import run_pipeline

    root, cfg, kw, _ = smoke_run
    if "kl_to" in change:  # a folder with a card: a missing one is refused before any stage (D6)
        (root / change["kl_to"]).mkdir(exist_ok=True)
        (root / change["kl_to"] / "card.json").write_text('{"kind": "bc_policy"}')
        change = change | {"kl_to": root / change["kl_to"]}
    with pytest.raises(ValueError, match=rf"{stage} was made by another config"):
        run_pipeline(dataclasses.replace(cfg, **change).resolve(), resume=True, **kw)


def test_another_demo_set_retrains_the_reward(smoke_run, breakout_demos):
    from trex_bench.demos.store import save_demos
    from trex_bench.experiment.pipeline import run_pipeline

    root, cfg, kw, _ = smoke_run
    other = save_demos(dataclasses.replace(breakout_demos, episodes=breakout_demos.episodes[1:]), root / "other")
    with pytest.raises(ValueError, match=r"reward was made by another config"):
        run_pipeline(dataclasses.replace(cfg, demos=other).resolve(), resume=True, **kw)


def test_extrapolation_stage_refuses_an_unseen_set_that_repeats_a_demo(smoke_run, breakout_demos):
    """The unseen set must be disjoint from the demos, or "extrapolation" is measured on training data."""
    from trex_bench.demos.store import save_demos
    from trex_bench.experiment.pipeline import run_pipeline

    root, cfg, kw, _ = smoke_run
    overlap = save_demos(dataclasses.replace(breakout_demos, episodes=breakout_demos.episodes[2:]), root / "overlap")
    with pytest.raises(ValueError, match=r"repeats 1 episode\(s\).*disjoint"):
        run_pipeline(dataclasses.replace(cfg, unseen=overlap).resolve(), resume=True, **kw)


def test_an_edited_budget_reward_value_retrains_the_reward(smoke_run, monkeypatch):
    """Issue 14: the reward stage was keyed by the budget's *name*: after an edit of its values, --resume reused the
    stale net. Now the resolved values key it."""
    from trex_bench.experiment import budgets
    from trex_bench.experiment.pipeline import run_pipeline

    _, cfg, kw, _ = smoke_run
    smoke = budgets.BUDGETS["smoke"]
    monkeypatch.setitem(budgets.BUDGETS, "smoke", dataclasses.replace(smoke, reward=dict(smoke.reward) | {"lr": 2e-3}))
    with pytest.raises(ValueError, match=r"reward was made by another config"):
        run_pipeline(cfg.resolve(), resume=True, **kw)


@pytest.mark.parametrize("damage", ["truncate", "delete"])
def test_a_damaged_finished_stage_is_refused_on_resume(smoke_run, tmp_path, damage):
    """D15: a truncated agent.zip under a valid stage.json was reused and evaluation failed with "wasn't a
    zip-file". Now the stage's recorded file hashes are checked and the message names the folder to delete."""
    import shutil

    from trex_bench.core.errors import RunFolderError
    from trex_bench.experiment.pipeline import run_pipeline

    root, cfg, kw, _ = smoke_run
    copy = tmp_path / "run"
    shutil.copytree(root / "run", copy)
    (copy / "summary.json").unlink()
    zip_path = copy / "agent" / "agent.zip"
    if damage == "truncate":
        zip_path.write_bytes(zip_path.read_bytes()[:100])
    else:
        zip_path.unlink()
    with pytest.raises(RunFolderError, match=rf"delete {copy / 'agent'} and rerun"):
        run_pipeline(cfg.resolve(), resume=True, **(kw | {"out": copy}))
