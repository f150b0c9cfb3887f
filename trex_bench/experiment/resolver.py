"""The one resolver: what a user asks for (game, method, budget, seed, overrides) → an :class:`ExperimentConfig`.

Every check of the values runs here or in the config's own validation, once; the CLI, the sweep and the Python API
all call :func:`resolve`.

>>> cfg = resolve("Breakout", "trex", "smoke")
>>> cfg.game, cfg.reward.n_pairs, cfg.ppo.total_steps, cfg.eval.episodes
('breakout', 200, 2048, 2)
>>> ExperimentConfig.from_json(cfg.to_json()) == cfg
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trex_bench.core.errors import ConfigError
from trex_bench.experiment.budgets import bc_config, gail_config, get_budget, prefs_config, reward_config
from trex_bench.experiment.config import EvalConfig, ExperimentConfig, optional_path
from trex_bench.experiment.methods import Method, get_method
from trex_bench.rl.config import KLSpec, PPOConfig

__all__ = ["resolve"]


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
        demos=optional_path(demos),
        ranking=ranking,
        human_labels=optional_path(human_labels),
        transform=transform,
        unseen=optional_path(unseen),
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
