"""CI regression checks: small deterministic CPU runs compared with committed expectations.

A change to preprocessing, the sampler, the trainer, the reward wrapper or PPO settings must not move a result
without anyone noticing. Each ``Check`` measures a few values on committed inputs; ``results/regression.json``
holds the value each should have, with its tolerance and the command, commit and versions that produced it:

* ``demos``: every committed demo set under ``demos/`` replays to its recorded frame hashes and returns (exact);
* ``reward.trex`` / ``reward.drex``: a fixed-seed reward net at the ``smoke`` budget (last weights) on
  ``demos/breakout/scripted-noise`` — its weights' SHA-256 (exact) and its fidelity on the held-out
  ``demos/breakout/ppo-checkpoints`` (Spearman of the mean per-frame reward, snippet pair accuracy; a band);
* ``extrap.breakout`` / ``released.breakout``: a small fixed-seed T-REX net trained on ``ppo-checkpoints`` and the
  authors' released net, scored on the unseen ``ppo-later`` (``trex_bench.regression.extrapolation``);
* ``ppo.true``: a fixed-seed 256-step PPO run on the true reward — the first update's losses from its TensorBoard
  events (relative 1e-5) and a 4-game evaluation score (a band);
* ``ppo.learned``: the same run on the ``reward.trex`` net through the σ(r̂) reward wrapper — its first update's
  losses (relative 1e-5): the value and policy losses see every reward PPO was paid in the first rollout;
* ``tables``: the leaderboard summary and the papers' tables generated from a frozen CSV (exact output hashes).

Each metric is ``exact`` (hashes, counts), ``rel`` (within 1e-5 relative) or ``band`` (inside a range measured over
``BAND_SEEDS``); ``trex_bench.regression.expectations`` compares and refreshes. All checks run with one torch thread,
oneDNN off and the CPU float kernels pinned (``trex_bench.regression.numerics.pin_numerics``: torch's at AVX2, MKL's
reproducible ``COMPATIBLE`` branch), so that a weight hash recorded on one x86-64 CPU holds on another; a new torch
build may still move it (``versions`` in the file).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from trex_bench.core.errors import TrexBenchError
from trex_bench.regression.extrapolation import ExtrapolationSpec, measure_extrapolation, measure_released
from trex_bench.regression.numerics import (
    CheckSkipped,
    Measured,
    Value,
    reproducible_torch,
    state_sha256,
)

__all__ = [
    "Value",
    "Measured",
    "Check",
    "Result",
    "RegressionError",
    "CheckSkipped",
    "RewardSpec",
    "PPOSpec",
    "CHECKS",
    "BAND_SEEDS",
    "EXPECTATIONS",
    "FROZEN_CSV",
    "REWARD_FIXED",
    "TINY_PPO",
    "measure_demo_set",
    "measure_demos",
    "measure_named_demo_set",
    "committed_demo_sets",
    "measure_reward",
    "train_spec",
    "measure_ppo",
    "measure_tables",
    "select_checks",
    "reproducible_torch",
    "state_sha256",
]

EXPECTATIONS = Path("results/regression.json")
FROZEN_CSV = Path("tests/data/leaderboard.csv")  # a frozen copy of results/leaderboard.csv (the tables' input)
BAND_SEEDS = (0, 1, 2, 3, 4)


class RegressionError(TrexBenchError, ValueError):
    """A user error of the regression commands (no reason given, unknown check, unreadable expectations)."""


@dataclass(frozen=True)
class Check:
    """A named measurement on committed inputs.

    Attributes:
        name: the check's id (the prefix of its metrics' names in ``regression.json``).
        description: one line for the table and the JSON.
        measure: ``(repo root, seed) -> {metric: Measured}``; seed 0 is the expectation, other seeds build bands.
        banded: whether some metric is compared with a band (``update`` then measures it over ``BAND_SEEDS``).
    """

    name: str
    description: str
    measure: Callable[[Path, int], dict[str, Measured]]
    banded: bool = False


@dataclass(frozen=True)
class Result:
    """One metric's verdict: ``ok`` is False outside its tolerance; ``detail`` says by how much."""

    check: str
    metric: str
    expected: Value | None
    got: Value | None
    band: str
    ok: bool
    detail: str = ""

    @property
    def key(self) -> str:
        """``check.metric``, the metric's key in ``regression.json``."""
        return f"{self.check}.{self.metric}"


