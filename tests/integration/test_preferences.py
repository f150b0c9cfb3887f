"""The online preference loop (Christiano et al. 2017): schedule, oracle, queries, the one label format, normalisation,
resume, a person answering the loop's queries on the labeling page's HTTP API (and a run that pauses for them), and
a tiny PPO run whose ensemble learns what the oracle prefers. Fakes only, except one ALE replay check."""

from __future__ import annotations

import copy
import io
import json
import math
import threading
import time
import urllib.request
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.vec_env.base_vec_env import VecEnvStepReturn

from trex_bench.core.envs import OneObjectVecEnv
from trex_bench.core.errors import ConfigError, DataError, LabelsPending
from trex_bench.label.server import LabelApp, find_pairs_folder, make_server
from trex_bench.reward.bradley_terry import bradley_terry_loss
from trex_bench.reward.clip_pairs import Clip, ClipPair, PairSet, read_pairs, write_pairs
from trex_bench.reward.labels import COLUMNS, Label, append_labels, read_labels
from trex_bench.reward.pref_ensemble import EnsembleNormalizer, preference_loss, select_queries
from trex_bench.reward.preferences import HumanLabeler, SyntheticLabeler
from trex_bench.reward.prefs_config import PrefsConfig, labels_due
from trex_bench.reward.segments import ClipBank, ClipFrames, RolloutStore, clip_stacks
from trex_bench.rl.online import OnlineReward
from trex_bench.rl.preference_loop import PreferenceReward, load_paid_reward


class BrightActionEnv(OneObjectVecEnv):
    """Each step draws a frame with a bright patch on the left after action 1 (true reward 1) and on the right after
    action 0 (reward 0), the same brightness, so an untrained net cannot tell them apart by it; the observation is a real frame stack (shifted by one frame a step, zero-filled at a game's start),
    games end after ``game_len`` steps, and ``current_starts`` names them like ``AtariVecEnv``."""

    def __init__(self, n_envs: int = 2, game_len: int = 40, seed: int = 0) -> None:
        super().__init__(n_envs, gym.spaces.Box(0, 255, (4, 84, 84), np.uint8), gym.spaces.Discrete(2))
        self.game_len, self.rng = game_len, np.random.default_rng(seed)
        self.stacks = np.zeros((n_envs, 4, 84, 84), np.uint8)
        self.t = np.zeros(n_envs, np.int64)
        self.seeds = 100 + np.arange(n_envs)
        self.resets = np.zeros(n_envs, np.int64)
        self.actions = np.zeros(n_envs, np.int64)

    def frame(self, action: int) -> np.ndarray:
        f = self.rng.integers(0, 40, size=(84, 84), dtype=np.uint8)
        left = 10 if action == 1 else 54
        f[30:50, left : left + 20] = 200
        return f

    def current_starts(self) -> tuple[np.ndarray, np.ndarray]:
        return self.seeds.copy(), self.resets.copy()

    def reset(self) -> np.ndarray:
        self.stacks[:] = 0
        self.stacks[:, -1] = [self.frame(0) for _ in range(self.num_envs)]
        self.t[:] = 0
        return self.stacks.copy()

    def step_async(self, actions: np.ndarray) -> None:
        self.actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        rewards = (self.actions == 1).astype(np.float32)
        self.stacks = np.concatenate([self.stacks[:, 1:], np.stack([self.frame(a) for a in self.actions])[:, None]], 1)
        self.t += 1
        dones = self.t >= self.game_len
        infos: list[dict[str, Any]] = [{"game_over": bool(d)} for d in dones]
        obs = self.stacks.copy()
        for i in np.flatnonzero(dones):
            infos[i]["terminal_observation"] = obs[i].copy()
            infos[i]["episode"] = {"r": 0.0, "l": int(self.t[i]), "t": 0.0}
            self.resets[i] += 1
            self.t[i] = 0
            self.stacks[i] = 0
            self.stacks[i, -1] = self.frame(0)
            obs[i] = self.stacks[i]
        return obs, rewards, dones, infos

    def close(self) -> None:
        pass



def small_cfg(**kw: Any) -> PrefsConfig:
    base = dict(horizon_steps=2000, segment_length=4, total_labels=30, initial_share=0.5, t0_steps=500,
                pretrain_epochs=1, train_pairs_per_step=0.05, recent_steps=64, batch_pairs=16)
    return PrefsConfig(**{**base, **kw})


