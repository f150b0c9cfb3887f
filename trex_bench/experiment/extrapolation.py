"""The reward nets the extrapolation benchmark scores: trained once per (demos, method, budget, seed), then reused.

``train_or_reuse`` trains T-REX (or any ``reward train`` method) on the demo set; ``train_drex_or_reuse`` follows
D-REX's own protocol on one checkpoint's episodes. Both reuse a finished folder only when its recorded key matches,
and refuse a folder that holds another net. ``prefs_reward`` reads back what a finished preference-loop run paid PPO,
to be scored beside them. Scoring and the table are ``trex_bench.reward.extrapolation``.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trex_bench.core.errors import ConfigError
from trex_bench.core.types import DemoSet
from trex_bench.reward.config import TrainConfig

if TYPE_CHECKING:  # torch: the CLI reads CHOICES at start-up, without it
    from trex_bench.reward.pref_ensemble import PaidReward

__all__ = ["CHOICES", "choice_label", "prefs_reward", "train_or_reuse", "train_drex_or_reuse"]

# Which reward net a run keeps (``TrainConfig`` overrides on the budget's recipe), compared in
# results/tables/reward-choice.md. default: the best validation accuracy on held-out episode pairs of the demos;
# latest: on the latest checkpoint's episode held out of training; ensemble: three nets, each on its own bootstrap
# resample of the training pairs, r(s) their mean (Christiano et al. 2017 §2.2.3).
CHOICES: dict[str, dict[str, Any]] = {
    "default": {},
    "latest": {"validation": "latest"},
    "ensemble": {"ensemble": 3, "bootstrap": True},
}


def choice_label(method: str, choice: str) -> str:
    """The method column of a choice's rows (and its run folders): ``trex`` for the default, ``trex+latest`` etc."""
    if choice not in CHOICES:
        raise ConfigError(f"unknown reward choice {choice!r}; valid: {', '.join(CHOICES)}")
    return method if choice == "default" else f"{method}+{choice}"


def _same_config(stored: Any, want: TrainConfig) -> bool:
    """Whether a card's recorded config is ``want`` (a field it lacks takes its default, as it trained then)."""
    try:
        return isinstance(stored, dict) and TrainConfig(**stored) == want
    except (TypeError, ConfigError):
        return False


def train_or_reuse(
    game: str,
    demos_dir: Path,
    out: Path,
    method: str,
    budget: str,
    seed: int,
    cache_dir: str | Path | None,
    progress: bool,
    choice: str = "default",
) -> Path:
    """The reward model of (demos, method, budget, seed, choice) in ``out``: reused when its card says it is that one.

    ``choice`` is a key of ``CHOICES``: which net the trainer keeps.
    """
    from trex_bench.core.io import claim_output, read_json
    from trex_bench.demos.store import load_demos
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.reward.build import train_command

    choice_label(method, choice)  # a one-line error on an unknown choice
    claim_output(out, "reward_model")
    want = reward_config(budget, method, **CHOICES[choice])
    card = out / "card.json"
    if card.exists():
        c = read_json(card)
        if (
            _same_config(c.get("config"), want)
            and c.get("seed") == seed
            and c.get("demos", {}).get("content_hash") == load_demos(demos_dir).content_hash()
        ):
            return out
        raise ConfigError(
            f"{out} holds another reward model (config, seed or demos differ); remove it or use another --out"
        )
    return train_command(
        game,
        demos_dir,
        out,
        method=method,  # type: ignore[arg-type]
        config=want,
        budget=budget,
        seed=seed,
        cache_dir=cache_dir,
        progress=progress,
    )


def train_drex_or_reuse(
    game: str,
    drex_demos_dir: Path,
    out: Path,
    budget: str,
    seed: int,
    cache_dir: str | Path | None,
    progress: bool,
    device: str = "cpu",
) -> Path:
    """D-REX's own protocol (Brown, Goo, Niekum, CoRL 2019 §4): behaviour-clone the episodes of ONE demonstrator
    checkpoint, roll the clone out at the ε levels of ``drex.DREX_NOISE`` (plus the no-op bin), and learn a reward
    ranked by noise alone: the demos' returns are never read. Stages go to ``out/{bc,rollouts,reward}``; returns the
    reward folder. A finished ``out`` of the same key is reused; ``out`` is built in a temporary sibling and moved in
    whole, so an interrupted run leaves nothing half-made.

    Raises:
        ValueError: ``out`` holds another D-REX run (budget, seed or demos differ).
    """
    import os
    import shutil

    from trex_bench.core.io import read_json, write_json
    from trex_bench.demos.store import load_demos

    drex_demos = load_demos(drex_demos_dir, game=game)
    key = _drex_key(drex_demos.content_hash(), budget, seed)
    if (out / "key.json").exists():
        if _same_drex_key(read_json(out / "key.json"), key) and (out / "reward" / "card.json").exists():
            return out / "reward"
        raise ConfigError(
            f"{out} holds another D-REX run (budget, seed or demos differ); remove it or use another --runs"
        )
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        _drex_stages(game, drex_demos_dir, drex_demos, tmp, budget, seed, cache_dir, progress, device)
        write_json(tmp / "key.json", key)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out / "reward"


