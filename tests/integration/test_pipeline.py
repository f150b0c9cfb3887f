"""Integration: the smoke pipeline end to end, --resume, one leaderboard row, bad input, PPO-checkpoint demos."""

import csv
import json

import pytest

from trex_bench.experiment.naming import run_name
from trex_bench.experiment.options import PipelineConfig
from trex_bench.experiment.pipeline import default_demos, run_pipeline

# The scripted player's set: short episodes and no unseen split, so a smoke run tests the pipeline's mechanics in
# seconds (the default set, ppo-checkpoints, adds the extrapolation stage: the quickstart's test runs that path).
SCRIPTED = default_demos("breakout").parent / "scripted-noise"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    cfg = PipelineConfig(game="breakout", method="trex", budget="smoke", seed=0, demos=SCRIPTED)
    summary = run_pipeline(cfg.resolve(), out=root / "run", leaderboard=root / "lb.csv", progress=False, cache_dir=root / "cache")
    return root, cfg, summary


def test_smoke_pipeline_writes_complete_run_folder(smoke_run):
    root, _, summary = smoke_run
    run = root / "run"
    for f in ["reward/model.safetensors", "reward/card.json", "fidelity/fidelity.json", "fidelity/fidelity.png",
              "agent/agent.zip", "agent/card.json", "eval/eval.json", "summary.json"]:
        assert (run / f).exists(), f
    for stage in ["reward", "fidelity", "agent", "eval"]:
        assert (run / stage / "stage.json").exists()
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")], "temporary stage folders left behind"
    assert summary["reused_stages"] == []


