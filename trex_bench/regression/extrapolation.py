"""Regression checks on the committed unseen sets: does a reward still extrapolate as it did?

Two checks of ``trex_bench.regression.checks.CHECKS`` score nets on ``demos/<game>/ppo-checkpoints`` ∪
``demos/<game>/ppo-later`` with ``trex_bench.reward.extrapolation.score_split`` (T-REX's Fig. 3 protocol):

* ``extrap.<game>``: a fixed-seed T-REX net trained at the ``smoke`` budget with ``EXTRAP_FIXED`` on the demos
  alone — its weights' SHA-256 (exact) and Spearman of the mean per-frame reward with the true return on the
  unseen episodes and on all of them, and snippet accuracy beyond the best demo (bands over seeds);
* ``released.<game>``: the authors' released T-REX net (``reward.official.load_official`` from the reference folder
  given explicitly, ``<root>/../shared/reference`` by default) — no training, so its figures are deterministic and
  compared within 1e-5 relative: Spearman on all and on the unseen episodes, and the mean predicted reward.

Both cost a replay of the merged set into the frame cache once (about 40 s for Breakout on 2 busy cores), then
seconds; ``released`` is skipped, loudly, where the reference folder is absent (a clone without ``../shared``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trex_bench.regression.numerics import CheckSkipped, Measured, reproducible_torch, state_sha256

__all__ = [
    "EXTRAP_FIXED",
    "EXTRAP_BANDED",
    "REFERENCE",
    "ExtrapolationSpec",
    "measure_extrapolation",
    "measure_released",
]

# smoke's short snippets (10-20 observations), 800 pairs instead of 200: measured on Breakout, seeds 0-3, Spearman
# on the unseen episodes 0.77-0.84 (smoke's 200 pairs: 0.60-0.75, the `quick` budget 0.86 ± 0.02) in 15 s of training
# on one thread; the last weights, as ``REWARD_FIXED``.
EXTRAP_FIXED: dict[str, Any] = {"n_pairs": 800, "select": "last"}
EXTRAP_BANDED = ("spearman_mean_unseen", "spearman_mean_all", "beyond_best_accuracy")
REFERENCE = Path("../shared/reference")  # relative to the repository root, as the CLI's `reward import --reference`


@dataclass(frozen=True)
class ExtrapolationSpec:
    """A fixed-seed T-REX net trained on a game's early checkpoints and scored on its later ones.

    Attributes:
        game: a game with committed ``demos/<game>/ppo-checkpoints`` and ``ppo-later``.
        seed: seeds ``np.random.default_rng`` of the trainer (pairs, split, batch order, init).
        overrides: ``TrainConfig`` fields changed from ``smoke`` + ``EXTRAP_FIXED``.
        ranker: a ranker instead of ``ranking.by_return`` (tests reverse it).
    """

    game: str = "breakout"
    seed: int = 0
    overrides: Mapping[str, Any] = field(default_factory=dict)
    ranker: Callable[[Any], Any] | None = None


def _split(root: Path, game: str) -> tuple[Any, Any]:
    from trex_bench.demos.store import load_demos

    demos = load_demos(root / "demos" / game / "ppo-checkpoints")
    return demos, load_demos(root / "demos" / game / "ppo-later", game=demos.game)


def _round(v: float | None) -> float:
    return float("nan") if v is None else round(float(v), 6)


def measure_extrapolation(
    root: Path, spec: ExtrapolationSpec, cache_dir: str | Path | None = None
) -> dict[str, Measured]:
    """Train ``spec``'s net on the demos (CPU, one thread), score it on demos ∪ unseen; hash and banded figures."""
    import numpy as np

    from trex_bench.core.games import get_game
    from trex_bench.demos.frames import FrameCache
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.reward import ranking
    from trex_bench.reward.extrapolation import score_split
    from trex_bench.reward.train import train_reward

    demos, unseen = _split(root, spec.game)
    cfg = reward_config("smoke", "trex", **{**EXTRAP_FIXED, **dict(spec.overrides)})
    ranker = spec.ranker or ranking.by_return
    with reproducible_torch():
        model, _ = train_reward(
            FrameCache(demos, cache_dir),
            ranker(demos),
            cfg,
            get_game(demos.game),
            np.random.default_rng(spec.seed),
            "cpu",
        )
        result = score_split(model, "trex", spec.seed, demos, unseen, cache_dir)
    out = {"weights_sha256": Measured(state_sha256(model))}
    out.update({k: Measured(_round(result.metrics[k]), "band") for k in EXTRAP_BANDED})
    return out


def measure_released(
    root: Path,
    game: str = "breakout",
    reference: str | Path | None = None,
    cache_dir: str | Path | None = None,
    mask_shift: int = 0,
) -> dict[str, Measured]:
    """The released T-REX net of ``game`` scored on its committed split: Spearman (all, unseen), mean prediction.

    Args:
        reference: the released artefacts' folder; None: ``root / REFERENCE``.
        mask_shift: rows added to the game's top score mask before loading (tests perturb the preprocessing).

    Raises:
        CheckSkipped: the reference folder is absent.
    """
    import numpy as np

    from trex_bench.core.games import get_game
    from trex_bench.reward.extrapolation import score_split
    from trex_bench.reward.official import load_official

    ref = Path(reference) if reference is not None else root / REFERENCE
    if not ref.is_dir():
        raise CheckSkipped(f"the authors' released nets are not at {ref} (<root>/{REFERENCE})")
    g = get_game(game)
    if mask_shift:
        g = dataclasses.replace(g, mask_top=g.mask_top + mask_shift)
    demos, unseen = _split(root, g.id)
    with reproducible_torch():
        result = score_split(load_official(g, "trex", ref), "released-trex", -1, demos, unseen, cache_dir)
    pred_mean = float(np.mean([e["pred_mean"] for e in result.episodes]))
    return {
        "spearman_mean_all": Measured(_round(result.metrics["spearman_mean_all"]), "rel"),
        "spearman_mean_unseen": Measured(_round(result.metrics["spearman_mean_unseen"]), "rel"),
        "pred_mean": Measured(pred_mean, "rel"),
    }
