"""One experiment config: the budget table, the methods as stage lists, and the one resolver.

``resolve(game, method, budget, seed, **overrides)`` turns what a user asks for into an :class:`ExperimentConfig`:
every stage's settings resolved to values (reward ``TrainConfig``, ``BCConfig``, D-REX rollouts, ``PPOConfig``,
evaluation, KL spec). It is what ``pipeline``, ``sweep`` and Ray tasks pass around, what every run folder holds as
``config.json``, and what ``trex-bench pipeline --config run.json`` runs. Stages are keyed by these resolved values,
never by a budget's name: an edit of the table below retrains what it changes (DESIGN.md "Budgets").

Everything here is torch-free: the CLI builds its ``choices`` from this module at start-up.

>>> cfg = resolve("Breakout", "trex", "smoke")
>>> cfg.run_name(), cfg.reward.n_pairs, cfg.ppo.total_steps, cfg.eval.episodes
('breakout-trex-smoke-s0', 200, 2048, 2)
>>> ExperimentConfig.from_json(cfg.to_json()) == cfg
True
>>> resolve("breakout", "trex", "smoke", profile="machado").run_name()
'breakout-trex-machado-smoke-s0'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.errors import ConfigError
from trex_bench.games import get_game
from trex_bench.reward.config import TrainConfig
from trex_bench.rl.config import BCConfig, PPOConfig
from trex_bench.types import ENV_PROFILES, PRECISIONS, REWARD_TRANSFORMS

__all__ = [
    "Budget",
    "BUDGETS",
    "Method",
    "METHODS",
    "NOT_BUILT",
    "RANKINGS",
    "MAX_SEED",
    "EvalConfig",
    "KLSpec",
    "ExperimentConfig",
    "resolve",
    "reward_config",
    "bc_config",
    "ppo_config",
    "REPO_DEMOS",
    "SCHEMA",
]

SCHEMA = 1  # of config.json
REPO_DEMOS = Path(__file__).resolve().parents[1] / "demos"
MAX_SEED = 2**32 - 1  # numpy's and the envs' seed range; one limit for every command
RANKINGS = ("return", "checkpoint", "noise", "human", "synthetic")

# -- the one budget table -------------------------------------------------------------------------------------------

# Reward trainer, measured on this machine kind (2 shared CPU cores, torch 2.13 CPU, snippets of span 50–100 at
# stride 2 over 12 episodes; steps of Adam incl. backward, frames/s of distinct stacks scored):
#   1 thread:  batch 1 966 frames/s · batch 32 485, channels_last 972 · batch 64 287, channels_last 722 ·
#              batch 128 444 (channels_last 447)
#   2 threads (machine loaded): batch 8 166 / channels_last 329 · batch 32 291 / 707 · batch 64 758 / 889;
#              bf16 autocast is 5–10× *slower* here (13–150 frames/s): this CPU has no native bf16 kernels.
# So: channels_last on, bf16 off, batch 32 pairs (per-frame speed of batch 1, ~30× fewer optimiser steps).
# On a GPU, bf16 is worth re-measuring. benchmarks/reward_train_speed.py compares whole recipes.
MEASURED: dict[str, Any] = dict(batch_pairs=32, bf16=False, channels_last=True)
# D-REX (Brown et al. CoRL 2019, released LearnAtariSyntheticRankingsBinning.py): 40 000 pairs, stride 4, Adam 1e-5,
# 32 first-conv filters (net.WIDTHS), early stopping.
DREX_PAPER: dict[str, Any] = dict(
    n_pairs=40000, min_len=50, max_len=100, stride=4, lr=1e-5, passes=1.0, eval_every=2000, patience=5
)
DREX_STRIDE: dict[str, Any] = dict(stride=4)  # D-REX released script: stride 4 (below the paper budget)

# PPO: rl-zoo3 hyperparams/ppo.yml `atari` (Raffin et al., "RL Baselines3 Zoo", 2020): 8 envs, n_steps 128,
# batch 256, 4 epochs, lr lin_2.5e-4, clip lin_0.1, ent 0.01, vf 0.5, n_timesteps 1e7.
_ZOO: dict[str, Any] = dict(
    n_envs=8, n_steps=128, batch_size=256, n_epochs=4, learning_rate=2.5e-4, clip_range=0.1, ent_coef=0.01, vf_coef=0.5
)
ZOO_HORIZON = 10_000_000


@dataclass(frozen=True)
class Budget:
    """One row of the budget table: every stage's preset at this budget.

    Attributes:
        name: the budget's name.
        reward: ``TrainConfig`` values of T-REX (over ``MEASURED``); ``drex_reward`` is applied on top for D-REX.
        bc: ``BCConfig`` values (the D-REX clone, ``--method bc``).
        drex_rollouts: D-REX's ε-greedy rollouts of the clone per noise level.
        ppo: the PPO run. The CPU and GPU budgets are *prefixes* of rl-zoo3's 10M-step run: lr and clip anneal
            over ``ZOO_HORIZON`` and the run stops at ``total_steps``. Measured on 2 CPU cores, Breakout, PPO on
            the true reward, seed 0: 16.3 ± 5.7 at 515k steps this way vs 8.7 ± 4.4 when annealed to 0 over 500k.
        eval_episodes: full games in the evaluation: 30 is the papers' protocol (T-REX §5); smoke only checks the
            path.
    """

    name: str
    reward: Mapping[str, Any]
    drex_reward: Mapping[str, Any]
    bc: Mapping[str, Any]
    drex_rollouts: int
    ppo: PPOConfig
    eval_episodes: int


# Every budget is a count of pairs, passes and steps: the same seed gives the same result on any machine, busy or
# idle (a wall-time cap once made the reward's `quick` stop at step 47 of 171 on a loaded machine). max_seconds
# stays an opt-in valve, never set here.
_PAPER_REWARD: dict[str, Any] = dict(  # T-REX §5.1 / released code: 6000 pairs, span 50–100, stride 2, Adam 5e-5,
    n_pairs=6000,  # batch 1, 5 passes
    min_len=50,
    max_len=100,
    stride=2,
    lr=5e-5,
    batch_pairs=1,
    passes=5.0,
    eval_every=1000,
    patience=0,
    bf16=False,
    channels_last=False,
)
# D-REX BC recipe (Adam 1e-4, batch 32, early stopping). The number of steps is not stated in PAPERS.md: a cap of
# 100 000 steps (~several passes over 10 demos of a few thousand frames) with early stopping deciding.
_PAPER_BC: dict[str, Any] = dict(max_steps=100_000, eval_every=1000, patience=5)
# T-REX §5 / D-REX §5: OpenAI-baselines PPO2 Atari defaults (baselines/ppo2/defaults.py `atari()`: nsteps 128,
# nminibatches 4, 4 epochs, lr 2.5e-4·f, clip 0.1·f, ent 0.01, vf 0.5, grad norm 0.5, γ 0.99, λ 0.95),
# 9 parallel envs, 50M frames = 12.5M agent steps (PAPERS.md "RL on the learned reward"). Batch 128·9/4 = 288.
_PAPER_PPO = PPOConfig(
    "paper",
    total_steps=12_500_000,
    n_envs=9,
    n_steps=128,
    batch_size=288,
    n_epochs=4,
    learning_rate=2.5e-4,
    clip_range=0.1,
    ent_coef=0.01,
    vf_coef=0.5,
    checkpoint_every=500_000,
    source="T-REX/D-REX: OpenAI baselines PPO2 Atari defaults, 9 envs, 50M frames",
)
_SMALL_REWARD: dict[str, Any] = dict(n_pairs=6000, lr=2e-4, passes=5.0, eval_every=25, patience=8)
_SMALL_BC: dict[str, Any] = dict(max_steps=10_000, eval_every=250, patience=8)

BUDGETS: dict[str, Budget] = {
    # Seconds to a couple of minutes on 2 cores: exercises every stage; scores are meaningless.
    "smoke": Budget(
        "smoke",
        reward=dict(n_pairs=200, min_len=10, max_len=20, lr=1e-3, passes=1.0, eval_every=5, patience=3),
        drex_reward=DREX_STRIDE,
        bc=dict(max_steps=30, eval_every=10, patience=2),
        drex_rollouts=1,
        ppo=PPOConfig(
            "smoke", total_steps=2_048, n_envs=4, n_steps=64, batch_size=128, n_epochs=2, source="smoke test"
        ),
        eval_episodes=2,
    ),
    # make quickstart, ≤ 15 min end to end: reward a couple of minutes (larger lr + early stopping instead of 5 slow
    # passes); PPO ≈ 10 minutes on 2 CPU cores (measured: 194-199 steps/s with the learned reward).
    "quick": Budget(
        "quick",
        reward=dict(n_pairs=2000, lr=3e-4, passes=3.0, eval_every=20, patience=6),
        drex_reward=DREX_STRIDE,
        bc=dict(max_steps=2000, eval_every=100, patience=5),
        drex_rollouts=2,
        ppo=PPOConfig(
            "quick",
            total_steps=120_000,
            schedule_steps=ZOO_HORIZON,
            checkpoint_every=40_000,
            source="rl-zoo3 Atari PPO: the first 120k steps of its 10M-step schedule",
            **_ZOO,
        ),
        eval_episodes=30,
    ),
    # ≤ 60 min on 2 CPU cores: PPO ≈ 43 minutes at 194 steps/s, + ≤ 5 min of reward training.
    "small": Budget(
        "small",
        reward=_SMALL_REWARD,
        drex_reward=DREX_STRIDE,
        bc=_SMALL_BC,
        drex_rollouts=3,
        ppo=PPOConfig(
            "small",
            total_steps=500_000,
            schedule_steps=ZOO_HORIZON,
            checkpoint_every=100_000,
            source="rl-zoo3 Atari PPO: the first 500k steps of its 10M-step schedule",
            **_ZOO,
        ),
        eval_episodes=30,
    ),
    # The papers' values (PAPERS.md), for a GPU or a cluster; hours per game.
    "paper": Budget(
        "paper",
        reward=_PAPER_REWARD,
        drex_reward=DREX_PAPER,
        bc=_PAPER_BC,
        drex_rollouts=5,
        ppo=_PAPER_PPO,
        eval_episodes=30,
    ),
    # One GPU + 16 CPU cores within one `device` lease (15 min of device time in all, start and evaluation
    # included): 700k steps, what 300 s of PPO reached there (703 968-821 264 steps, results/device/2026-11-26-h200).
    # rl-zoo3 settings with 16 envs (one per core), batch 512; a prefix of a 10M-step schedule. Reward and BC: the
    # small recipe.
    "gpu": Budget(
        "gpu",
        reward=_SMALL_REWARD,
        drex_reward=DREX_STRIDE,
        bc=_SMALL_BC,
        drex_rollouts=3,
        ppo=PPOConfig(
            "gpu",
            total_steps=700_000,
            n_envs=16,
            n_steps=128,
            batch_size=512,
            n_epochs=4,
            learning_rate=2.5e-4,
            clip_range=0.1,
            ent_coef=0.01,
            vf_coef=0.5,
            checkpoint_every=100_000,
            schedule_steps=ZOO_HORIZON,
            source="rl-zoo3 Atari PPO, 16 envs, batch 512: the first 700k steps of a 10M-step schedule",
        ),
        eval_episodes=30,
    ),
    # The papers' reward and BC with rl-zoo3's tuned 10M-step PPO instead of baselines' PPO2.
    "paper-zoo": Budget(
        "paper-zoo",
        reward=_PAPER_REWARD,
        drex_reward=DREX_PAPER,
        bc=_PAPER_BC,
        drex_rollouts=5,
        ppo=PPOConfig(
            "paper-zoo", total_steps=ZOO_HORIZON, checkpoint_every=500_000, source="rl-zoo3 tuned Atari PPO", **_ZOO
        ),
        eval_episodes=30,
    ),
}


def _budget(name: str) -> Budget:
    if name not in BUDGETS:
        raise ConfigError(f"unknown budget {name!r}; valid: {', '.join(BUDGETS)}")
    return BUDGETS[name]


def reward_config(budget: str, method: str = "trex", **overrides: Any) -> TrainConfig:
    """The reward trainer's preset of a budget for ``trex`` or ``drex``, plus overrides."""
    b = _budget(budget)
    values = dict(MEASURED) | dict(b.reward) | (dict(b.drex_reward) if method == "drex" else {}) | overrides
    return TrainConfig(method=method, **values)  # type: ignore[arg-type]  # TrainConfig validates the method