def make_loop(tmp_path, cfg: PrefsConfig | None = None, seed: int = 0, resume: bool = False,
              deferred: bool = True, labeler=None) -> PreferenceReward:
    """A loop with a synthetic oracle (or ``labeler``); ``deferred``: score each rollout at its end, as under PPO's
    callback."""
    labeler = labeler or SyntheticLabeler(0.0, np.random.default_rng(seed + 1))
    loop = PreferenceReward("breakout", cfg or small_cfg(), tmp_path / "run", labeler, np.random.default_rng(seed),
                            resume=resume)
    loop.deferred = deferred
    return loop


def play(env, steps: int, rng: np.random.Generator) -> None:
    for _ in range(steps):
        env.step(rng.integers(0, 2, size=env.num_envs))


# -- schedule ----------------------------------------------------------------------------------------------------
def test_label_schedule_counts():
    assert labels_due(0, 5500, 500, 1.25e6, 10**7) == 500  # the first batch, before PPO's first update
    assert labels_due(10**7, 5500, 500, 1.25e6, 10**7) == 5500  # the whole budget by the horizon
    steps = np.linspace(0, 10**7, 401).astype(int)
    due = np.array([labels_due(int(t), 5500, 500, 1.25e6, 10**7) for t in steps])
    assert np.all(np.diff(due) >= 0)
    # the rate ∝ 1/(1 + T/T0) halves by T = T0 and is a third by 2·T0 (App. A: twice the time, half the rate)
    big = dict(total=10**9, initial=0, t0=1000.0, horizon=10**6)
    rate = lambda t: labels_due(t + 10, **big) - labels_due(t, **big)  # noqa: E731
    assert rate(1000) / rate(0) == pytest.approx(0.5, rel=0.02)
    assert rate(2000) / rate(0) == pytest.approx(1 / 3, rel=0.02)
    cfg = PrefsConfig(horizon_steps=12_500_000)
    assert (cfg.initial_labels, cfg.labels_due(0), cfg.labels_due(12_500_000)) == (500, 500, 5500)
    with pytest.raises(ConfigError, match="recent_steps"):
        PrefsConfig(horizon_steps=100, recent_steps=10)


# -- the synthetic oracle ----------------------------------------------------------------------------------------
def clip_with_return(clip: Clip, ret: float) -> ClipFrames:
    rewards = np.zeros(clip.length, np.float32)
    rewards[0] = ret
    frames = np.zeros((clip.length + 3, 84, 84), np.uint8)
    return ClipFrames(clip, frames, rewards, np.zeros(clip.start + clip.length - 1, np.uint8))


def test_synthetic_oracle_follows_the_true_score(tmp_path):
    bank, path = ClipBank(tmp_path), tmp_path / "labels.csv"
    clips = [Clip(1, 0, 1 + 5 * k, 5) for k in range(4)]
    for clip, ret in zip(clips, [0.0, 3.0, 3.0, 40.0], strict=True):
        assert bank.put(clip_with_return(clip, ret), animate=False) is None
    c = clips
    queries = {k: ClipPair(a, b, None, None) for k, (a, b) in enumerate([(c[0], c[1]), (c[1], c[0]), (c[1], c[2]),
                                                                          (c[3], c[2])])}
    SyntheticLabeler().ask(queries, bank, path)
    assert [lab.answer for lab in read_labels(path)] == ["right", "left", "equal", "left"]
    assert [lab.target for lab in read_labels(path)] == [1.0, 0.0, 0.5, 0.0]
    assert path.read_text().splitlines()[0] == ",".join(COLUMNS)  # the one labels.csv format
    assert not list(tmp_path.glob("clips/*.gif"))  # nobody watches the oracle's clips: no GIF rendered


def test_synthetic_oracle_flips_at_the_noise_rate():
    oracle = SyntheticLabeler(0.2, np.random.default_rng(0))
    u = np.random.default_rng(1).random(20_000)
    flips = np.mean([oracle.answer(1.0, 2.0, x) == "left" for x in u])
    assert abs(flips - 0.2) < 4 * math.sqrt(0.2 * 0.8 / len(u))  # binomial: ±4 standard errors
    assert all(oracle.answer(2.0, 2.0, x) == "equal" for x in u[:100])  # ties stay ties