def _drex_key(demos_hash: str, budget: str, seed: int) -> dict[str, Any]:
    """What a D-REX run of the extrapolation benchmark is: the demos, seed and every stage's recipe of ``budget``."""
    from trex_bench.experiment.budgets import BUDGETS, bc_config, reward_config
    from trex_bench.reward.drex import rollout_recipe

    return {
        "method": "drex",
        "seed": seed,
        "demos": demos_hash,
        "bc": asdict(bc_config(budget)),
        "rollouts": {**rollout_recipe(), "per_level": BUDGETS[budget].drex_rollouts},
        "reward": asdict(reward_config(budget, "drex")),  # type: ignore[arg-type]
    }


def _drex_stages(
    game: str,
    drex_demos_dir: Path,
    drex_demos: DemoSet,
    folder: Path,
    budget: str,
    seed: int,
    cache_dir: str | Path | None,
    progress: bool,
    device: str,
) -> None:
    """D-REX's three stages into ``folder/{bc,rollouts,reward}``: the clone, its noise rollouts, the reward ranked by
    noise."""
    from trex_bench.bc.folder import train_command as train_bc
    from trex_bench.experiment.budgets import BUDGETS, bc_config, reward_config
    from trex_bench.reward.build import train_command
    from trex_bench.reward.drex import noise_rollouts

    train_bc(
        game,
        drex_demos_dir,
        folder / "bc",
        config=bc_config(budget),
        budget=budget,
        seed=seed,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )
    noise_rollouts(
        drex_demos,
        folder / "bc",
        folder / "rollouts",
        per_level=BUDGETS[budget].drex_rollouts,
        seed=seed,
        device=device,
        progress=progress,
    )
    train_command(
        game,
        folder / "rollouts" / "demos",
        folder / "reward",
        method="drex",
        ranking="noise",
        config=reward_config(budget, "drex"),
        budget=budget,
        seed=seed,
        cache_dir=cache_dir,
        device=device,
        progress=progress,
    )


def _same_drex_key(stored: Any, key: dict[str, Any]) -> bool:
    """A D-REX run's ``key.json`` against the wanted key, its reward config compared as ``_same_config`` does."""
    if not isinstance(stored, dict) or set(stored) != set(key):
        return False
    want = TrainConfig(**key["reward"])
    return all(stored[k] == v for k, v in key.items() if k != "reward") and _same_config(stored["reward"], want)


def prefs_reward(run: str | Path, game: str) -> tuple[PaidReward, str, int]:
    """(the final reward of the ``prefs`` run folder ``run``, its rows' method, the run's seed): the reward is its nets
    and normalisation as saved when PPO ended (``<run>/agent/online``), scored as PPO was paid; the method is
    ``prefs-<budget>`` (a quick and a small run of one seed are two rows).

    Raises:
        ConfigError: ``run`` is not a finished prefs run of ``game``.
    """
    from trex_bench.experiment.config import ExperimentConfig
    from trex_bench.rl.preference_loop import load_paid_reward

    run = Path(run)
    if not (run / "config.json").is_file():
        raise ConfigError(f"--prefs-run {run}: not a run folder (no config.json)")
    cfg = ExperimentConfig.read(run / "config.json")
    if cfg.method != "prefs" or cfg.prefs is None:
        raise ConfigError(f"--prefs-run {run}: a {cfg.method} run, not prefs")
    if cfg.game != game:
        raise ConfigError(f"--prefs-run {run}: a {cfg.game} run, not {game}")
    if not (run / "agent" / "card.json").is_file():
        raise ConfigError(f"--prefs-run {run}: its PPO has not finished (no agent/card.json); score a finished run")
    return load_paid_reward(run / "agent" / "online", cfg.game, cfg.prefs), f"prefs-{cfg.budget}", cfg.seed
