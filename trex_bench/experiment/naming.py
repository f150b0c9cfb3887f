"""A run's folder name: the readable options spelled out, a short hash of every other field that differs from the
defaults (:func:`trex_bench.experiment.resolver.resolve` of the same game, method, budget and seed).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trex_bench.core.io import stable_hash
from trex_bench.experiment.config import REPO_DEMOS, ExperimentConfig, committed_default_demos
from trex_bench.experiment.resolver import resolve

__all__ = ["run_name", "non_default_fields"]


def run_name(cfg: ExperimentConfig) -> str:
    """``<game>-<method>[-<ranking>][-<transform>][-kl<β>][-<demo set>][-<profile>][-cap<S>s][-<precision>]
    -<budget>-s<seed>[-<hash>]``.

    The readable part names the usual options; ``<hash>`` (8 hex) is a short hash of every other field that
    differs from ``resolve(game, method, budget, seed)`` (evaluation episodes, the ``--kl-to`` folder, a demo
    set outside ``demos/``, an edited stage config …), so two experiments never share a folder (a sweep reads a
    folder's ``summary.json`` as "this run is done"). A run of all defaults has no hash.

    >>> run_name(resolve("Breakout", "trex", "smoke"))
    'breakout-trex-smoke-s0'
    >>> run_name(resolve("breakout", "trex", "smoke", profile="machado"))
    'breakout-trex-machado-smoke-s0'
    >>> run_name(resolve("breakout", "trex", "smoke", eval_episodes=3))  # doctest: +ELLIPSIS
    'breakout-trex-smoke-s0-...'
    """
    parts = [cfg.game, cfg.method]
    if cfg.method == "trex" and cfg.ranking != "return":
        parts.append(cfg.ranking)
    if cfg.transform != "sigmoid":
        parts.append(cfg.transform)
    if cfg.kl is not None:
        parts.append(f"kl{cfg.kl.beta:g}")
    if cfg.demos is not None and _demos_key(cfg.game, cfg.method, cfg.demos) != "default":
        parts.append(cfg.demos.resolve().name)
    if cfg.profile != "paper":
        parts.append(cfg.profile)
    if cfg.ppo is not None and cfg.ppo.max_seconds is not None:
        parts.append(f"cap{cfg.ppo.max_seconds:g}s")
    if cfg.precision != "fp32":
        parts.append(cfg.precision)
    if cfg.labeler == "human":
        parts.append("human")
    if cfg.prefs is not None and cfg.prefs.label_noise > 0:
        parts.append(f"noise{cfg.prefs.label_noise:g}")
    parts += [cfg.budget, f"s{cfg.seed}"]
    extra = non_default_fields(cfg)
    if extra:
        parts.append(stable_hash(extra, 8))
    return "-".join(parts)


def non_default_fields(cfg: ExperimentConfig) -> dict[str, Any]:
    """The fields that differ from the defaults and are not spelled out in the readable run name."""
    base = resolve(cfg.game, cfg.method, cfg.budget, cfg.seed).to_json()
    mine = cfg.to_json()
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
        key = _demos_key(cfg.game, cfg.method, cfg.demos)
        if key in ("default", "repo"):
            del diff["demos"]  # spelled out in the name (a committed set's folder name is unique there)
        else:
            diff["demos"] = key
    if "kl" in diff:
        diff["kl"] = {"beta": cfg.kl.beta, "to": str(cfg.kl.to.resolve())} if cfg.kl else None
    for name in ("human_labels", "unseen"):
        if diff.get(name) is not None:
            diff[name] = str(Path(diff[name]).resolve())
    return diff


def _demos_key(game: str, method: str, demos: Path | None) -> str:
    """``default`` for the method's default committed set of the game (``committed_default_demos``), ``repo`` for
    another committed set of the game (its folder name is unique there and is in the run name), else the set's
    absolute path."""
    if demos is None:
        return "default"
    path = Path(demos).resolve()
    if path == committed_default_demos(game, method):
        return "default"
    return "repo" if path.parent == REPO_DEMOS / game else str(path)