def test_human_labeler_waits_for_answers_and_pauses_after_its_timeout(tmp_path):
    import threading

    path = tmp_path / "labels.csv"
    queries = {k: ClipPair(Clip(1, 0, 1 + 10 * k, 5), Clip(2, 0, 1 + 10 * k, 5), None, None) for k in range(3)}
    person = HumanLabeler("ann", poll_seconds=0.01, timeout_seconds=10)
    answers = [Label(k, q.left, q.right, "ann", "right", 1.0) for k, q in queries.items()]
    page = threading.Timer(0.2, lambda: append_labels(path, answers))
    page.start()
    person.ask(queries, ClipBank(tmp_path), path)  # writes nothing: the page answers
    person.wait(set(queries), path)  # returns once the page has written all three answers
    page.join()
    assert [lab.pair for lab in read_labels(path)] == [0, 1, 2]
    with pytest.raises(LabelsPending, match=r"1 of the 1 queries .* no answer after 0 s; answer them with "
                                            r"`trex-bench label serve .*`, then run the same command again with "
                                            r"--resume") as e:
        HumanLabeler(poll_seconds=0.01, timeout_seconds=0.05).wait({3}, path)
    assert "\n" not in str(e.value)


# -- queries by disagreement --------------------------------------------------------------------------------------
def test_disagreement_picks_the_pair_the_members_dispute():
    length = 5
    store = RolloutStore(n_envs=3, capacity=16, n_members=3)
    stacks = np.zeros((3, 4, 84, 84), np.uint8)
    store.start_games(np.ones(3, bool), stacks, np.array([1, 2, 3]), np.zeros(3, np.int64))
    # one clip per env: X (all members say 0), Y (all say +10), Z (members say +5, −5, 0)
    per_step = np.array([[0, 2, 1], [0, 2, -1], [0, 2, 0]], np.float32)  # [K, E], summed over 5 steps
    for _ in range(length):
        store.record(np.zeros((3, 84, 84), np.uint8), np.zeros(3), per_step, np.zeros(3), version=0)
    picks = select_queries(store, length, n=1, factor=30, version=0, rng=np.random.default_rng(0))
    assert len(picks) == 1 and {picks[0][0], picks[0][2]} == {0, 2}  # (X, Z): σ(±5) vs σ(0), the widest spread
    assert picks[0][5] > 0.1
    assert select_queries(store, length, n=1, factor=30, version=1, rng=np.random.default_rng(0)) == []  # stale
    one = RolloutStore(n_envs=3, capacity=16, n_members=1)  # a single net cannot disagree with itself
    one.start_games(np.ones(3, bool), stacks, np.array([1, 2, 3]), np.zeros(3, np.int64))
    for _ in range(length):
        one.record(np.zeros((3, 84, 84), np.uint8), np.zeros(3), per_step[:1], np.zeros(3), version=0)
    assert select_queries(one, length, 1, 30, 0, np.random.default_rng(0))[0][5] == 0.0


# -- clips replay the env's stacks exactly ------------------------------------------------------------------------
def test_clips_hold_exactly_the_stacks_the_env_showed(tmp_path):
    loop = make_loop(tmp_path, small_cfg(segment_length=8))
    env = loop.wrap(BrightActionEnv(n_envs=2, game_len=30))
    seen: list[np.ndarray] = []
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(50):  # crosses a game end in both envs
        obs, _, dones, infos = env.step(rng.integers(0, 2, size=2))
        reached = obs.copy()
        for i in np.flatnonzero(dones):
            reached[i] = infos[i]["terminal_observation"]
        seen.append(reached)
    seen_arr = np.stack(seen)  # [T, E, 4, 84, 84]
    env_idx, ends = loop.store.candidates(8, -1)  # not scored yet
    assert len(env_idx) > 20
    for e, end in zip(env_idx[::7], ends[::7], strict=True):
        clip = loop.store.clip(int(e), int(end), 8)
        want = seen_arr[:, e]
        got = clip_stacks(clip.frames)
        match = [t for t in range(50 - 7) if np.array_equal(want[t : t + 8], got)]
        assert match, f"clip {clip.clip.name} is not a run of the stacks env {e} reached"
        assert clip.clip.seed == 100 + e and clip.clip.length == 8 and clip.clip.start >= 1
        assert clip.true_return == float((clip.actions[-8:] == 1).sum())