def test_exactly_one_well_formed_leaderboard_row(smoke_run):
    root, _, summary = smoke_run
    from trex_bench.evaluation.leaderboard import COLUMNS

    with open(root / "lb.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1
    row = rows[0]
    assert tuple(row) == COLUMNS
    assert row["game"] == "breakout" and row["method"] == "trex" and row["budget"] == "smoke"
    assert int(row["n_episodes"]) == 2 and float(row["best_demo"]) == 23.0
    assert row["git_commit"] and row["config_hash"] and float(row["wall_s"]) > 0
    assert -1.0 <= float(row["fidelity_spearman"]) <= 1.0
    # the fidelity figures are the fidelity stage's own (issue 14: the row builder read keys the report lacks)
    fid = json.loads((root / "run" / "fidelity" / "fidelity.json").read_text())
    assert float(row["fidelity_spearman"]) == pytest.approx(fid["correlations"]["pred_mean"]["spearman"])
    assert float(row["pair_accuracy"]) == pytest.approx(fid["pairwise"]["accuracy"])
    config = json.loads((root / "run" / "config.json").read_text())  # the resolved experiment, in every run folder
    from trex_bench.core.io import stable_hash as config_hash

    assert config["reward"]["n_pairs"] == 200 and row["config_hash"] == config_hash(config | {"device": None})
    from trex_bench.experiment.budgets import ppo_config

    assert int(row["schedule_steps"]) == ppo_config("smoke").horizon and row["time_capped"] == "false"


def test_resume_skips_finished_stages(smoke_run):
    root, cfg, first = smoke_run
    again = run_pipeline(cfg.resolve(), out=root / "run", resume=True, leaderboard=None, progress=False, cache_dir=root / "cache")
    assert again["reused_stages"] == ["reward", "fidelity", "agent", "eval"]
    assert again["row"]["mean"] == first["row"]["mean"]


def test_resuming_a_finished_run_appends_no_second_row(smoke_run):
    """D14: `pipeline --resume` on a finished run reuses it and leaves the leaderboard as it was."""
    root, cfg, first = smoke_run
    before = (root / "lb.csv").read_bytes()
    again = run_pipeline(cfg.resolve(), out=root / "run", resume=True, leaderboard=root / "lb.csv", progress=False,
                         cache_dir=root / "cache")
    assert (root / "lb.csv").read_bytes() == before
    assert "already in" in again["leaderboard_note"] and again["row"]["run_id"] == first["row"]["run_id"]


def test_a_run_killed_between_its_row_and_its_summary_appends_no_second_row(smoke_run, tmp_path, monkeypatch):
    """The row is appended, then summary.json written: a kill between the two left a run that looked unfinished,
    and its resume appended a second row of the same run."""
    import shutil
    from pathlib import Path

    import trex_bench.experiment.pipeline as pipeline
    from trex_bench.core.io import write_json as real

    root, cfg, _ = smoke_run
    run, board = tmp_path / "run", tmp_path / "lb.csv"
    shutil.copytree(root / "run", run)
    (run / "summary.json").unlink()

    def killed(path, obj):
        if Path(path).name == "summary.json":
            raise KeyboardInterrupt
        real(path, obj)

    monkeypatch.setattr(pipeline, "write_json", killed)
    with pytest.raises(KeyboardInterrupt):
        run_pipeline(cfg.resolve(), out=run, resume=True, leaderboard=board, progress=False, cache_dir=root / "cache")
    monkeypatch.undo()
    summary = run_pipeline(cfg.resolve(), out=run, resume=True, leaderboard=board, progress=False,
                           cache_dir=root / "cache")
    with open(board, newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in rows] == [summary["row"]["run_id"]]
    assert not (run / pipeline.PENDING_ROW).exists()


def test_existing_run_folder_needs_resume(smoke_run):
    root, cfg, _ = smoke_run
    with pytest.raises(ValueError, match="--resume"):
        run_pipeline(cfg.resolve(), out=root / "run", leaderboard=None, progress=False)


def test_changed_config_refused_not_overwritten(smoke_run):
    root, _, _ = smoke_run
    other = PipelineConfig(game="breakout", method="trex", budget="smoke", seed=1, demos=SCRIPTED)
    before = (root / "run" / "reward" / "stage.json").read_bytes()
    with pytest.raises(ValueError, match="another config"):
        run_pipeline(other.resolve(), out=root / "run", resume=True, leaderboard=None, progress=False, cache_dir=root / "cache")
    assert (root / "run" / "reward" / "stage.json").read_bytes() == before


@pytest.mark.parametrize(("kw", "msg"), [(dict(method="sac"), "unknown method"),
                                         (dict(budget="huge"), "unknown budget"), (dict(game="zork"), "unknown game"),
                                         (dict(method="drex", ranking="human"), "ranks its rollouts by noise"),
                                         (dict(method="prefs", ranking="human"), "applies to trex, not prefs"),
                                         (dict(method="constant", ranking="checkpoint"), "applies to trex"),
                                         (dict(transform="tanh"), "unknown reward transform"),
                                         (dict(method="constant", transform="delta"), "applies to a learned reward"),
                                         (dict(ranking="human"), "go together"),
                                         (dict(human_labels="labels.csv"), "go together")])
def test_bad_config(kw, msg):
    args = dict(game="breakout", method="trex", budget="smoke") | kw
    with pytest.raises(ValueError, match=msg):
        PipelineConfig(**args).resolve()


def test_run_names_tell_experiments_apart():
    def name(**kw) -> str:
        return run_name(PipelineConfig(**(dict(game="Breakout", method="trex", budget="small") | kw)).resolve())

    assert name() == "breakout-trex-small-s0" == name(demos=default_demos("breakout"))
    assert name(ranking="checkpoint", transform="delta", demos="demos/breakout/scripted-noise", seed=2) == \
        "breakout-trex-checkpoint-delta-scripted-noise-small-s2"
    assert name(method="constant") == "breakout-constant-small-s0"  # no ranking to name
    names = {name(), name(transform="delta"), name(ranking="checkpoint"), name(demos="demos/breakout/scripted-noise")}
    assert len(names) == 4


def test_human_labels_reach_the_reward_net(tmp_path):
    """--ranking human: the labels (checkpoint numbers of the demo set) train the net and key its stage."""
    labels = tmp_path / "labels.csv"
    labels.write_text("A,B,label\n0,11,1\n7,2,0\n4,9,1\n")  # 11 ≻ 0, 7 ≻ 2, 9 ≻ 4
    cfg = PipelineConfig(game="breakout", method="trex", budget="smoke", ranking="human", human_labels=labels,
                         demos=default_demos("breakout"))
    with pytest.raises(ValueError, match="do not exist"):
        run_pipeline(PipelineConfig(**(vars(cfg) | {"human_labels": tmp_path / "none.csv"})).resolve(), out=tmp_path / "x",
                     leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    summary = run_pipeline(cfg.resolve(), out=tmp_path / "run", leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    card = json.loads((tmp_path / "run" / "reward" / "card.json").read_text())
    assert card["ranking"]["source"] == "human" and card["ranking"]["n_pairs"] == 3
    assert summary["row"]["ranking_source"] == "human"
    stage = json.loads((tmp_path / "run" / "reward" / "stage.json").read_text())
    assert len(stage["key_of"]["human_labels"]) == 16


def test_default_demos_exist_and_verify():
    from trex_bench.demos.store import load_demos

    ds = load_demos(default_demos("breakout"))
    assert len(ds.episodes) == 12 and ds.returns.max() == 15, "the T-REX protocol's 12 checkpoints, not scripted-noise"
    assert default_demos("pong").name == default_demos("breakout").name == "ppo-checkpoints"
    with pytest.raises(ValueError, match="no committed demo set for mspacman"):
        default_demos("mspacman")


@pytest.mark.parametrize("game", ["breakout", "pong"])
def test_a_drex_run_learns_from_its_own_demonstrator_without_demos(game):
    """D-REX clones one demonstrator's episodes (demos/<game>/drex-demos), not T-REX's 12 ranked checkpoints: a run
    without --demos reads that set, and naming it is the same run as leaving it out."""
    from trex_bench.experiment.naming import run_name
    from trex_bench.experiment.pipeline import check_inputs

    demos_dir, demos, _ = check_inputs(PipelineConfig(game=game, method="drex", budget="small").resolve())
    assert demos_dir.name == "drex-demos" and len(demos.episodes) == 10
    assert check_inputs(PipelineConfig(game=game, method="bc", budget="small").resolve())[0].name == "ppo-checkpoints"
    named = PipelineConfig(game=game, method="drex", budget="small", demos=demos_dir).resolve()
    assert run_name(named) == run_name(PipelineConfig(game=game, method="drex", budget="small").resolve())
    assert run_name(named) == f"{game}-drex-small-s0"


def test_checkpoint_demonstrator_tags_episodes(smoke_run):
    root, _, _ = smoke_run
    from trex_bench.experiment.demonstrators import collect_from_checkpoints, list_checkpoints, select_checkpoints

    agent = root / "run" / "agent" / "agent.zip"
    ds = collect_from_checkpoints("breakout", [agent, agent], 1, seed=0, progress=False)
    assert [e.checkpoint for e in ds.episodes] == [0, 1]
    from trex_bench.experiment.demonstrators import Checkpoint

    later = collect_from_checkpoints("breakout", [Checkpoint(13, 260_000, agent)], 2, seed=0, n_envs=2, progress=False)
    assert [e.checkpoint for e in later.episodes] == [13, 13]  # the run's numbering, shared with the demo set
    (root / "ck" / "checkpoints").mkdir(parents=True)
    for steps in (300, 20, 1000):
        (root / "ck" / "checkpoints" / f"ppo_{steps}_steps.zip").write_bytes(b"")
    assert [s for s, _ in list_checkpoints(root / "ck" / "checkpoints")] == [20, 300, 1000]
    later = select_checkpoints(root / "ck", count=2, skip=1)
    assert [(c.index, c.steps) for c in later] == [(1, 300), (2, 1000)]
    with pytest.raises(ValueError, match="has 3 checkpoints"):
        select_checkpoints(root / "ck", count=3, skip=1)
    with pytest.raises(ValueError, match="no final agent"):
        select_checkpoints(root / "ck", count=1, final=True)


def test_drex_and_bc_pipelines_at_smoke_budget(tmp_path):
    """D-REX end to end (BC → noise rollouts ranked by ε → reward → PPO → eval), then BC as a method and KL-to-BC."""
    from trex_bench.core.types import NOOP_NOISE
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.drex import NOOP_EPISODES, NOOP_STEPS

    lb = tmp_path / "lb.csv"
    drex = run_pipeline(PipelineConfig(game="breakout", method="drex", budget="smoke", demos=SCRIPTED).resolve(),
                        out=tmp_path / "drex",
                        leaderboard=lb, progress=False, cache_dir=tmp_path / "cache")
    rollouts = load_demos(tmp_path / "drex" / "noise-rollouts" / "demos")
    assert {e.noise for e in rollouts.episodes} == {0.0, 1.0, 0.75, 0.5, 0.25, 0.01, NOOP_NOISE}  # the released list
    assert "epsilon-greedy(0.01) around bc" in rollouts.demonstrator and "(argmax)" in rollouts.demonstrator
    noop = [e for e in rollouts.episodes if e.noise == NOOP_NOISE]
    assert noop and all(not e.actions.any() for e in noop), "the no-op bin only presses NOOP"
    assert len(noop) == NOOP_EPISODES and max(e.length for e in noop) <= NOOP_STEPS, "the released no-op bin"
    curve = (tmp_path / "drex" / "noise-rollouts" / "degradation.csv").read_text().splitlines()
    assert [row.split(",")[0] for row in curve] == ["demos", "0.01", "0.25", "0.5", "0.75", "1.0"], \
        "the no-op bin is not an ε of the degradation curve"
    assert read_card(tmp_path / "drex" / "reward")["arch"] == "drex"
    assert drex["row"]["fidelity_spearman"] is not None
    assert drex["row"]["ranking_source"] == "noise", "the row names the ranking the net was trained on"
    bc = run_pipeline(PipelineConfig(game="breakout", method="bc", budget="smoke", demos=SCRIPTED).resolve(),
                      out=tmp_path / "bc",
                      leaderboard=lb, progress=False, cache_dir=tmp_path / "cache")
    assert bc["row"]["rl_steps"] == 0 and bc["row"]["n_episodes"] == 2
    kl = run_pipeline(PipelineConfig(game="breakout", method="constant", budget="smoke", kl_to=tmp_path / "bc" / "bc",
                                     kl_beta=0.1).resolve(), out=tmp_path / "kl", leaderboard=lb, progress=False)
    assert read_card(tmp_path / "kl" / "agent")["kl_beta"] == 0.1
    assert kl["row"]["reward_transform"] == "constant+kl0.1"
    with open(lb, newline="") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["drex", "bc", "constant"]


def read_card(folder):
    from trex_bench.core.io import read_json

    return read_json(folder / "card.json")


@pytest.mark.parametrize("kw", [dict(kl_beta=0.1), dict(kl_to="x"), dict(kl_to="x", kl_beta=-1.0), dict(method="bc", kl_to="x", kl_beta=0.1)])
def test_bad_kl_options(kw):
    args = dict(game="breakout", method="trex", budget="smoke") | kw
    with pytest.raises(ValueError):
        PipelineConfig(**args).resolve()


@pytest.mark.parametrize("name", ["scripted-noise", "ppo-checkpoints"])
def test_committed_demo_sets_replay_exactly(name):
    from trex_bench.demos.replay import verify_demos
    from trex_bench.demos.store import load_demos
    from trex_bench.experiment.pipeline import REPO_DEMOS

    ds = load_demos(REPO_DEMOS / "breakout" / name)
    results = verify_demos(ds)
    assert len(results) == 12 and all(r.ok for r in results), [r for r in results if not r.ok]
    if name == "ppo-checkpoints":  # the papers' protocol: one episode from each of 12 checkpoints, in order
        assert [e.checkpoint for e in ds.episodes] == list(range(12))


def test_an_interrupted_ppo_stage_goes_on_from_its_newest_checkpoint(tmp_path, monkeypatch):
    """A session's end kills a run mid-PPO; `pipeline --resume` (what `sweep` runs) goes on from the last checkpoint of
    the interrupted `.agent.tmp` made with the same key, and refuses one made with another (hours of PPO: never dropped
    unasked)."""
    import dataclasses
    import shutil

    from trex_bench.core.errors import RunFolderError
    from trex_bench.core.io import read_json
    from trex_bench.experiment.budgets import BUDGETS
    from trex_bench.experiment.run_folder import PARTIAL_KEY
    from trex_bench.rl.config import PPOConfig

    tiny = PPOConfig("smoke", total_steps=128, n_envs=2, n_steps=16, batch_size=16, n_epochs=1, checkpoint_every=48)
    monkeypatch.setitem(BUDGETS, "smoke", dataclasses.replace(BUDGETS["smoke"], ppo=tiny))
    cfg = PipelineConfig(game="breakout", method="constant", budget="smoke", seed=0, eval_episodes=1)
    done = tmp_path / "done"
    run_pipeline(cfg.resolve(), out=done, leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    key = read_json(done / "agent" / "stage.json")["key"]

    def interrupted(name: str, partial_key: str):
        """The run folder as a kill after the first checkpoint leaves it."""
        run = tmp_path / name
        run.mkdir()
        shutil.copy(done / "config.json", run / "config.json")
        tmp = run / ".agent.tmp"
        shutil.copytree(done / "agent", tmp)
        for f in ("stage.json", "card.json", "agent.zip", "checkpoints/ppo_96_steps.zip"):
            (tmp / f).unlink()
        (tmp / PARTIAL_KEY).write_text(partial_key)
        return run

    run = interrupted("cut", key)
    summary = run_pipeline(cfg.resolve(), out=run, resume=True, leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    assert "agent" not in summary["reused_stages"]
    card = read_json(run / "agent" / "card.json")
    assert (card["resumed_from"], card["steps"]) == (32, 128)  # the checkpoint at 48 holds the update at 32
    assert not (run / "agent" / PARTIAL_KEY).exists() and not (run / ".agent.tmp").exists()

    # An `auto` run goes on in the precision it started in, where a new probe (another load) would choose otherwise:
    # the mode that runs keys the stage, so a new choice would make the run another config's.
    import trex_bench.rl.ppo as ppo
    import trex_bench.rl.precision as precision

    real = precision.resolve_precision
    choose = {"auto": "fp32"}

    def probe(mode, device="cpu", cache=True):
        return (choose["auto"], {"asked": "auto"}) if mode == "auto" else real(mode, device, cache)

    monkeypatch.setattr(precision, "resolve_precision", probe)
    monkeypatch.setattr(ppo, "resolve_precision", probe)
    auto = dataclasses.replace(cfg, precision="auto")
    run_pipeline(auto.resolve(), out=tmp_path / "auto-done", leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    done, key = tmp_path / "auto-done", read_json(tmp_path / "auto-done" / "agent" / "stage.json")["key"]
    run = interrupted("auto-cut", key)
    choose["auto"] = "bf16"
    run_pipeline(auto.resolve(), out=run, resume=True, leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    card = read_json(run / "agent" / "card.json")
    assert (card["resumed_from"], card["precision"]) == (32, "fp32")

    other = interrupted("other", "0" * 16)  # made for another config: refused, as a finished stage of one is
    kept = sorted(p.name for p in (other / ".agent.tmp" / "checkpoints").iterdir())
    with pytest.raises(RunFolderError, match="unfinished run of another config .* delete .agent.tmp to start it"):
        run_pipeline(cfg.resolve(), out=other, resume=True, leaderboard=None, progress=False, cache_dir=tmp_path / "cache")
    assert sorted(p.name for p in (other / ".agent.tmp" / "checkpoints").iterdir()) == kept


def test_prefs_runs_end_to_end_with_its_labels_in_the_run_folder(tmp_path):
    """The online preference loop as a method: its queries and answers in the agent folder, its facts in the card,
    a leaderboard row; the same command resumed appends nothing and keeps every label."""
    from trex_bench.core.io import read_json

    cfg = PipelineConfig(game="breakout", method="prefs", budget="smoke", eval_episodes=1).resolve()
    assert cfg.prefs is not None and cfg.prefs.total_labels == 50 and cfg.prefs.horizon_steps == cfg.ppo.total_steps
    kw = dict(out=tmp_path / "run", leaderboard=tmp_path / "lb.csv", progress=False, cache_dir=tmp_path / "cache")
    summary = run_pipeline(cfg, **kw)
    labels = (tmp_path / "run" / "agent" / "prefs" / "labels.csv").read_text().splitlines()
    assert len(labels) == 1 + 50 and all(",synthetic," in row for row in labels[1:])
    card = read_json(tmp_path / "run" / "agent" / "card.json")
    assert card["reward"]["source"] == "online" and card["online_reward"]["labels_used"] == 50
    assert (tmp_path / "run" / "agent" / card["online_reward"]["pairs"] / "pairs.json").is_file()  # not the temp path
    assert summary["row"]["method"] == "prefs" and summary["row"]["reward_transform"] == "normalized"
    again = run_pipeline(cfg, resume=True, **kw)
    assert "leaderboard_note" in again
    assert (tmp_path / "run" / "agent" / "prefs" / "labels.csv").read_text().splitlines() == labels
    with open(tmp_path / "lb.csv", newline="") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["prefs"]


@pytest.mark.parametrize("kw", [dict(method="trex", labeler="human"), dict(method="constant", label_noise=0.1),
                                dict(method="prefs", label_noise=0.7), dict(method="prefs", labeler="robot")])
def test_preference_options_are_checked_before_anything_runs(kw):
    with pytest.raises(ValueError):
        PipelineConfig(**(dict(game="breakout", budget="smoke") | kw)).resolve()


def test_a_human_labelled_prefs_run_pauses_for_answers_and_resumes_with_them(tmp_path):
    """--labeler human: the run waits for the first batch on the page, pauses after the timeout (one line saying how
    to go on, nothing lost), and the same command with resume goes on with the answers a person gave meanwhile."""
    from trex_bench.core.errors import LabelsPending
    from trex_bench.core.io import read_json
    from trex_bench.label.server import LabelApp, find_pairs_folder

    cfg = PipelineConfig(game="breakout", method="prefs", budget="smoke", labeler="human", eval_episodes=1).resolve()
    assert run_name(cfg).startswith("breakout-prefs-human-smoke-s0")
    kw = dict(out=tmp_path / "run", leaderboard=tmp_path / "lb.csv", progress=False, cache_dir=tmp_path / "cache")
    with pytest.raises(LabelsPending, match="label serve .*again with --resume"):
        run_pipeline(cfg, label_timeout=0.5, **kw)
    app = LabelApp(find_pairs_folder(tmp_path / "run"), "ann")  # what `trex-bench label serve RUN` opens
    while app.state()["next"] is not None:
        nxt = app.state()["next"]
        app.answer(dict(pair=nxt["pair"], answer="left", left=nxt["left"]["clip"], right=nxt["right"]["clip"]))
    answered = (app.folder / "labels.csv").read_text().splitlines()
    summary = run_pipeline(cfg, resume=True, label_timeout=0.5, **kw)
    card = read_json(tmp_path / "run" / "agent" / "card.json")
    assert card["online_reward"]["labeler"] == "human" and summary["row"]["method"] == "prefs"
    kept = (tmp_path / "run" / "agent" / "prefs" / "labels.csv").read_text().splitlines()
    assert kept[: len(answered)] == answered  # every answer given while paused is still there


def test_random_and_gail_are_methods_with_rows(tmp_path, monkeypatch):
    """random plays the uniform policy through the eval harness without any model; gail trains PPO on its
    discriminator against the run's demo set; each appends its row."""
    import trex_bench.rl.ppo as ppo

    lb = tmp_path / "lb.csv"
    demos = default_demos("breakout").parent / "ppo-checkpoints"
    loaded = []
    monkeypatch.setattr(ppo, "load_agent", lambda *a, **k: loaded.append(a) or (_ for _ in ()).throw(AssertionError))
    rnd = run_pipeline(PipelineConfig(game="breakout", method="random", budget="smoke", demos=demos).resolve(),
                       out=tmp_path / "random", leaderboard=lb, progress=False, cache_dir=tmp_path / "cache")
    assert loaded == [] and rnd["row"]["rl_steps"] == 0 and rnd["row"]["n_episodes"] == 2
    assert not any((tmp_path / "random").rglob("*.zip")) and not any((tmp_path / "random").rglob("*.safetensors"))
    monkeypatch.undo()
    gail = run_pipeline(PipelineConfig(game="breakout", method="gail", budget="smoke", demos=demos,
                                       eval_episodes=1).resolve(),
                        out=tmp_path / "gail", leaderboard=lb, progress=False, cache_dir=tmp_path / "cache")
    from trex_bench.core.io import read_json

    card = read_json(tmp_path / "gail" / "agent" / "card.json")
    assert card["online_reward"]["method"] == "gail" and card["online_reward"]["rollouts"] >= 1
    assert gail["row"]["reward_transform"] == "gail"
    with open(lb, newline="") as f:
        assert [r["method"] for r in csv.DictReader(f)] == ["random", "gail"]
