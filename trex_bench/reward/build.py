"""``trex-bench reward train`` as a function: demos → ranking → frame cache → trained reward-model folder.

The trainer itself (``trex_bench.reward.train``) takes frames, a ranking and a config; this module wires a demo-set
folder, a ranking source and a budget to it and writes the model folder with its card.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import DemoSet, Ranking, SnippetPairs
from trex_bench.reward.config import TrainConfig
from trex_bench.reward.labels import label_format, labelled_snippet_pairs
from trex_bench.reward.snippets import latest_checkpoint_episodes, split_by_episode_pairs, split_by_held_out_episodes
from trex_bench.reward.train import train_reward

__all__ = ["train_command", "summary_line"]


def train_command(
    game: str,
    demos_dir: str | Path,
    out: str | Path,
    *,
    method: Literal["trex", "drex"] = "trex",
    ranking: str = "return",
    human_labels: str | Path | None = None,
    config: TrainConfig,
    budget: str,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    synthetic_temperature: float = 1.0,
    overwrite: bool = False,
) -> Path:
    """``trex-bench reward train``: demos → ranking → frame cache → trained reward model folder in ``out``.

    Refuses a demo set of another game than ``game``. Writes ``model.safetensors`` + ``card.json`` (profile, demo
    content hash, ranking source, config, metrics) and ``train_log.json`` atomically. ``config`` is what trains
    (``trex_bench.experiment.budgets.reward_config`` builds a budget's); ``budget`` is recorded in the card. An
    ``out`` holding anything but a reward model is refused before any work (``core.io.claim_output``; ``overwrite``:
    the user's consent to write into it anyway).
    """
    from trex_bench.core.games import get_game
    from trex_bench.core.io import claim_output
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.reward.net import save_model

    claim_output(out, "reward_model", overwrite)
    g = get_game(game)
    ds = load_demos(demos_dir)
    if ds.game != g.id:
        raise ConfigError(f"{demos_dir} holds {ds.game} demos, not {g.id}")
    rng = np.random.default_rng(seed)
    # validation "latest" holds out the episodes of the latest checkpoint (-1: none recorded)
    checkpoints = np.array([e.checkpoint for e in ds.episodes], dtype=np.int64)
    prefs = _preferences(ds, ranking, human_labels, config, rng, checkpoints, synthetic_temperature)
    out = Path(out)
    model, metrics = train_reward(
        FrameCache(ds, cache_dir),
        prefs.ranking,
        config,
        g,
        rng,
        device,
        progress=progress,
        log_dir=out,
        tensorboard=True,
        pairs=prefs.pairs,
        checkpoints=checkpoints,
    )
    card = _card(ds, demos_dir, prefs, human_labels, method, budget, seed, config, metrics)
    save_model(model, out, card)
    return out


@dataclass(frozen=True)
class _Preferences:
    """What a reward trains on: a ranking to sample snippet pairs from, or (the labeling page's answers) the
    (train, val) pairs themselves; ``n_labelled``: the answered pairs then."""

    ranking: Ranking | None
    pairs: tuple[SnippetPairs, SnippetPairs] | None = None
    n_labelled: int = 0


def _preferences(
    ds: DemoSet,
    ranking: str,
    human_labels: str | Path | None,
    cfg: TrainConfig,
    rng: np.random.Generator,
    checkpoints: np.ndarray,
    synthetic_temperature: float,
) -> _Preferences:
    """The preferences of the ranking source ``ranking`` over the episodes of ``ds``."""
    from trex_bench.reward import ranking as rankers

    if ranking == "return":
        return _Preferences(rankers.by_return(ds))
    if ranking == "checkpoint":
        return _Preferences(rankers.by_checkpoint(ds))
    if ranking == "noise":
        return _Preferences(rankers.by_noise(ds))
    if ranking == "human":
        if human_labels is None:
            raise ConfigError("--ranking human needs --human-labels CSV")
        if label_format(human_labels) == "clips":  # the labeling page's answers: the labelled clips are the pairs
            labelled = labelled_snippet_pairs(ds, human_labels)
            return _Preferences(None, _resampled(labelled, cfg, rng, checkpoints), len(labelled))
        return _Preferences(rankers.from_human_labels(ds, human_labels))
    if ranking == "synthetic":
        return _Preferences(rankers.synthetic_bradley_terry(ds, rng, synthetic_temperature, n_queries=1000))
    raise ConfigError(f"unknown ranking {ranking!r}; valid: return, checkpoint, noise, human, synthetic")


def _card(
    ds: DemoSet,
    demos_dir: str | Path,
    prefs: _Preferences,
    human_labels: str | Path | None,
    method: str,
    budget: str,
    seed: int,
    cfg: TrainConfig,
    metrics: dict[str, Any],
) -> dict[str, Any]:
    """The model card: profile, demo content hash, ranking source, config and metrics (the members' without logs)."""
    rk = prefs.ranking
    return dict(
        profile=ds.profile,
        demos=dict(path=str(demos_dir), content_hash=ds.content_hash(), n_episodes=len(ds.episodes)),
        ranking=dict(
            source=rk.source if rk is not None else "human",
            n_pairs=len(rk.pairs) if rk is not None else prefs.n_labelled,
            human_labels=str(human_labels) if human_labels else None,
            label_format=label_format(human_labels) if human_labels else None,
        ),
        method=method,
        budget=budget,
        seed=seed,
        config=asdict(cfg),
        metrics={k: v for k, v in metrics.items() if k != "members"}
        | dict(members=[{k: v for k, v in m.items() if k != "log"} for m in metrics["members"]]),
    )


def _resampled(
    labelled: SnippetPairs, cfg: TrainConfig, rng: np.random.Generator, checkpoints: np.ndarray
) -> tuple[SnippetPairs, SnippetPairs]:
    """(train, val) snippet pairs from the labeling page's answers (``trex_bench.reward.labels``).

    Validation holds out whole episode pairs, as for sampled snippets (or, under ``validation="latest"``, the
    labelled pairs of a latest-checkpoint episode against another; pairs of two such episodes are left out). The
    training side is then drawn ``n_pairs × (1 − val_frac)`` times with replacement from the labelled pairs, as
    T-REX's sampler draws its ``n_pairs`` uniformly from the ranking's preferences: a budget's recipe takes the same
    number of steps whether a person answered 50 pairs or 500.
    """
    if cfg.validation == "latest":
        train, val = split_by_held_out_episodes(labelled, latest_checkpoint_episodes(checkpoints))
        if not len(train) or not len(val):
            raise ConfigError(
                f"validation 'latest': of {len(labelled)} labelled pairs {len(train)} are left to train on and "
                f"{len(val)} to validate; use validation 'episodes'"
            )
    else:
        train, val = split_by_episode_pairs(labelled, cfg.val_frac, rng)
    n_train = max(len(train), round(cfg.n_pairs * (1 - cfg.val_frac)))
    return train.subset(rng.integers(len(train), size=n_train)), val


def summary_line(metrics: dict) -> str:
    """One line of a trained reward model's metrics (its card's ``metrics``), for the command's output."""
    return (
        f"val pair accuracy {'n/a' if metrics['val_accuracy'] is None else format(metrics['val_accuracy'], '.3f')}, "
        f"train {metrics['train_accuracy']:.3f}, "
        f"{metrics['wall_seconds']:.0f} s ({'; '.join(metrics['stopped'])})"
    )