# -- normalisation -----------------------------------------------------------------------------------------------
def test_normaliser_pays_zero_mean_and_the_fixed_std():
    rng = np.random.default_rng(0)
    rhat = rng.normal([[3.0], [-1.0], [0.0]], [[2.0], [0.1], [5.0]], size=(3, 4000)).astype(np.float32)
    norm = EnsembleNormalizer(3, std=0.05)
    norm.fit(rhat)
    paid = norm(rhat)
    assert abs(paid.mean()) < 1e-6 and paid.std() == pytest.approx(0.05, rel=1e-4)
    shifted = norm(rhat + 7.0)  # the statistics stay fixed until the next fit
    assert shifted.mean() > 0.05


def test_preference_loss_soft_targets_and_random_response():
    ra, rb = torch.tensor([0.0, 2.0, -1.0]), torch.tensor([1.0, 0.0, -1.0])
    hard = torch.tensor([1.0, 0.0, 1.0])
    assert preference_loss(ra, rb, hard, 0.0) == pytest.approx(float(bradley_terry_loss(ra, rb, hard.long())))
    tie = preference_loss(torch.zeros(1), torch.zeros(1), torch.tensor([0.5]), 0.1)
    assert float(tie) == pytest.approx(math.log(2))
    # with a 10 % chance of a random answer, a confidently wrong prediction costs at most −log(0.05)
    wrong = preference_loss(torch.tensor([100.0]), torch.tensor([0.0]), torch.tensor([1.0]), 0.1)
    assert float(wrong) == pytest.approx(-math.log(0.05), rel=1e-4)


# -- the loop: ask, answer, train, relabel, resume ------------------------------------------------------------------
def test_update_asks_the_due_labels_and_pays_the_normalised_reward(tmp_path):
    loop = make_loop(tmp_path, deferred=False)
    env = loop.wrap(BrightActionEnv(n_envs=2, game_len=40))
    env.reset()
    play(env, 32, np.random.default_rng(0))
    metrics = loop.update(step=64)
    due = loop.cfg.labels_due(64)
    assert due > loop.cfg.initial_labels == 15  # the first batch and the first rollout's share
    assert loop.n_asked == due and metrics["asked"] == due
    pairs = read_pairs(loop.run_dir)
    assert len(read_labels(loop.labels_path)) == due and len(pairs.pairs) == due
    assert (pairs.game, pairs.kind) == ("breakout", "online") and {p.step for p in pairs.pairs} == {64}
    named = {c.name for q in pairs.pairs for c in (q.left, q.right)}
    assert {f.stem for f in (loop.run_dir / "clips").glob("*.npz")} == named
    assert {q.left_file for q in pairs.pairs} == {None}  # the oracle answers without watching: no GIFs
    page = LabelApp(loop.run_dir, "ann")  # the page opens the loop's folder: every query answered, no clip to show
    assert (page.state()["labelled"], page.state()["next"], page.clip(0, "left")) == (due, None, None)
    assert loop.pretrained and loop.version == 1 and metrics["train_pairs"] == math.ceil(1 * loop.n_used)
    obs = env.reset()
    _, paid, _, infos = env.step(np.array([0, 1]))
    reached = obs[:, 1:]  # the stacks the step reached: shifted by one new frame
    assert np.array_equal(env.step_log[-1][0], loop.store.head - 1)
    assert np.allclose(paid, loop.normalizer(loop.ensemble.score(loop.store.stacks(np.arange(2), loop.store.head - 1))))
    assert np.array_equal(loop.store.stacks(np.arange(2), loop.store.head - 1)[:, :3], reached)
    assert infos[0]["learned_reward"] == pytest.approx(paid[0]) and infos[0]["true_reward"] == 0.0
    assert loop.update(step=96)["labels_due"] == loop.cfg.labels_due(96)