def _sha256(data: bytes | str) -> str:
    return hashlib.sha256(data.encode() if isinstance(data, str) else data).hexdigest()


# -- (a) demo replay -----------------------------------------------------------------------------------------------
def measure_demo_set(folder: str | Path) -> dict[str, Measured]:
    """Replay a demo set (``verify_demos``): episodes that match their record, and a hash of the verified facts.

    The facts are the set's content hash (seeds, actions, recorded frame hashes) and, per episode, the verdict,
    length, recorded and replayed return and message: one changed action or one replayed frame moves the hash.
    """
    from trex_bench.demos.frames import keep_frames
    from trex_bench.demos.replay import verify_demos
    from trex_bench.demos.store import load_demos

    ds = load_demos(folder)
    results = verify_demos(ds, keep=keep_frames(ds))  # the later checks read these frames instead of replaying
    facts = {
        "content_hash": ds.content_hash(),
        "episodes": [[r.ok, r.length, r.ret, r.replayed_ret, r.message] for r in results],
    }
    return {
        "episodes_ok": Measured(sum(r.ok for r in results)),
        "facts_sha256": Measured(_sha256(json.dumps(facts, sort_keys=True))),
    }


def measure_named_demo_set(root: Path, name: str) -> dict[str, Measured]:
    """``measure_demo_set`` of ``demos/<name>/`` (``<game>/<set>``), keyed ``<game>/<set>.<metric>``."""
    return {f"{name}.{k}": v for k, v in measure_demo_set(root / "demos" / name).items()}


def measure_demos(root: Path, seed: int = 0) -> dict[str, Measured]:
    """``measure_named_demo_set`` of every committed set ``demos/<game>/<name>/``."""
    out = {}
    for name in committed_demo_sets(root):
        out.update(measure_named_demo_set(root, name))
    return out


def committed_demo_sets(root: Path) -> list[str]:
    """The demo sets under ``root/demos`` as ``<game>/<name>``, sorted; none is a ``RegressionError``."""
    sets = [m.parent.relative_to(root / "demos").as_posix() for m in sorted((root / "demos").glob("*/*/manifest.json"))]
    if not sets:
        raise RegressionError(f"no demo sets under {root / 'demos'}")
    return sets


# -- (b, c) reward learning ----------------------------------------------------------------------------------------
# The last weights, not the best-validation ones: at the smoke budget (6 steps, a ~20-pair validation set) the best
# can be the initial weights (measured: D-REX seed 0 kept step 0), whose hash no trainer change would move.
REWARD_FIXED: dict[str, Any] = {"select": "last"}


@dataclass(frozen=True)
class RewardSpec:
    """A fixed-seed reward net at a tiny budget and where its fidelity is measured.

    Attributes:
        method: ``trex`` (ranked by return, 16 filters) or ``drex`` (ranked by noise, D-REX's supervision; 32).
        demos, held_out: demo-set folders relative to the repo root (trained on / scored on).
        budget: the ``reward.train.budget_config`` preset (with ``REWARD_FIXED``).
        seed: seeds ``np.random.default_rng`` (pairs, split, batch order, init).
        overrides: ``TrainConfig`` fields changed (tests perturb ``lr`` this way).
        game: a ``Game`` instead of the registry's (tests move a mask row); None: the demos' game.
        ranker: a ranker instead of the method's; None: ``by_return`` (trex) or ``by_noise`` (drex).
    """

    method: Literal["trex", "drex"] = "trex"
    demos: str = "demos/breakout/scripted-noise"
    held_out: str = "demos/breakout/ppo-checkpoints"
    budget: str = "smoke"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    game: Any = None
    ranker: Callable[[Any], Any] | None = None


