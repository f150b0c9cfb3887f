"""One experiment config: every stage's settings resolved to values, its validation and its JSON form (built by
``trex_bench.experiment.resolver.resolve``; the methods: ``trex_bench.experiment.methods``; the budgets:
``trex_bench.experiment.budgets``).

An :class:`ExperimentConfig` is what ``pipeline``, ``sweep`` and Ray tasks pass around, what every run folder holds as
``config.json``, and what ``trex-bench pipeline --config run.json`` runs. Stages are keyed by these resolved values,
never by a budget's name: an edit of the budget table retrains what it changes (DESIGN.md "Budgets").

Everything here is torch-free: the CLI builds its ``choices`` from this module at start-up.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.bc.config import BCConfig
from trex_bench.core.errors import ConfigError
from trex_bench.core.fields import check_fields
from trex_bench.core.games import get_game
from trex_bench.core.types import ENV_PROFILES, PRECISIONS, REWARD_TRANSFORMS
from trex_bench.experiment.budgets import get_budget
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
    "REPO_DEMOS",
    "DEFAULT_DEMO_SETS",
    "METHOD_DEMO_SETS",
    "committed_default_demos",
    "optional_path",
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


def optional_path(value: Any, name: str = "path") -> Path | None:
    """A path field's value: None, or a non-empty string or Path as a Path (anything else: ConfigError)."""
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
            object.__setattr__(self, name, optional_path(getattr(self, name), name))
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


# A game's default set: the first of these it has. The T-REX protocol's 12 PPO checkpoints (demos/README.md); Breakout's
# scripted player (``scripted-noise``) is the replaced protocol's, named by the regression checks and never a default.
DEFAULT_DEMO_SETS = ("ppo-checkpoints",)
# D-REX learns from one demonstrator's episodes, not from ranked checkpoints (Brown et al. 2019b §4; its released
# ``LearnAtariSyntheticRankingsBinning.py`` clones one ``--checkpoint_path``): its default is that set.
METHOD_DEMO_SETS: dict[str, tuple[str, ...]] = {"drex": ("drex-demos",)}


def committed_default_demos(game: str, method: str = "trex") -> Path | None:
    """The committed set a method's runs on a game use without ``--demos`` (the first it has of
    ``METHOD_DEMO_SETS[method]``, else of ``DEFAULT_DEMO_SETS``), or None."""
    for name in METHOD_DEMO_SETS.get(method, DEFAULT_DEMO_SETS):
        if (REPO_DEMOS / game / name / "manifest.json").exists():
            return REPO_DEMOS / game / name
    return None