def test_labels_and_nets_survive_a_kill(tmp_path):
    loop = make_loop(tmp_path)
    env = loop.wrap(BrightActionEnv())
    env.reset()
    play(env, 32, np.random.default_rng(0))
    loop.update(step=64)
    play(env, 32, np.random.default_rng(1))
    loop.update(step=128)
    loop.save(tmp_path / "ckpt")
    asked, used, buffer_pairs = loop.n_asked, loop.n_used, [lab.pair for lab in loop.buffer.labels]
    tensors = loop.ensemble.tensors()
    # killed here; the run goes on in a new process from the checkpoint and the run folder
    with pytest.raises(ConfigError, match="resume"):
        make_loop(tmp_path)
    again = make_loop(tmp_path, seed=5, resume=True)
    again.load(tmp_path / "ckpt")
    assert (again.n_asked, again.n_used) == (asked, used)
    assert [lab.pair for lab in again.buffer.labels] == buffer_pairs
    assert np.array_equal(again.buffer.weights, loop.buffer.weights)
    restored = again.ensemble.tensors()
    assert all(torch.equal(restored[k], v) for k, v in tensors.items()) and tensors.keys() == restored.keys()
    assert again.rng.bit_generator.state == loop.rng.bit_generator.state
    env2 = again.wrap(BrightActionEnv(seed=3))
    env2.reset()
    play(env2, 32, np.random.default_rng(2))
    again.update(step=1000)
    pairs = [lab.pair for lab in read_labels(again.labels_path)]
    assert pairs == list(range(again.n_asked)) and again.n_asked == again.cfg.labels_due(1000) > asked


def test_the_saved_reward_scores_as_the_loop_paid(tmp_path):
    """``load_paid_reward`` (what ``extrapolation --prefs-run`` scores) pays exactly what the loop paid PPO."""
    loop = make_loop(tmp_path, deferred=False)
    env = loop.wrap(BrightActionEnv(n_envs=2, game_len=40))
    env.reset()
    play(env, 32, np.random.default_rng(0))
    loop.update(step=64)
    loop.save(tmp_path / "online")
    stacks = loop.store.stacks(np.arange(2), loop.store.head - 1)
    paid = load_paid_reward(tmp_path / "online", "breakout", loop.cfg)
    assert np.allclose(paid.per_frame(torch.from_numpy(stacks)).numpy(), loop.normalizer(loop.ensemble.score(stacks)))
    assert paid.game.id == "breakout"
    with pytest.raises(ConfigError, match="another game or config"):
        load_paid_reward(tmp_path / "online", "breakout", small_cfg(ensemble_size=2))
    with pytest.raises(DataError, match="not a preference-loop state"):
        load_paid_reward(tmp_path, "breakout", loop.cfg)


def test_a_run_killed_before_its_first_checkpoint_keeps_its_labels(tmp_path):
    loop = make_loop(tmp_path)
    env = loop.wrap(BrightActionEnv())
    env.reset()
    play(env, 32, np.random.default_rng(0))
    loop.update(step=64)
    again = make_loop(tmp_path, resume=True)  # no checkpoint: fresh nets, the answers from labels.csv
    env2 = again.wrap(BrightActionEnv(seed=1))
    env2.reset()
    play(env2, 32, np.random.default_rng(1))
    metrics = again.update(step=64)
    assert again.n_used == loop.n_used and metrics["answered"] == loop.n_asked and "asked" not in metrics
    assert again.pretrained  # pretrained on the labels it found
    clip, before = again.buffer.labels[0].left, again.labels_path.read_bytes()
    append_labels(again.labels_path, [Label(again.n_asked, clip, Clip(9, 9, 9, 4), "ann", "left", 1.0)])
    with pytest.raises(DataError, match=rf"labels.csv: pair {again.n_asked} names clips \({clip.seed}, .*\) and "
                                        r"\(9, 9, 9, 4\), but the pairs folder has"):
        again.update(step=128)  # an answer naming clips the query it answers does not show
    again.labels_path.write_bytes(before)
    append_labels(again.labels_path, [Label(10_000, clip, clip, "ann", "left", 1.0)])
    with pytest.raises(DataError, match=r"labels.csv: pair 10000 is not among the \d+ breakout pairs"):
        make_loop(tmp_path, resume=True)  # a pair this run never asked


# -- a person on the labeling page answers the loop's own queries --------------------------------------------------
def _http(url: str, body: dict | None = None) -> tuple[int, str, bytes]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers["Content-Type"], r.read()