def train_spec(root: Path, spec: RewardSpec, cache_dir: str | Path | None = None) -> tuple[Any, Any]:
    """``spec``'s reward net trained on CPU (call under ``reproducible_torch``): ``(model, its demo set)``."""
    import numpy as np

    from trex_bench.core.games import get_game
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.reward import ranking
    from trex_bench.reward.train import train_reward

    ds = load_demos(root / spec.demos)
    ranker = spec.ranker or (ranking.by_return if spec.method == "trex" else ranking.by_noise)
    cfg = reward_config(spec.budget, spec.method, **{**REWARD_FIXED, **dict(spec.overrides)})
    game = spec.game or get_game(ds.game)
    model, _ = train_reward(FrameCache(ds, cache_dir), ranker(ds), cfg, game, np.random.default_rng(spec.seed), "cpu")
    return model, ds


def measure_reward(root: Path, spec: RewardSpec, cache_dir: str | Path | None = None) -> dict[str, Measured]:
    """Train ``spec``'s net on CPU with one thread; its weights' hash and its held-out fidelity."""
    import numpy as np

    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.fidelity import fidelity_report

    with reproducible_torch():
        model, ds = train_spec(root, spec, cache_dir)
        held = load_demos(root / spec.held_out, game=ds.game)
        report = fidelity_report(model, held, FrameCache(held, cache_dir), rng=np.random.default_rng(0))
    rho = report["correlations"]["pred_mean"]["spearman"]
    return {
        "weights_sha256": Measured(state_sha256(model)),
        "spearman": Measured(float("nan") if rho is None else round(rho, 6), "band"),
        "pair_accuracy": Measured(round(float(report["pairwise"]["accuracy"]), 6), "band"),
    }


# -- (d) RL --------------------------------------------------------------------------------------------------------
TINY_PPO: dict[str, Any] = dict(total_steps=256, n_envs=2, n_steps=64, batch_size=64, n_epochs=1)
LOSSES = ("policy_gradient_loss", "value_loss", "entropy_loss", "approx_kl")  # SB3's train/* scalars


@dataclass(frozen=True)
class PPOSpec:
    """A fixed-seed tiny PPO run on the true or a learned reward, and its short evaluation.

    Attributes:
        game: game id.
        seed: PPO's seed (policy init, sampling, env resets) and the evaluation's.
        overrides: ``PPOConfig`` fields changed from ``TINY_PPO``.
        eval_episodes: full games scored (stochastic policy, true score); 0: none.
        reward: None: the true reward; else the reward net trained first (``measure_reward``'s recipe).
        transform: what PPO is paid from a learned r̂ (``rl.wrappers.LearnedRewardVecEnv``).
    """

    game: str = "breakout"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    eval_episodes: int = 4
    reward: RewardSpec | None = None
    transform: str = "sigmoid"


def _first_update(tb_dir: Path) -> dict[str, float]:
    """SB3's ``train/*`` scalars at their first logged step (the first update), from the TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    files = sorted(tb_dir.rglob("events.out.tfevents.*"))
    if not files:
        raise RegressionError(f"no TensorBoard events under {tb_dir}")
    acc = EventAccumulator(str(files[0]))
    acc.Reload()
    return {k: float(acc.Scalars(f"train/{k}")[0].value) for k in LOSSES if f"train/{k}" in acc.Tags()["scalars"]}


def _reward_folder(root: Path, spec: RewardSpec, out: Path) -> Path:
    """``spec``'s reward net (``train_spec``) written as a reward-model folder for PPO."""
    from trex_bench.reward.net import save_model

    model, ds = train_spec(root, spec)
    return save_model(model, out, {"profile": ds.profile, "method": spec.method, "seed": spec.seed})


def measure_ppo(root: Path, spec: PPOSpec) -> dict[str, Measured]:
    """Train ``spec`` in a temporary folder (fp32, CPU, one thread); first-update losses and evaluation mean."""
    from trex_bench.evaluation.evaluate import evaluate_agent
    from trex_bench.rl.config import PPOConfig, PPOJob
    from trex_bench.rl.ppo import train_ppo

    cfg = PPOConfig(
        "regression", **{**TINY_PPO, **dict(spec.overrides)}, source="trex_bench.regression.checks TINY_PPO"
    )
    with reproducible_torch(), tempfile.TemporaryDirectory(prefix="trex-regression-") as tmp:
        agent = Path(tmp) / "agent"
        reward = "true" if spec.reward is None else _reward_folder(root, spec.reward, Path(tmp) / "reward")
        train_ppo(
            PPOJob(spec.game, cfg, seed=spec.seed, reward=reward, transform=spec.transform, precision="fp32"),
            agent,
            progress=False,
        )
        out = {k: Measured(v, "rel") for k, v in _first_update(agent / "tb").items()}
        if spec.eval_episodes > 0:
            ev = evaluate_agent(agent, episodes=spec.eval_episodes, seed=spec.seed, n_envs=2, out=agent / "eval.json")
            out["eval_mean"] = Measured(float(ev["mean"]), "band")
    return out


