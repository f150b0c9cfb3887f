"""One experiment config and its resolver (the methods: ``trex_bench.experiment.methods``; the budgets:
``trex_bench.experiment.budgets``).

``resolve(game, method, budget, seed, **overrides)`` turns what a user asks for into an :class:`ExperimentConfig`:
every stage's settings resolved to values (reward ``TrainConfig``, ``BCConfig``, D-REX rollouts, ``PPOConfig``,
evaluation, KL spec). It is what ``pipeline``, ``sweep`` and Ray tasks pass around, what every run folder holds as
``config.json``, and what ``trex-bench pipeline --config run.json`` runs. Stages are keyed by these resolved values,
never by a budget's name: an edit of the budget table retrains what it changes (DESIGN.md "Budgets").

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
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.bc.config import BCConfig
from trex_bench.core.errors import ConfigError
from trex_bench.core.fields import check_fields
from trex_bench.core.games import get_game
from trex_bench.core.io import stable_hash
from trex_bench.core.types import ENV_PROFILES, PRECISIONS, REWARD_TRANSFORMS
from trex_bench.experiment.budgets import bc_config, gail_config, get_budget, prefs_config, reward_config
from trex_bench.experiment.methods import METHODS, NOT_BUILT, RANKINGS, Method, get_method
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.prefs_config import PrefsConfig
from trex_bench.rl.config import KLSpec, PPOConfig
from trex_bench.rl.gail_config import GAILConfig

__all__ = [
    "Method",
    "METHODS",
    "NOT_BUILT",
    "RANKINGS",
    "MAX_SEED",
    "EvalConfig",
    "ExperimentConfig",
    "resolve",
    "REPO_DEMOS",
    "DEFAULT_DEMO_SETS",
    "committed_default_demos",
    "SCHEMA",
]

SCHEMA = 1  # of config.json
REPO_DEMOS = Path(__file__).resolve().parents[2] / "demos"
MAX_SEED = 2**32 - 1  # numpy's and the envs' seed range; one limit for every command
LABELERS = ("synthetic", "human")  # who answers the preference loop: the true score, or a person on the page
# -- the experiment config ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """The evaluation stage: ``episodes`` full games of the stochastic policy."""

    episodes: int

    def __post_init__(self) -> None:
        if isinstance(self.episodes, bool) or not (isinstance(self.episodes, int) and self.episodes >= 1):
            raise ConfigError(f"evaluation episodes must be an integer >= 1, got {self.episodes!r}")


def _path(value: Any, name: str = "path") -> Path | None:
    if value is None or isinstance(value, Path):
        return value
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{name} must be a path (a non-empty string) or null, got {value!r}")
    return Path(value)


# The torch devices a run may name (checked against this machine's torch when the run starts, ``pipeline.prepare``).
_DEVICE = re.compile(r"cpu|cuda(:[0-9]+)?|mps")


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
        prefs: the online preference loop's settings (``prefs`` only).
        labeler: who answers the preference loop's queries: ``synthetic`` (the true score) or ``human`` (the
            labeling page); "" for other methods.
        gail: GAIL's discriminator settings (``gail`` only).
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
    prefs: PrefsConfig | None = None
    labeler: str = ""
    gail: GAILConfig | None = None

    def __post_init__(self) -> None:
        for name in ("demos", "human_labels", "unseen"):
            object.__setattr__(self, name, _path(getattr(self, name), name))
        check_fields(self)  # every field's type, whatever built the config (options, a config file, Python)
        object.__setattr__(self, "game", get_game(self.game).id)
        self._check_values()
        self._validate()

    def _check_values(self) -> None:
        """The values that do not depend on the method: seed, device, the stage configs' types, names."""
        get_budget(self.budget)
        if not 0 <= self.seed <= MAX_SEED:
            raise ConfigError(f"--seed must be an integer in [0, {MAX_SEED}], got {self.seed!r}")
        if not _DEVICE.fullmatch(self.device):
            raise ConfigError(f"--device: not a torch device: {self.device!r} (e.g. cpu, cuda, cuda:0)")
        subs = (("reward", TrainConfig), ("bc", BCConfig), ("ppo", PPOConfig), ("eval", EvalConfig), ("kl", KLSpec))
        for name, typ in subs:
            value = getattr(self, name)
            if not (isinstance(value, typ) or (value is None and name != "eval")):
                raise ConfigError(f"experiment config {name!r} must be a {typ.__name__}, got {type(value).__name__}")
        if self.profile not in ENV_PROFILES:
            raise ConfigError(f"unknown env profile {self.profile!r}; valid: {', '.join(ENV_PROFILES)}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; valid: {', '.join(PRECISIONS)}")
        if self.transform not in REWARD_TRANSFORMS:
            raise ConfigError(f"unknown reward transform {self.transform!r}; valid: {', '.join(REWARD_TRANSFORMS)}")

    def _validate(self) -> None:
        m = get_method(self.method)
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
        self._validate_stages(m)

    def _validate_stages(self, m: Method) -> None:
        """Each stage config present exactly where the method runs that stage."""
        for stage, value in (("reward", self.reward), ("bc", self.bc), ("agent", self.ppo)):
            if (value is None) == (stage in m.stages):
                need = "needs" if value is None else "does not run"
                raise ConfigError(f"method {self.method} {need} a {stage} stage config")
        if (self.drex_rollouts is None) == ("noise-rollouts" in m.stages) or (self.drex_rollouts or 1) < 1:
            raise ConfigError(f"method {self.method}: drex_rollouts must be >= 1 for D-REX and null otherwise")
        online = m.reward == "prefs"
        if (self.prefs is None) == online:
            raise ConfigError(f"method {self.method} {'needs' if online else 'does not run'} a preference-loop config")
        if (self.gail is None) == (m.reward == "gail"):
            raise ConfigError(f"method {self.method}: a GAIL config goes with the gail method alone")
        if (self.labeler in LABELERS) != online or (not online and self.labeler):
            raise ConfigError(f"--labeler {self.labeler or '(none)'}: prefs takes one of {', '.join(LABELERS)}")

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
        folder's ``summary.json`` as "this run is done"). A run of all defaults has no hash. Computed once per config.
        """
        name = self.__dict__.get("_run_name")
        if name is None:
            name = self._build_run_name()
            object.__setattr__(self, "_run_name", name)  # a cache, not a field: equality and JSON ignore it
        return name

    def _build_run_name(self) -> str:
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
        if self.labeler == "human":
            parts.append("human")
        if self.prefs is not None and self.prefs.label_noise > 0:
            parts.append(f"noise{self.prefs.label_noise:g}")
        parts += [self.budget, f"s{self.seed}"]
        extra = self.non_default_fields()
        if extra:
            parts.append(stable_hash(extra, 8))
        return "-".join(parts)

    def non_default_fields(self) -> dict[str, Any]:
        """The fields that differ from the defaults and are not spelled out in the readable run name."""
        base = resolve(self.game, self.method, self.budget, self.seed).to_json()
        mine = self.to_json()
        named = {
            "game",
            "method",
            "budget",
            "seed",
            "profile",
            "ranking",
            "transform",
            "precision",
            "device",
            "labeler",
        }
        diff = {k: v for k, v in mine.items() if k not in named and k != "schema" and v != base.get(k)}
        if "ppo" in diff and mine["ppo"] | {"max_seconds": None} == base["ppo"]:
            del diff["ppo"]  # only the time cap, which the name spells out
        if "prefs" in diff and base["prefs"] and mine["prefs"] | {"label_noise": 0.0} == base["prefs"]:
            del diff["prefs"]  # only the oracle's noise, which the name spells out
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
        if "schema" not in data:
            raise ConfigError(
                'not an experiment config (no "schema" key): pass a config.json that `trex-bench pipeline` wrote, '
                "or one of sweep-configs/"
            )
        if data["schema"] != SCHEMA:
            raise ConfigError(
                f"experiment config schema {data['schema']!r} is not {SCHEMA} (written by another version)"
            )
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names - {"schema"}
        if unknown:
            raise ConfigError(f"unknown experiment config keys: {', '.join(sorted(unknown))}")
        missing = names - set(data) - {"precision", "device", "prefs", "labeler", "gail"}
        if missing:
            raise ConfigError(f"experiment config lacks: {', '.join(sorted(missing))}")
        subs = {
            "reward": TrainConfig,
            "bc": BCConfig,
            "ppo": PPOConfig,
            "eval": EvalConfig,
            "kl": KLSpec,
            "prefs": PrefsConfig,
            "gail": GAILConfig,
        }
        values = {k: v for k, v in data.items() if k != "schema"}
        for name, typ in subs.items():
            if values.get(name) is not None:
                if not isinstance(values[name], Mapping):
                    raise ConfigError(f"experiment config {name!r} is not an object")
                try:
                    values[name] = typ(**values[name])
                except (TypeError, ConfigError) as e:  # an unknown or missing key, a value of the wrong type
                    raise ConfigError(f"experiment config {name!r}: {e}") from e
        return cls(**values)

    def write(self, path: str | Path) -> None:
        """Write ``config.json`` atomically."""
        from trex_bench.core.io import write_json

        write_json(path, self.to_json())

    @classmethod
    def read(cls, path: str | Path) -> ExperimentConfig:
        """Read a config written by :meth:`write` (a ``ConfigError`` names the file)."""
        from trex_bench.core.io import read_json

        if Path(path).is_dir():
            raise ConfigError(f"config file {path} is a directory, not a config.json")
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            return cls.from_json(read_json(path))
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from e


DEFAULT_DEMO_SETS = ("scripted-noise", "ppo-checkpoints")  # a game's default set: the first of these it has


def committed_default_demos(game: str) -> Path | None:
    """The committed set a game's runs use without ``--demos`` (``DEFAULT_DEMO_SETS``' first), or None."""
    for name in DEFAULT_DEMO_SETS:
        if (REPO_DEMOS / game / name / "manifest.json").exists():
            return REPO_DEMOS / game / name
    return None


def _demos_key(game: str, demos: Path | None) -> str:
    """``default`` for the game's default committed set (``committed_default_demos``), ``repo`` for another committed
    set of the game (its folder name is unique there and is in the run name), else the set's absolute path."""
    if demos is None:
        return "default"
    path = Path(demos).resolve()
    if path == committed_default_demos(game):
        return "default"
    return "repo" if path.parent == REPO_DEMOS / game else str(path)


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
    labeler: str | None = None,
    label_noise: float | None = None,
    prefs: Mapping[str, Any] | None = None,
) -> ExperimentConfig:
    """The one resolver: (budget, method, overrides) → :class:`ExperimentConfig`, every value checked.

    ``ranking`` defaults to the method's first (``return`` for T-REX, ``noise`` for D-REX); the CLI's default
    ``return`` is accepted for D-REX too. ``reward``/``bc``/``ppo`` override single fields of the budget's stage
    configs. ``kl_to`` and ``kl_beta`` go together (β = 0 and no folder: no penalty).
    """
    m = get_method(method)
    b = get_budget(budget)
    if ranking is None or (method == "drex" and ranking == "return"):  # "return": the CLI's default
        ranking = m.rankings[0] if m.rankings else ""
    elif not m.rankings:  # no reward net ranked from demos (a sweep drops its shared --ranking for these)
        if ranking != "return":  # the CLI's default passes; another ranking asked of such a method is a mistake
            raise ConfigError(f"--ranking {ranking} applies to trex, not {method}")
        ranking = ""
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
        **_online(m, budget, ppo_cfg, labeler, label_noise, prefs),
    )


def _online(
    m: Method,
    budget: str,
    ppo: PPOConfig | None,
    labeler: str | None,
    label_noise: float | None,
    prefs: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The preference loop's fields of a ``prefs`` run (its label budget from the budget table, spent by the PPO
    run's end); the options are refused for every other method."""
    if m.reward != "prefs":
        if labeler not in (None, "synthetic") or label_noise not in (None, 0, 0.0) or prefs:
            raise ConfigError(f"--labeler and --label-noise apply to the prefs method, not {m.name}")
        return {"gail": gail_config(budget)} if m.reward == "gail" else {}
    assert ppo is not None
    noise = {} if label_noise is None else {"label_noise": label_noise}
    return {
        "prefs": prefs_config(budget, ppo.total_steps, **(dict(prefs or {}) | noise)),
        "labeler": labeler or "synthetic",
    }