class PersonAtThePage:
    """Waits for the loop's ``pairs.json`` under ``root``, serves that folder with the page's server (as
    ``trex-bench label serve ROOT`` does) and answers every pair the page shows over its HTTP API, by the rule
    ``choose(pair) -> answer``; each answer is sent twice (a double submit)."""

    def __init__(self, root, choose) -> None:
        self.root, self.choose, self.sent, self.errors = root, choose, [], []
        self.server = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            deadline = time.monotonic() + 30
            while not list(self.root.glob("**/pairs.json")) and time.monotonic() < deadline:
                time.sleep(0.01)
            self.server = make_server(LabelApp(find_pairs_folder(self.root), "ann"), "127.0.0.1", 0)
            threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
            self.answer_all()
        except Exception as e:  # handed to the test's thread
            self.errors.append(e)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def answer_all(self) -> None:
        state = json.loads(_http(self.base + "/api/state")[2])
        while state["next"] is not None:
            nxt = state["next"]
            for side in ("left", "right"):  # both GIFs were rendered when the loop asked
                status, kind, gif = _http(f"{self.base}/{nxt[side]['url']}")
                assert status == 200 and kind == "image/gif" and gif.startswith(b"GIF89a")
            body = dict(pair=nxt["pair"], answer=self.choose(nxt["pair"]), left=nxt["left"]["clip"],
                        right=nxt["right"]["clip"])
            first = json.loads(_http(self.base + "/api/label", body)[2])
            again = json.loads(_http(self.base + "/api/label", body | {"answer": "equal"})[2])
            self.sent.append((nxt["pair"], body["answer"], first["recorded"], again["recorded"]))
            state = first["state"]

    def close(self) -> None:
        self.thread.join(30)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.errors:
            raise self.errors[0]


def test_a_person_answers_the_loops_queries_on_the_page_and_the_loop_trains_on_exactly_those(tmp_path):
    """The loop (fake env, ``HumanLabeler``) asks its first batch and waits; a client answers it through the page's
    HTTP API; the loop trains on exactly those answers. A later query does not block; its answer is used next round."""
    cfg = small_cfg(total_labels=4, initial_share=0.5, pretrain_epochs=4, batch_pairs=4, train_pairs_per_step=0.005)
    loop = make_loop(tmp_path, cfg, labeler=HumanLabeler("ann", poll_seconds=0.01, timeout_seconds=60))
    untrained = copy.deepcopy(loop.ensemble.members)
    env = loop.wrap(BrightActionEnv(n_envs=2, game_len=40))
    env.reset()
    play(env, 32, np.random.default_rng(0))
    person = PersonAtThePage(tmp_path, choose=lambda pair: ("right", "left", "left")[pair])
    person.thread.start()
    try:
        metrics = loop.update(step=64)  # asks 2 queries, waits for their answers, trains
        person.thread.join(30)
        assert person.sent == [(0, "right", True, False), (1, "left", True, False)]  # the double submits: no-ops
        labels = read_labels(loop.labels_path)
        assert [(lab.pair, lab.answer, lab.labeler) for lab in labels] == [(0, "right", "ann"), (1, "left", "ann")]
        assert loop.buffer.labels == list(labels) and loop.buffer.targets(np.arange(2)).tolist() == [1.0, 0.0]
        assert metrics["answered"] == 2 and loop.n_used == 2 and loop.pretrained and loop.version == 1
        # and trained on them: each net's cross-entropy on its bootstrap sample of exactly these answers fell
        pairs = read_pairs(loop.run_dir).pairs
        frames = np.stack([loop.bank.get(c).frames for q in pairs for c in (q.left, q.right)])
        stacks = torch.as_tensor(np.ascontiguousarray(clip_stacks(frames)).reshape(-1, 4, 84, 84))

        def sample_loss(net, k: int) -> float:
            with torch.no_grad():
                r = net(stacks).reshape(len(pairs), 2, -1).sum(-1)
            p_right = torch.sigmoid(r[:, 1] - r[:, 0]).numpy()
            target, w = np.array([1.0, 0.0]), loop.buffer.weights[k]
            ce = -(target * np.log(p_right) + (1 - target) * np.log(1 - p_right))
            return float((w * ce).sum() / w.sum())

        assert all(w.sum() > 0 for w in loop.buffer.weights)
        for k, (old, new) in enumerate(zip(untrained, loop.ensemble.members, strict=True)):
            assert sample_loss(new, k) < sample_loss(old, k), k
        # what the page showed is the clip the nets trained on: the GIF's first frame is the clip's first observation
        from PIL import Image

        gif = _http(f"{person.base}/clip/0/left")[2]
        with Image.open(io.BytesIO(gif)) as im:
            np.testing.assert_array_equal(np.asarray(im.convert("L"))[::3, ::3], loop.bank.get(pairs[0].left).frames[3])
        # later: a new query never blocks PPO; its answer, given whenever, is read at the next round
        play(env, 32, np.random.default_rng(1))
        assert loop.update(step=1000)["asked"] == 1 and loop.n_used == 2
        person.answer_all()
        play(env, 32, np.random.default_rng(2))
        assert loop.update(step=1064)["answered"] == 1 and loop.n_used == 3
        assert loop.buffer.labels[-1] == read_labels(loop.labels_path)[2] and loop.buffer.labels[-1].answer == "left"
    finally:
        person.close()