# -- (e) tables ----------------------------------------------------------------------------------------------------
def measure_tables(csv: str | Path, baselines: str | Path) -> dict[str, Measured]:
    """SHA-256 of ``summary.summarize``'s CSV and of each ``tables`` markdown page generated from ``csv``."""
    from trex_bench.analysis.tables import TABLES, build_table, to_markdown
    from trex_bench.evaluation.summary import summarize

    out = {"summary_sha256": Measured(_sha256(summarize(csv).to_csv(index=False)))}
    for kind, spec in TABLES.items():  # a fixed label: the page names its input, which must not depend on the cwd
        out[f"{kind}_sha256"] = Measured(_sha256(to_markdown(build_table(kind, csv, baselines), spec, FROZEN_CSV)))
    return out


def _extrapolation(root: Path, seed: int) -> dict[str, Measured]:
    return measure_extrapolation(root, ExtrapolationSpec("breakout", seed))


def _released(root: Path, game: str) -> dict[str, Measured]:
    return measure_released(root, game)


# Games with a committed extrapolation split (demos/<game>/ppo-checkpoints + ppo-later): the released T-REX net is
# scored on each (deterministic, no training: the cost is replaying the split once into the frame cache).
RELEASED_GAMES = ("breakout", "beamrider", "hero", "pong", "qbert", "seaquest", "spaceinvaders")


CHECKS: tuple[Check, ...] = (
    Check("demos", "every committed demo set replays to its frame hashes and returns", measure_demos),
    Check(
        "reward.trex",
        "T-REX net, smoke budget, scripted-noise by return; fidelity on ppo-checkpoints",
        lambda root, seed: measure_reward(root, RewardSpec("trex", seed=seed)),
        banded=True,
    ),
    Check(
        "reward.drex",
        "D-REX-width net, smoke budget, scripted-noise by noise; fidelity on ppo-checkpoints",
        lambda root, seed: measure_reward(root, RewardSpec("drex", seed=seed)),
        banded=True,
    ),
    Check(
        "extrap.breakout",
        "T-REX net (smoke, 800 pairs) on breakout ppo-checkpoints, scored on the unseen ppo-later",
        lambda root, seed: _extrapolation(root, seed),
        banded=True,
    ),
    *(
        Check(
            f"released.{game}",
            f"the authors' released T-REX net scored on {game} ppo-checkpoints + ppo-later",
            lambda root, seed, game=game: _released(root, game),
        )
        for game in RELEASED_GAMES
    ),
    Check(
        "ppo.true",
        "PPO 256 steps on the true reward: first update's losses, 4-game evaluation",
        lambda root, seed: measure_ppo(root, PPOSpec(seed=seed)),
        banded=True,
    ),
    Check(
        "ppo.learned",
        "PPO 256 steps on the reward.trex net, paid sigmoid(r): first update's losses",
        lambda root, seed: measure_ppo(root, PPOSpec(seed=seed, eval_episodes=0, reward=RewardSpec("trex"))),
    ),
    Check(
        "tables",
        "leaderboard summary and papers' tables from tests/data/leaderboard.csv",
        lambda root, seed: measure_tables(root / FROZEN_CSV, root / "baselines"),
    ),
)


def select_checks(names: Sequence[str] | None) -> tuple[Check, ...]:
    """The checks named (all of ``CHECKS``, in order, when None or empty); an unknown name is refused."""
    if not names:
        return CHECKS
    known = {c.name for c in CHECKS}
    bad = [n for n in names if n not in known]
    if bad:
        raise RegressionError(f"unknown check {', '.join(bad)}; valid: {', '.join(sorted(known))}")
    return tuple(c for c in CHECKS if c.name in names)
