"""The papers' demonstrator: PPO checkpoints on the true reward, one episode from each of the early ones.

T-REX (§5, PAPERS.md) trained PPO on the true reward and recorded one stochastic episode from each of 12 early
checkpoints; ranked by return (or by checkpoint order: "learning from a learner", Jacq et al. 2019) they are the
demonstrations. ``trex-bench demos collect GAME --demonstrator ppo`` does the same here: it trains (or reuses) a
PPO run on the true reward, then records ``--episodes`` episodes from each of the first ``--checkpoints``
checkpoints, each episode tagged with its checkpoint index.
"""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

from trex_bench.demos.collect import CollectConfig, collect
from trex_bench.demos.policies import SB3Policy
from trex_bench.demos.store import DemoError, merge_demo_sets, save_demos
from trex_bench.games import get_game
from trex_bench.types import DemoSet

__all__ = ["list_checkpoints", "collect_from_checkpoints", "collect_from_ppo_checkpoints"]


def list_checkpoints(folder: str | Path) -> list[tuple[int, Path]]:
    """``(agent steps, path)`` of every ``ppo_<steps>_steps.zip`` in ``folder``, in training order."""
    found = []
    for p in Path(folder).glob("*_steps.zip"):
        m = re.search(r"_(\d+)_steps\.zip$", p.name)
        if m:
            found.append((int(m.group(1)), p))
    return sorted(found)


def collect_from_checkpoints(
    game: str, checkpoints: list[Path], episodes_per_checkpoint: int, seed: int, profile: str = "paper",
    n_envs: int = 1, progress: bool = True, created_by: str = "", device: str = "cpu",
) -> DemoSet:
    """Record ``episodes_per_checkpoint`` stochastic episodes from each checkpoint; episode ``checkpoint`` = its index."""
    if not checkpoints:
        raise ValueError("no checkpoints to collect from")
    parts = []
    for i, path in enumerate(checkpoints):
        cfg = CollectConfig(episodes=episodes_per_checkpoint, seed=seed + i, profile=profile, n_envs=n_envs, checkpoint=i)
        parts.append(collect(game, SB3Policy(path, device=device), cfg, progress=progress, created_by=created_by))
    return merge_demo_sets(parts)


def collect_from_ppo_checkpoints(args: argparse.Namespace) -> int:
    """The ``demos collect --demonstrator ppo`` command (see the module docstring)."""
    from trex_bench.rl.ppo import get_ppo_config, train_ppo

    game = get_game(args.game)
    out: Path = args.out
    if out.exists() and (out / "manifest.json").exists() and not args.overwrite:
        raise DemoError(f"{out} already holds a demo set; pass --overwrite to replace it")
    if args.noise != [0.0]:
        raise ValueError("--noise is not used with --demonstrator ppo (the checkpoints are the quality levels)")
    ppo_dir: Path = args.ppo_dir or out.with_name(out.name + ".ppo")
    ckpt_dir = ppo_dir / "checkpoints"
    have = list_checkpoints(ckpt_dir)
    if len(have) < args.checkpoints:
        if (ppo_dir / "card.json").exists():  # a finished run (an opt-in --max-seconds valve can end it early)
            raise ValueError(f"{ppo_dir} holds only {len(have)} checkpoints, fewer than --checkpoints {args.checkpoints}")
        cfg = get_ppo_config(args.ppo_budget)
        every = args.checkpoint_every or max(cfg.total_steps // (args.checkpoints + 1), cfg.n_envs * cfg.n_steps)
        cfg = cfg.replace(checkpoint_every=every, total_steps=max(cfg.total_steps, every * args.checkpoints))
        print(f"training PPO on the true reward ({cfg.total_steps} agent steps, a checkpoint every {every}) into {ppo_dir}")
        train_ppo(game.id, "true", cfg, args.seed, ppo_dir, progress=not args.no_progress, profile=args.profile,
                  device=args.device)
        have = list_checkpoints(ckpt_dir)
    chosen = have[: args.checkpoints]
    print(f"recording {args.episodes} episode(s) from each of {len(chosen)} checkpoints: " + ", ".join(str(s) for s, _ in chosen))
    ds = collect_from_checkpoints(
        game.id, [p for _, p in chosen], args.episodes, args.seed, args.profile, n_envs=min(args.envs, args.episodes),
        progress=not args.no_progress, created_by=shlex.join(args.argv), device=args.device,
    )
    save_demos(ds, out, overwrite=args.overwrite)
    from trex_bench.cli.demos import _print_table

    _print_table(ds)
    print(f"wrote {len(ds.episodes)} episodes to {out} (PPO run and checkpoints in {ppo_dir})")
    return 0
