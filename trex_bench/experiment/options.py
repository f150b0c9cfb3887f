"""What the ``pipeline`` command asks for: :class:`PipelineConfig`, whose fields are also its command-line options.

Kept apart from ``trex_bench.experiment.pipeline`` (the stages, the run folder) so that building the CLI, which reads
these fields' metadata (``trex_bench.cli.options``), imports no more than the config and the budget table.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trex_bench.core.types import ENV_PROFILES, PRECISIONS, REWARD_TRANSFORMS
from trex_bench.experiment.budgets import BUDGETS
from trex_bench.experiment.config import LABELERS, METHODS, RANKINGS, REPO_DEMOS, ExperimentConfig
from trex_bench.experiment.resolver import resolve

__all__ = ["PipelineConfig"]


def _cli(help: str, flag: str | None = None, choices: Any = None, metavar: str | None = None) -> dict[str, Any]:
    """A field's command-line option, as data (``trex_bench.cli.options`` builds the argparse options from it):
    its help, its flag (default ``--field-name``; a name without dashes is a positional), choices and metavar."""
    return {
        "cli": {"help": help, "flag": flag, "choices": None if choices is None else tuple(choices), "metavar": metavar}
    }


@dataclass(frozen=True)
class PipelineConfig:
    """One benchmark run as asked for; :meth:`resolve` gives the :class:`~trex_bench.experiment.config.ExperimentConfig`
    that runs (bad values fail there, with one line). Each field's metadata is its command-line option: the ``pipeline``
    command (and the sweep's shared options) are generated from these fields (``trex_bench.cli.options``).

    Attributes:
        game, method, budget, seed: what to run.
        demos: the demo set (default: ``config.committed_default_demos``: the game's ppo-checkpoints; D-REX's
            drex-demos).
        ranking: how the demos are ranked for the reward net (``return``, ``checkpoint``, ``noise``, ...).
        human_labels: the labels CSV of ``--ranking human``: the labeling page's ``labels.csv`` (clip preferences)
            or the MTurk CSV (checkpoint numbers of the demo set's episodes).
        transform: how PPO sees the learned reward (``sigmoid``, the papers).
        eval_episodes: full games in the evaluation (default by budget: 30, the papers').
        profile: env profile (``paper`` | ``machado``).
        device: torch device.
        kl_to, kl_beta: the RLHF KL penalty's reference policy and β.
        max_seconds: opt-in wall-time valve on PPO (never set by a budget; a run it stops is marked time_capped).
        precision: the policy trunk's numerics, ``fp32`` | ``bf16`` | ``auto`` (``trex_bench.rl.precision``).
        unseen: later checkpoints of the demos' PPO run, for the reward's extrapolation check before PPO (default:
            the demo set's sibling ``ppo-later`` when it has one, as the committed PPO-checkpoint sets do).
    """

    game: str = field(metadata=_cli("game id, e.g. breakout (not with --config)", flag="game"))
    method: str = field(metadata=_cli(" | ".join(METHODS)))
    budget: str = field(
        metadata=_cli(" | ".join(BUDGETS) + " (gpu: 700k agent steps for one GPU + 16 cores)", choices=BUDGETS)
    )
    seed: int = field(default=0, metadata=_cli("seed of every stage (default 0)"))
    demos: Path | None = field(
        default=None,
        metadata=_cli(
            f"demo set (default: {REPO_DEMOS}/<game>/ppo-checkpoints, the T-REX protocol's 12 PPO checkpoints; "
            "drex: <game>/drex-demos, one demonstrator's episodes; committed beside the trex_bench package that "
            "runs, not ./demos of the working folder)"
        ),
    )
    ranking: str = field(default="return", metadata=_cli("T-REX's ranking (default: return)", choices=RANKINGS))
    human_labels: Path | None = field(
        default=None,
        metadata=_cli(
            "for --ranking human: labels.csv of `trex-bench label serve`, or the T-REX MTurk CSV (A,B,label,…) "
            "whose A/B are the demo set's checkpoint numbers"
        ),
    )
    transform: str = field(
        default="sigmoid",
        metadata=_cli(
            "learned-reward transform for PPO: sigmoid (the papers) | raw | normalized (divided by a running return "
            "std) | delta (potential-based shaping r̂(s′) − r̂(s), an experiment)",
            choices=REWARD_TRANSFORMS,
        ),
    )
    eval_episodes: int | None = field(
        default=None, metadata=_cli("evaluation games (default: 30; smoke: 2)", flag="--episodes")
    )
    profile: str = field(default="paper", metadata=_cli("env profile (default: paper)", choices=ENV_PROFILES))
    device: str = field(default="cpu", metadata=_cli("torch device (default: cpu)"))
    kl_to: Path | None = field(default=None, metadata=_cli("BC policy folder: add the RLHF KL penalty to PPO's reward"))
    kl_beta: float = field(default=0.0, metadata=_cli("β of r − β·(log π_θ(a|s) − log π_BC(a|s))"))
    max_seconds: float | None = field(
        default=None,
        metadata=_cli(
            "opt-in safety valve: stop PPO after S seconds of training (recorded in the card and the row's "
            "time_capped; a run it stops depends on the machine's load, so budgets never set it)",
            metavar="S",
        ),
    )
    precision: str = field(
        default="fp32",
        metadata=_cli(
            "PPO policy numerics: fp32 (default) | bf16 autocast of the conv trunk | auto (the faster on this "
            "machine, probed once and cached in ~/.cache/trex_bench/precision.json)",
            choices=PRECISIONS,
        ),
    )
    unseen: Path | None = field(
        default=None,
        metadata=_cli(
            "later checkpoints of the demos' PPO run: score the reward's extrapolation before PPO "
            "(default: the demo set's sibling ppo-later, if any)"
        ),
    )
    labeler: str | None = field(
        default=None,
        metadata=_cli(
            "prefs: who answers the loop's queries: synthetic (default: the clip with the higher true score) | "
            "human (a person on `trex-bench label serve RUN`; the run waits for the first batch)",
            choices=LABELERS,
        ),
    )
    label_noise: float | None = field(
        default=None,
        metadata=_cli("prefs: the synthetic labeler's error rate, in [0, 0.5] (default 0)", metavar="P"),
    )

    def resolve(self) -> ExperimentConfig:
        """The resolved experiment (``trex_bench.experiment.resolver.resolve``): every check of the values, once."""
        return resolve(**dataclasses.asdict(self))
