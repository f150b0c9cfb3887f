"""The pipeline's typed stage results, read once from the JSON their stages write (``trex_bench.experiment.stages``).

Each is a frozen dataclass with ``from_json`` (or ``from_card``) and ``to_json``; the leaderboard row reads their
fields, so a report without a figure fails here in one line instead of writing an empty column.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from trex_bench.core.errors import DataError

__all__ = ["FidelityFigures", "AgentResult", "Evaluation"]


@dataclass(frozen=True)
class FidelityFigures:
    """The reward net's fidelity on the demos it was trained from (``fidelity.json``): per-frame-mean Spearman with
    the true return, and snippet-pair accuracy; the Spearman is None where all returns were equal."""

    spearman: float | None
    pair_accuracy: float | None

    @classmethod
    def from_json(cls, report: Mapping[str, Any]) -> FidelityFigures:
        """The figures of a ``fidelity_report``; a report without them is refused (a renamed key must not become
        an empty leaderboard column). A Spearman that could not be computed (all returns equal) is None."""
        try:
            return cls(report["correlations"]["pred_mean"]["spearman"], report["pairwise"]["accuracy"])
        except (KeyError, TypeError) as e:
            raise DataError(
                f"not a fidelity report (no correlations.pred_mean.spearman / pairwise.accuracy): {e}"
            ) from e

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class AgentResult:
    """What the run's row needs from a PPO agent's ``card.json``."""

    steps: int
    schedule_steps: int | None
    precision: str
    time_capped: bool

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> AgentResult:
        return cls(
            steps=int(card["steps"]),
            schedule_steps=card.get("schedule_steps"),
            precision=card.get("precision", "fp32"),
            time_capped=str(card.get("stopped", "")).startswith("time cap"),
        )

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Evaluation:
    """The full games of the final policy (``eval.json``): their true returns in the order played, and the summary
    ``evaluate_agent`` computed from them against the demos (computed there once, read here)."""

    returns: tuple[float, ...]
    summary: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    SUMMARY = ("mean", "std", "min", "max", "best_demo", "avg_demo", "beats_best_demo", "human_normalized")

    @classmethod
    def from_json(cls, report: dict[str, Any]) -> Evaluation:
        return cls(tuple(float(r) for r in report["returns"]), {k: report.get(k) for k in cls.SUMMARY})

    def to_json(self) -> dict[str, Any]:
        return {"returns": list(self.returns), **self.summary}
