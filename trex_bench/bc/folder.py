"""Behaviour-cloning model folders (save/load) and the ``bc train`` command, split from ``rl.bc`` for size.

A BC folder is ``model.safetensors`` + ``card.json`` (game, action set, env profile, demos hash, config, metrics).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trex_bench.bc.config import BCConfig
from trex_bench.bc.train import BCNet, BCPolicy, train_bc
from trex_bench.core.errors import DataError

__all__ = ["BC_SCHEMA", "save_bc", "load_bc", "train_command", "summary_line"]

BC_SCHEMA = 1


def save_bc(policy: BCPolicy, out: str | Path, card: dict[str, Any]) -> Path:
    """Write a BC model folder: ``model.safetensors`` + ``card.json`` (both atomic).

    ``card`` holds what the caller knows (profile, demos hash, config, metrics); kind, architecture, game, action
    set and versions are filled in here.
    """
    from safetensors.torch import save_file

    from trex_bench.core.io import atomic_write, versions, write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in policy.net.state_dict().items()}
    atomic_write(out / "model.safetensors", lambda p: save_file(tensors, str(p)), suffix=".safetensors")
    full = dict(card)
    full.update(
        kind="bc_policy",
        schema_version=BC_SCHEMA,
        arch="nature-dqn",
        game=policy.game,
        n_actions=policy.n_actions,
        action_meanings=policy.action_meanings,
        input="uint8 stacks [N, 4, 84, 84], channels first; the net divides by 255 itself (no score mask)",
        output="logits over the env's action indices (the game's minimal action set under the profile)",
        versions=versions(),
    )
    write_json(out / "card.json", full)
    return out


def load_bc(
    folder: str | Path,
    game: str | None = None,
    n_actions: int | None = None,
    *,
    rng: np.random.Generator | None = None,
    device: str | torch.device = "cpu",
    deterministic: bool = False,
) -> BCPolicy:
    """Load a BC model folder written by ``save_bc``.

    Args:
        folder: the model folder.
        game: when given, refuse a model cloned on another game.
        n_actions: when given (the env's ``action_space.n``), refuse a model of another action-set size.
        rng: sampling rng of the policy (required unless ``deterministic``).
        device: where the net runs.
        deterministic: act by argmax.

    Raises:
        ValueError: missing files, a card of another kind, game or action set, or weights that do not fit.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from trex_bench.core.games import get_game
    from trex_bench.core.io import read_json

    folder = Path(folder)
    for name in ("card.json", "model.safetensors"):
        if not (folder / name).exists():
            raise DataError(f"{folder}: not a BC model ({name} is missing)")
    card = read_json(folder / "card.json")
    if card.get("kind") != "bc_policy":
        raise DataError(f"{folder}/card.json is not a BC-policy card (kind {card.get('kind')!r})")
    if game is not None and get_game(game).id != card["game"]:
        raise DataError(f"{folder} is a BC model of {card['game']}, not {get_game(game).id}")
    if n_actions is not None and int(card["n_actions"]) != n_actions:
        raise DataError(f"{folder} is a BC model over {card['n_actions']} actions, but this env has {n_actions}")
    net = BCNet(int(card["n_actions"]))
    try:
        net.load_state_dict(load_file(str(folder / "model.safetensors")))
    except (SafetensorError, RuntimeError) as e:
        raise DataError(f"{folder}/model.safetensors does not fit a {card['n_actions']}-action BC net: {e}") from e
    return BCPolicy(
        net,
        card["game"],
        card.get("action_meanings"),
        rng=rng,
        device=device,
        deterministic=deterministic,
        source=str(folder),
    )


def train_command(
    game: str,
    demos_dir: str | Path,
    out: str | Path,
    *,
    config: BCConfig,
    budget: str,
    seed: int = 0,
    cache_dir: str | Path | None = None,
    device: str = "cpu",
    progress: bool = True,
    created_by: str = "",
    overwrite: bool = False,
) -> Path:
    """``trex-bench bc train``: demos → frame cache → cloned policy folder in ``out``; refuses another game's
    demos, and an ``out`` holding anything but a BC policy (``core.io.claim_output``; ``overwrite``: the user's
    consent to write into it anyway)."""
    from trex_bench.core.games import get_game
    from trex_bench.core.io import claim_output, write_json
    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos

    claim_output(out, "bc_policy", overwrite)
    g = get_game(game)
    ds = load_demos(demos_dir)
    if ds.game != g.id:
        raise DataError(f"{demos_dir} holds {ds.game} demos, not {g.id}")
    cfg = config
    rng = np.random.default_rng(seed)
    policy, metrics = train_bc(FrameCache(ds, cache_dir), ds, cfg, rng, device, progress=progress)
    card = dict(
        profile=ds.profile,
        profile_settings=ds.profile_settings,
        demos=dict(
            path=str(demos_dir),
            content_hash=ds.content_hash(),
            n_episodes=len(ds.episodes),
            demonstrator=ds.demonstrator,
        ),
        budget=budget,
        seed=seed,
        config=asdict(cfg),
        created_by=created_by,
        metrics={k: v for k, v in metrics.items() if k != "log"},
    )
    out = Path(out)
    save_bc(policy, out, card)
    write_json(out / "train_log.json", dict(config=asdict(cfg), log=metrics["log"]))
    return out


def summary_line(metrics: dict[str, Any]) -> str:
    """One line of a BC policy's metrics (its card's ``metrics``), for the command's output."""
    return (
        f"held-out accuracy {'n/a' if metrics['val_accuracy'] is None else format(metrics['val_accuracy'], '.3f')} "
        f"(majority class {metrics['majority_val_accuracy']:.3f}, "
        f"chance {metrics['chance_accuracy']:.3f}), train {metrics['train_accuracy']:.3f}; best step "
        f"{metrics['best_step']} of {metrics['steps']} ({metrics['stopped']})"
    )