def bc_config(budget: str, **overrides: Any) -> BCConfig:
    """The behaviour-cloning preset of a budget, plus overrides."""
    return BCConfig(**(dict(_budget(budget).bc) | overrides))


def ppo_config(budget: str | PPOConfig) -> PPOConfig:
    """The PPO preset of a budget (a ``PPOConfig`` passes through)."""
    return budget if isinstance(budget, PPOConfig) else _budget(budget).ppo


# -- methods as stage lists -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Method:
    """A method: the stages it runs, in order (``trex_bench.pipeline.STAGES`` holds their functions).

    Attributes:
        name: the method's name (``--method``).
        stages: stage names in the order they run.
        rankings: the rankings its reward net may be trained on (the first is the default); () for no reward net.
        reward: what PPO sees: ``learned`` (the reward stage's net), ``true`` (the clipped game score), ``constant``
            (1 per step), or "" when the method runs no PPO.
        row_transform: the leaderboard's ``reward_transform`` of a method without a learned reward.
    """

    name: str
    stages: tuple[str, ...]
    rankings: tuple[str, ...] = ()
    reward: str = ""
    row_transform: str = ""

    @property
    def learned_reward(self) -> bool:
        return self.reward == "learned"

    @property
    def ppo(self) -> bool:
        return "agent" in self.stages