def test_a_run_waiting_too_long_for_answers_pauses_and_resumes_with_them(tmp_path):
    from stable_baselines3 import PPO

    cfg = small_cfg(total_labels=4, initial_share=0.5)
    impatient = HumanLabeler("ann", poll_seconds=0.01, timeout_seconds=0.1)
    loop = make_loop(tmp_path, cfg, labeler=impatient)
    model = PPO("CnnPolicy", loop.wrap(BrightActionEnv()), n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    with pytest.raises(LabelsPending) as e:
        model.learn(256, callback=loop.callback())
    message = str(e.value)
    assert "\n" not in message and message.startswith("paused: 2 of the 2 queries the run waits for")
    assert f"`trex-bench label serve {loop.run_dir}`" in message and "again with --resume" in message
    assert model.num_timesteps == 64  # stopped at the first rollout's end, before PPO's first update
    # nothing half-written: every query's clips (data and GIF) are whole, no answer yet, no temporary file
    pairs = read_pairs(loop.run_dir)
    clips = {c for q in pairs.pairs for c in (q.left, q.right)}
    want = {f"{c.name}.npz" for c in clips} | {f"{c.name}.gif" for c in clips}
    assert len(pairs.pairs) == 2 and {p.name for p in (loop.run_dir / "clips").iterdir()} == want
    assert sorted(p.name for p in loop.run_dir.iterdir()) == ["clips", "pairs.json"]
    # the person answers while the run is paused (the page's app), and the run goes on from its folder
    app = LabelApp(loop.run_dir, "ann")
    for answer in ("left", "equal"):
        nxt = app.state()["next"]
        app.answer(dict(pair=nxt["pair"], answer=answer, left=nxt["left"]["clip"], right=nxt["right"]["clip"]))
    with pytest.raises(ConfigError, match="resume"):
        make_loop(tmp_path, cfg, labeler=impatient)
    again = make_loop(tmp_path, cfg, resume=True, labeler=impatient)
    model = PPO("CnnPolicy", again.wrap(BrightActionEnv(seed=1)), n_steps=32, batch_size=64, n_epochs=1, seed=0,
                device="cpu")
    model.learn(128, callback=again.callback())
    assert model.num_timesteps == 128 and again.pretrained and again.n_asked == 2
    assert [(lab.pair, lab.answer) for lab in again.buffer.labels] == [(0, "left"), (1, "equal")]


def test_the_loop_refuses_a_pairs_folder_of_another_game_or_of_a_demo_set(tmp_path):
    query = ClipPair(Clip(1, 0, 1, 4), Clip(2, 0, 1, 4), None, None, step=64)
    write_pairs(tmp_path / "run", PairSet("pong", {"kind": "online"}, (query,)))
    with pytest.raises(DataError, match="holds pong queries, but this run plays breakout"):
        make_loop(tmp_path, resume=True)
    write_pairs(tmp_path / "run", PairSet("breakout", {"kind": "demos", "path": "d", "content_hash": "x"}, (query,)))
    with pytest.raises(DataError, match="pairs of a demo set, not the online loop's queries"):
        make_loop(tmp_path, resume=True)


# -- end to end: PPO with the wrapper and the callback ----------------------------------------------------------
def test_ppo_with_the_loop_learns_what_the_oracle_prefers(tmp_path):
    from stable_baselines3 import PPO
    from stable_baselines3.common.logger import configure

    cfg = small_cfg(horizon_steps=256, total_labels=40, pretrain_epochs=2, train_pairs_per_step=0.2)
    loop = make_loop(tmp_path, cfg, deferred=False)
    env = loop.wrap(BrightActionEnv(n_envs=2, game_len=40))
    model = PPO("CnnPolicy", env, n_steps=32, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.set_logger(configure(str(tmp_path / "tb"), ["csv"]))
    model.learn(256, callback=loop.callback())
    assert isinstance(loop, OnlineReward)
    assert loop.deferred and loop.n_asked == 40 and loop.n_used > 25 and loop.version == 4  # one update a rollout
    card = loop.card()
    assert card["labels_used"] == loop.n_used and card["accuracy"] is not None
    logged = (tmp_path / "tb" / "progress.csv").read_text().splitlines()[0]
    assert "prefs/accuracy" in logged and "prefs/disagreement" in logged
    # PPO's last update learned from the paid reward: zero mean, the fixed std over the rollout
    rewards = model.rollout_buffer.rewards
    assert abs(rewards.mean()) < 1e-6 and rewards.std() == pytest.approx(cfg.reward_std, rel=1e-3)
    # learning signal: on fresh clips the ensemble orders pairs as the oracle (the true score) does
    probe = make_loop(tmp_path / "probe")
    wrapped = probe.wrap(BrightActionEnv(n_envs=4, game_len=1000, seed=7))
    wrapped.reset()
    play(wrapped, 60, np.random.default_rng(3))
    envs, ends = probe.store.candidates(4, -1)
    pick = np.random.default_rng(4).choice(len(envs), size=120, replace=False)
    clips = [probe.store.clip(int(envs[k]), int(ends[k]), 4) for k in pick]
    true = np.array([c.true_return for c in clips])
    a, b = np.arange(0, 120, 2), np.arange(1, 120, 2)
    strict = true[a] != true[b]

    def agreement(ensemble) -> float:
        with torch.no_grad():
            pred = np.mean([ensemble.clip_returns(m, np.stack([c.frames for c in clips])).numpy() for m in range(3)], 0)
        return float(((pred[b] > pred[a]) == (true[b] > true[a]))[strict].mean())

    # measured: trained 0.79 (a 4-step clip's first stacks hold 3 frames from before it), untrained 0.03
    trained, untrained = agreement(loop.ensemble), agreement(probe.ensemble)
    assert trained > 0.7 and trained > untrained + 0.3, (trained, untrained)


# -- one real-ALE check: a clip's id and actions replay its frames --------------------------------------------------
def test_a_clip_replays_exactly_on_the_ale(tmp_path):
    from trex_bench.core.envs import make_vec_env
    from trex_bench.core.types import Episode
    from trex_bench.demos.replay import replay

    loop = make_loop(tmp_path, small_cfg(segment_length=25, recent_steps=400))
    env = loop.wrap(make_vec_env("breakout", 2, seed=3, training=True))
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(300):
        env.step(rng.integers(0, 4, size=2))
    envs, ends = loop.store.candidates(25, -1)  # not scored yet
    ids = [loop.store.clip_id(int(e), int(x), 25) for e, x in zip(envs, ends, strict=True)]
    k = max(range(len(ids)), key=lambda k: (ids[k].reset, ids[k].start))  # a later game of the chain if any
    data = loop.store.clip(int(envs[k]), int(ends[k]), 25)
    c = data.clip
    ep = Episode(seed=c.seed, actions=data.actions, rewards=np.zeros(len(data.actions), np.float32),
                 hash_steps=np.zeros(0, np.int64), frame_hashes=np.zeros(0, np.uint64), reset_index=c.reset)
    frames = replay(ep, "breakout")  # the newest frame of every observation, the reset observation first
    assert np.array_equal(frames[c.start : c.start + 25], data.frames[3:])  # observations start … start + 24
    env.close()