_REWARD_STAGES = ("reward", "fidelity", "extrapolation")
METHODS: dict[str, Method] = {
    "trex": Method("trex", (*_REWARD_STAGES, "agent", "eval"), rankings=RANKINGS, reward="learned"),
    # BC → ε-greedy rollouts of the clone → ranked by noise, the demos above every bin → reward net → PPO
    "drex": Method("drex", ("bc", "noise-rollouts", *_REWARD_STAGES, "agent", "eval"), ("noise",), reward="learned"),
    "bc": Method("bc", ("bc", "eval")),  # the clone itself, evaluated
    "ppo-true": Method("ppo-true", ("agent", "eval"), reward="true", row_transform="clip"),  # the upper reference
    "constant": Method("constant", ("agent", "eval"), reward="constant", row_transform="constant"),  # survival bonus
}
NOT_BUILT = ("gail", "random")  # named by DESIGN.md; refused with a clear message until their stages exist


def get_method(name: str) -> Method:
    if name in NOT_BUILT:
        raise ConfigError(f"method {name!r} is not built yet in this version; available: {', '.join(METHODS)}")
    if name not in METHODS:
        raise ConfigError(f"unknown method {name!r}; valid: {', '.join(METHODS)}")
    return METHODS[name]


# -- the experiment config ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation stage: ``episodes`` full games of the stochastic policy."""

    episodes: int

    def __post_init__(self) -> None:
        if not (isinstance(self.episodes, int) and self.episodes >= 1):
            raise ConfigError(f"evaluation episodes must be an integer >= 1, got {self.episodes!r}")


@dataclass(frozen=True)
class KLSpec:
    """The RLHF penalty −β(log π_θ − log π_BC) on PPO's reward: the BC policy folder and β."""

    to: Path
    beta: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "to", Path(self.to))
        if not (isinstance(self.beta, int | float) and math.isfinite(self.beta) and self.beta > 0):
            raise ConfigError(f"--kl-beta must be a finite number > 0 with --kl-to, got {self.beta!r}")


def _path(value: Any) -> Path | None:
    return None if value is None else Path(value)


@dataclass(frozen=True)
class ExperimentConfig:
    """One benchmark run, every stage's settings resolved (build it with :func:`resolve`).

    Attributes:
        game, method, budget, seed: what runs (``budget`` names the table row the values came from).
        profile: env profile (``paper`` | ``machado``) of PPO, evaluation and the demos it accepts.
        demos: the demo set (None: the game's committed ``demos/<game>/scripted-noise``).
        ranking: what the reward net is trained on (``return`` …; ``noise`` for D-REX; "" without a reward net).
        human_labels: the MTurk label CSV of ``ranking="human"``.
        transform: how PPO sees the learned reward (``sigmoid``, the papers).
        unseen: later checkpoints for the extrapolation stage (None: the demos' sibling ``ppo-later``, if any).
        reward, bc, ppo: the resolved stage configs of the method's stages (None for a stage it does not run).
        drex_rollouts: D-REX's rollouts per noise level (None unless the method runs ``noise-rollouts``).
        eval: the evaluation stage.
        kl: the KL-to-BC penalty, or None.
        precision: PPO policy numerics (``fp32`` | ``bf16`` | ``auto``).
        device: torch device; how the run executes, not part of the experiment (not in the folder name).
    """

    game: str
    method: str
    budget: str
    seed: int
    profile: str
    demos: Path | None
    ranking: str
    human_labels: Path | None
    transform: str
    unseen: Path | None
    reward: TrainConfig | None
    bc: BCConfig | None
    drex_rollouts: int | None
    ppo: PPOConfig | None
    eval: EvalConfig
    kl: KLSpec | None
    precision: str = "fp32"
    device: str = "cpu"

    def __post_init__(self) -> None:
        for name in ("demos", "human_labels", "unseen"):
            object.__setattr__(self, name, _path(getattr(self, name)))
        object.__setattr__(self, "game", get_game(self.game).id)
        self._validate()

    def _validate(self) -> None:
        m = get_method(self.method)
        _budget(self.budget)
        if not (isinstance(self.seed, int) and 0 <= self.seed <= MAX_SEED):
            raise ConfigError(f"--seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        if self.profile not in ENV_PROFILES:
            raise ConfigError(f"unknown env profile {self.profile!r}; valid: {', '.join(ENV_PROFILES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.transform not in REWARD_TRANSFORMS:
            raise ConfigError(f"unknown reward transform {self.transform!r}; valid: {', '.join(REWARD_TRANSFORMS)}")
        if self.transform != "sigmoid" and not m.learned_reward:
            raise ConfigError(f"--transform applies to a learned reward (trex, drex), not {self.method}")
        if m.rankings and self.ranking not in m.rankings:
            if self.method == "drex":
                raise ConfigError(f"D-REX ranks its rollouts by noise level; --ranking {self.ranking} is for trex")
            raise ConfigError(f"unknown ranking {self.ranking!r}; valid: {', '.join(m.rankings)}")
        if not m.rankings and self.ranking:
            raise ConfigError(f"--ranking applies to a method with a reward net, not {self.method}")
        if (self.human_labels is not None) != (self.ranking == "human"):
            raise ConfigError("--ranking human (method trex) and --human-labels CSV go together")
        if self.kl is not None and not m.ppo:
            raise ConfigError(f"--kl-to applies to PPO methods, not {self.method}")
        for stage, value in (("reward", self.reward), ("bc", self.bc), ("agent", self.ppo)):
            if (value is None) == (stage in m.stages):
                need = "needs" if value is None else "does not run"
                raise ConfigError(f"method {self.method} {need} a {stage} stage config")
        if (self.drex_rollouts is None) == ("noise-rollouts" in m.stages) or (self.drex_rollouts or 1) < 1:
            raise ConfigError(f"method {self.method}: drex_rollouts must be >= 1 for D-REX and null otherwise")

    @property
    def spec(self) -> Method:
        return METHODS[self.method]

    @property
    def ranking_source(self) -> str:
        """The ranking the reward net is trained on ("" without one): the leaderboard's ``ranking_source``."""
        return self.ranking

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    # -- names -------------------------------------------------------------------------------------------------------
    def run_name(self) -> str:
        """``<game>-<method>[-<ranking>][-<transform>][-kl<β>][-<demo set>][-<profile>][-cap<S>s][-<precision>]
        -<budget>-s<seed>[-<hash>]``.

        The readable part names the usual options; ``<hash>`` (8 hex) is a short hash of every other field that
        differs from ``resolve(game, method, budget, seed)`` (evaluation episodes, the ``--kl-to`` folder, a demo
        set outside ``demos/``, an edited stage config …), so two experiments never share a folder (a sweep reads a
        folder's ``summary.json`` as "this run is done"). A run of all defaults has no hash.
        """
        parts = [self.game, self.method]
        if self.method == "trex" and self.ranking != "return":
            parts.append(self.ranking)
        if self.transform != "sigmoid":
            parts.append(self.transform)
        if self.kl is not None:
            parts.append(f"kl{self.kl.beta:g}")
        if self.demos is not None and _demos_key(self.game, self.demos) != "default":
            parts.append(self.demos.resolve().name)
        if self.profile != "paper":
            parts.append(self.profile)
        if self.ppo is not None and self.ppo.max_seconds is not None:
            parts.append(f"cap{self.ppo.max_seconds:g}s")
        if self.precision != "fp32":
            parts.append(self.precision)
        parts += [self.budget, f"s{self.seed}"]
        extra = self.non_default_fields()
        if extra:
            parts.append(_hash(extra)[:8])
        return "-".join(parts)

    def non_default_fields(self) -> dict[str, Any]:
        """The fields that differ from the defaults and are not spelled out in the readable run name."""
        base = resolve(self.game, self.method, self.budget, self.seed).to_json()
        mine = self.to_json()
        named = {"game", "method", "budget", "seed", "profile", "ranking", "transform", "precision", "device"}
        diff = {k: v for k, v in mine.items() if k not in named and k != "schema" and v != base.get(k)}
        if "ppo" in diff and mine["ppo"] | {"max_seconds": None} == base["ppo"]:
            del diff["ppo"]  # only the time cap, which the name spells out
        if "demos" in diff:
            key = _demos_key(self.game, self.demos)
            if key in ("default", "repo"):
                del diff["demos"]  # spelled out in the name (a committed set's folder name is unique there)
            else:
                diff["demos"] = key
        if "kl" in diff:
            diff["kl"] = {"beta": self.kl.beta, "to": str(self.kl.to.resolve())} if self.kl else None
        for name in ("human_labels", "unseen"):
            if diff.get(name) is not None:
                diff[name] = str(Path(diff[name]).resolve())
        return diff

    # -- JSON --------------------------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``config.json`` of a run folder); :meth:`from_json` reads it back."""
        out: dict[str, Any] = {"schema": SCHEMA}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if dataclasses.is_dataclass(v):
                v = {k: str(x) if isinstance(x, Path) else x for k, x in dataclasses.asdict(v).items()}
            elif isinstance(v, Path):
                v = str(v)
            out[f.name] = v
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ExperimentConfig:
        """The config of a dict written by :meth:`to_json` (a ``ConfigError`` names what is wrong)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"an experiment config is a JSON object, not {type(data).__name__}")
        if data.get("schema") != SCHEMA:
            raise ConfigError(f"experiment config schema {data.get('schema')!r} is not {SCHEMA}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"schema"}
        if unknown:
            raise ConfigError(f"unknown experiment config keys: {', '.join(sorted(unknown))}")
        missing = names - set(data) - {"precision", "device"}
        if missing:
            raise ConfigError(f"experiment config lacks: {', '.join(sorted(missing))}")
        subs = {"reward": TrainConfig, "bc": BCConfig, "ppo": PPOConfig, "eval": EvalConfig, "kl": KLSpec}
        values = {k: v for k, v in data.items() if k != "schema"}
        for name, typ in subs.items():
            if values.get(name) is not None:
                if not isinstance(values[name], Mapping):
                    raise ConfigError(f"experiment config {name!r} is not an object")
                try:
                    values[name] = typ(**values[name])
                except TypeError as e:
                    raise ConfigError(f"experiment config {name!r}: {e}") from e
        return cls(**values)

    def write(self, path: str | Path) -> None:
        """Write ``config.json`` atomically."""
        from trex_bench._io import write_json

        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> ExperimentConfig:
        """Read a config written by :meth:`write` (a ``ConfigError`` names the file)."""
        from trex_bench._io import read_json

        try:
            return cls.from_json(read_json(path))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e


def _demos_key(game: str, demos: Path | None) -> str:
    """``default`` for the committed scripted-noise set, ``repo`` for another committed set of the game (its folder
    name is unique there and is in the run name), else the set's absolute path."""
    if demos is None:
        return "default"
    path = Path(demos).resolve()
    if path == REPO_DEMOS / game / "scripted-noise":
        return "default"
    return "repo" if path.parent == REPO_DEMOS / game else str(path)


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def resolve(
    game: str,
    method: str,
    budget: str,
    seed: int = 0,
    *,
    profile: str = "paper",
    demos: str | Path | None = None,
    ranking: str | None = None,
    human_labels: str | Path | None = None,
    transform: str = "sigmoid",
    unseen: str | Path | None = None,
    eval_episodes: int | None = None,
    kl_to: str | Path | None = None,
    kl_beta: float = 0.0,
    max_seconds: float | None = None,
    precision: str = "fp32",
    device: str = "cpu",
    reward: Mapping[str, Any] | None = None,
    bc: Mapping[str, Any] | None = None,
    ppo: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """The one resolver: (budget, method, overrides) → :class:`ExperimentConfig`, every value checked.

    ``ranking`` defaults to the method's first (``return`` for T-REX, ``noise`` for D-REX); the CLI's default
    ``return`` is accepted for D-REX too. ``reward``/``bc``/``ppo`` override single fields of the budget's stage
    configs. ``kl_to`` and ``kl_beta`` go together (β = 0 and no folder: no penalty).
    """
    m = get_method(method)
    b = _budget(budget)
    if ranking is None or (method == "drex" and ranking == "return"):  # "return": the CLI's default
        ranking = m.rankings[0] if m.rankings else ""
    elif not m.rankings:
        ranking = ""  # bc, ppo-true, constant train no reward net: a sweep's shared --ranking does not apply
    if not (isinstance(kl_beta, int | float) and math.isfinite(kl_beta) and kl_beta >= 0):
        raise ConfigError(f"--kl-beta must be a finite number >= 0, got {kl_beta!r}")
    if (kl_beta > 0) != (kl_to is not None):
        raise ConfigError("--kl-to and --kl-beta go together, with beta > 0")
    if max_seconds is not None and not 0 < max_seconds < float("inf"):
        raise ConfigError(f"--max-seconds must be a finite number > 0, got {max_seconds}")
    ppo_cfg = None
    if m.ppo:
        ppo_cfg = dataclasses.replace(
            b.ppo, **(dict(ppo or {}) | ({"max_seconds": max_seconds} if max_seconds else {}))
        )
    return ExperimentConfig(
        game=game,
        method=method,
        budget=budget,
        seed=seed,
        profile=profile,
        demos=_path(demos),
        ranking=ranking,
        human_labels=_path(human_labels),
        transform=transform,
        unseen=_path(unseen),
        reward=reward_config(budget, method, **(reward or {})) if "reward" in m.stages else None,
        bc=bc_config(budget, **(bc or {})) if "bc" in m.stages else None,
        drex_rollouts=b.drex_rollouts if "noise-rollouts" in m.stages else None,
        ppo=ppo_cfg,
        eval=EvalConfig(eval_episodes if eval_episodes is not None else b.eval_episodes),
        kl=KLSpec(Path(kl_to), kl_beta) if kl_to is not None else None,
        precision=precision,
        device=device,
    )
