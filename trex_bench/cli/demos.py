"""``trex-bench demos collect|verify|info|degradation|export-minari|import-minari``."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import numpy as np

from trex_bench.cli.util import noise_levels, nonneg_int, positive_int, seed, torch_device
from trex_bench.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demos",
        help="collect, verify and inspect demonstrations",
        description="Collect, verify and inspect demo sets (action logs + seeds, replayed exactly).",
        epilog="Example: trex-bench demos info demos/breakout/ppo-checkpoints   (trex-bench demos SUBCOMMAND --help)",
    )
    ds = p.add_subparsers(dest="demos_command", metavar="SUBCOMMAND", required=True)

    _register_collect(ds)
    v = ds.add_parser(
        "verify",
        help="replay every episode and check its frame hashes and return",
        description="Replay every episode from its seed and actions; fail on any hash or return mismatch.",
        epilog="Example: trex-bench demos verify demos/breakout/ppo-checkpoints",
    )
    v.add_argument("dir", type=Path, help="demo set folder")
    v.add_argument("--envs", type=positive_int, default=4, help="episodes replayed together (default: 4)")
    v.set_defaults(func=run_verify)

    i = ds.add_parser(
        "info",
        help="print returns, lengths and noise levels of a demo set",
        description="Summarise a demo set.",
        epilog="Example: trex-bench demos info demos/breakout/ppo-checkpoints",
    )
    i.add_argument("dir", type=Path, help="demo set folder")
    i.set_defaults(func=run_info)

    e = ds.add_parser(
        "export-minari",
        help="a demo set as a Minari dataset (optional extra: minari)",
        description="Replay and verify every episode (a set that fails is refused), then write a Minari dataset: "
        "replayed frames as observations (lossless), actions, true rewards, per-episode seed, noise, checkpoint "
        "and frame hashes. Datasets go to $MINARI_DATASETS_PATH (default ~/.minari/datasets).",
        epilog="Example: trex-bench demos export-minari demos/breakout/ppo-checkpoints --out trex/breakout/ppo-v0",
    )
    e.add_argument("dir", type=Path, help="demo set folder")
    e.add_argument("--out", required=True, help="Minari dataset id, e.g. trex/breakout/ppo-v0")
    e.add_argument("--envs", type=positive_int, default=4, help="episodes replayed together (default: 4)")
    e.set_defaults(func=run_export_minari)

    m = ds.add_parser(
        "import-minari",
        help="a Minari dataset written by export-minari back into a demo set",
        description="Rebuild a demo set from a Minari dataset that export-minari wrote; its observations are "
        "checked against the recorded frame hashes and the set is replayed to its frames and rewards before it is "
        "written (an edited dataset is refused, nothing written).",
        epilog="Example: trex-bench demos import-minari trex/breakout/ppo-v0 --out ppo-demos-back",
    )
    m.add_argument("name", help="Minari dataset id")
    m.add_argument("--out", type=Path, required=True, help="demo set folder to write")
    m.add_argument("--overwrite", action="store_true", help="replace a different demo set already in --out")
    m.add_argument("--envs", type=positive_int, default=4, help="episodes replayed together (default: 4)")
    m.set_defaults(func=run_import_minari)

    d = ds.add_parser(
        "degradation",
        help="true return vs noise level ε (the D-REX degradation curve), CSV + PNG",
        description="Summarise a demo set collected over a noise schedule: mean ± std of the true return "
        "per ε, as a CSV in the layout of the D-REX reference files and a PNG.",
        epilog="Example: trex-bench demos degradation runs/bc-noise --out results/plots/breakout-degradation "
        "--reference ../shared/reference/drex/bc_degradation/breakout_batch_rewards.csv",
    )
    d.add_argument("dir", type=Path, help="demo set with episodes at several noise levels")
    d.add_argument("--out", type=Path, required=True, help="output prefix: writes PREFIX.csv and PREFIX.png")
    d.add_argument("--reference", type=Path, default=None, help="a D-REX reference CSV to overlay")
    d.add_argument("--demo-set", type=Path, default=None, help="the original demonstrations (fills the `demos` row)")
    d.set_defaults(func=run_degradation)


def _register_collect(ds: argparse._SubParsersAction) -> None:
    c = ds.add_parser(
        "collect",
        help="record episodes of a demonstrator",
        description="Record full episodes of a demonstrator, vectorised, into a demo set folder.",
        epilog="Example: trex-bench demos collect breakout --demonstrator scripted --episodes 4 --noise 0.25 "
        "--seed 0 --out my-demos",
    )
    c.add_argument("game", help="game id, e.g. breakout (see `trex-bench games`)")
    c.add_argument(
        "--demonstrator",
        required=True,
        help="scripted | random | noop | sb3:PATH.zip | bc:DIR (a `bc train` folder) | ppo (train PPO on the true "
        "reward, record from its early checkpoints: the papers' protocol)",
    )
    c.add_argument(
        "--episodes", type=positive_int, required=True, help="number of full episodes to record (per noise level)"
    )
    c.add_argument(
        "--noise",
        type=noise_levels,
        default=[0.0],
        help="ε of ε-greedy noise around the demonstrator, in [0, 1]; a comma-separated schedule "
        "(e.g. D-REX's 1.0,0.75,0.5,0.25,0.01,noop) records --episodes episodes at each level into one set; "
        "'noop' is D-REX's no-op bin (a NOOP-only policy, ranked below every ε)",
    )
    c.add_argument("--seed", type=seed, required=True, help="seed of the per-episode reset seeds and of the noise")
    c.add_argument("--out", type=Path, required=True, help="demo set folder to write")
    c.add_argument("--profile", default="paper", choices=["paper", "machado"], help="env profile (default: paper)")
    c.add_argument("--envs", type=positive_int, default=4, help="envs stepped together (default: 4)")
    c.add_argument(
        "--checkpoint",
        type=_checkpoint_index,
        default=-1,
        help="checkpoint index to record with every episode (>= 0; default -1: none)",
    )
    c.add_argument(
        "--max-steps", type=positive_int, default=None, help="cap agent steps per episode (recorded as truncated)"
    )
    c.add_argument("--overwrite", action="store_true", help="replace a different demo set already in --out")
    _ppo_demonstrator_options(c)
    c.add_argument(
        "--device",
        type=torch_device,
        default="cpu",
        help="torch device of policy demonstrators (sb3:, bc:) and of the ppo demonstrator's training",
    )
    c.add_argument(
        "--trust-pickle",
        action="store_true",
        help="let sb3:PATH.zip load a foreign SB3 zip (no trex-bench card.json) through SB3's own loader, "
        "which runs the code pickled in it: only for a file you trust",
    )
    c.add_argument("--no-progress", action="store_true", help="no progress bar")
    c.set_defaults(func=run_collect)


def _checkpoint_index(text: str) -> int:
    """A checkpoint index >= 0, or -1 for none (what an episode records)."""
    try:
        v = int(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from e
    if v < -1:
        raise argparse.ArgumentTypeError(f"must be >= 0 (or -1: none), got {v}")
    return v


def run_collect(args: argparse.Namespace) -> int:
    from trex_bench.core.envs import make_vec_env
    from trex_bench.core.games import get_game
    from trex_bench.core.types import NOOP_NOISE
    from trex_bench.demos.collect import CollectConfig, collect
    from trex_bench.demos.policies import EpsilonGreedy, NoopPolicy
    from trex_bench.demos.store import check_demo_out, merge_demo_sets, save_demos
    from trex_bench.experiment.demonstrators import make_demonstrator

    game = get_game(args.game)
    out: Path = args.out
    seen = check_demo_out(out, args.overwrite)  # before any collection or training
    if args.demonstrator == "ppo":
        return _run_ppo_demonstrator(args, seen)
    rng = np.random.default_rng(args.seed)
    probe = make_vec_env(game, 1, args.profile)
    n_actions = int(probe.action_space.n)
    probe.close()
    base = make_demonstrator(
        args.demonstrator, game, n_actions, rng, device=args.device, trust_pickle=args.trust_pickle
    )
    parts = []
    for level_i, eps in enumerate(args.noise):
        cfg = CollectConfig(
            episodes=args.episodes,
            seed=args.seed + 1000 * level_i,
            profile=args.profile,
            n_envs=args.envs,
            noise=eps,
            checkpoint=args.checkpoint,
            max_steps=args.max_steps,
        )
        policy = NoopPolicy() if eps == NOOP_NOISE else EpsilonGreedy(base, eps, n_actions, rng) if eps > 0 else base
        parts.append(collect(game.id, policy, cfg, progress=not args.no_progress, created_by=shlex.join(args.argv)))
    ds = merge_demo_sets(parts) if len(parts) > 1 else parts[0]
    save_demos(ds, out, overwrite=args.overwrite, replaces=seen)  # a set another run wrote meanwhile is kept
    _print_table(ds)
    print(f"wrote {len(ds.episodes)} episodes to {out}")
    return 0


def _run_ppo_demonstrator(args: argparse.Namespace, seen: str) -> int:
    """``--demonstrator ppo``: train (or reuse) PPO on the true reward, record from some of its checkpoints.

    ``seen``: what ``check_demo_out`` found at ``--out`` before training (``save_demos``'s ``replaces``).
    """
    from trex_bench.demos.store import save_demos
    from trex_bench.experiment.demonstrators import (
        collect_from_checkpoints,
        list_checkpoints,
        select_checkpoints,
        train_demonstrator,
    )

    if args.noise != [0.0]:
        raise ConfigError("--noise is not used with --demonstrator ppo (the checkpoints are the quality levels)")
    if args.max_steps is not None or args.checkpoint != -1:  # each checkpoint plays full episodes, tagged by itself
        flag = "--max-steps" if args.max_steps is not None else "--checkpoint"
        raise ConfigError(
            f"{flag} is not used with --demonstrator ppo (its episodes are full games of each checkpoint)"
        )
    ppo_dir: Path = args.ppo_dir or args.out.with_name(args.out.name + ".ppo")
    if args.skip_checkpoints and not (ppo_dir / "card.json").exists():  # a typo must not start a 500k-step run
        raise ConfigError(
            f"--skip-checkpoints reads the later checkpoints of an existing run, but {ppo_dir} holds no finished "
            "PPO run (card.json); pass that run's --ppo-dir, or train it first without --skip-checkpoints"
        )
    if not (ppo_dir / "card.json").exists():
        how = "going on from the newest checkpoint in" if list_checkpoints(ppo_dir / "checkpoints") else "into"
        print(f"training PPO on the true reward (budget {args.ppo_budget}) {how} {ppo_dir}")
    train_demonstrator(
        args.game,
        ppo_dir,
        args.ppo_budget,
        args.seed,
        args.skip_checkpoints + args.checkpoints,
        args.checkpoint_every,
        args.profile,
        args.device,
        progress=not args.no_progress,
        precision=args.precision,
    )
    chosen = select_checkpoints(ppo_dir, args.checkpoints, args.skip_checkpoints, final=args.final)
    print(
        f"recording {args.episodes} episode(s) from each of {len(chosen)} policies (agent steps): "
        + ", ".join(str(c.steps) for c in chosen)
    )
    ds = collect_from_checkpoints(
        args.game,
        chosen,
        args.episodes,
        args.seed,
        args.profile,
        n_envs=args.envs,
        progress=not args.no_progress,
        created_by=shlex.join(args.argv),
        device=args.device,
    )
    save_demos(ds, args.out, overwrite=args.overwrite, replaces=seen)
    _print_table(ds)
    print(f"wrote {len(ds.episodes)} episodes to {args.out} (PPO run and checkpoints in {ppo_dir})")
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from trex_bench.demos.replay import verify_demos
    from trex_bench.demos.store import load_demos

    ds = load_demos(args.dir)
    results = verify_demos(ds, n_envs=args.envs)
    for r in results:
        print(f"  ep {r.index:4d}  return {r.ret:8g}  length {r.length:6d}  {r.message}")
    bad = [r for r in results if not r.ok]
    if bad:
        print(f"FAILED: {len(bad)} of {len(results)} episodes do not replay to their record ({args.dir})")
        return 1
    print(f"ok: {len(results)} episodes replay exactly; returns {', '.join(f'{r.ret:g}' for r in results)}")
    return 0


def run_export_minari(args: argparse.Namespace) -> int:
    from trex_bench.demos.minari_io import export_minari

    print(f"wrote Minari dataset {args.out} at {export_minari(args.dir, args.out, n_envs=args.envs)}")
    return 0


def run_import_minari(args: argparse.Namespace) -> int:
    from trex_bench.demos.minari_io import import_minari

    ds = import_minari(args.name, args.out, overwrite=args.overwrite, n_envs=args.envs)
    print(f"wrote {args.out}: {ds.game}, {len(ds.episodes)} episodes from Minari dataset {args.name}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    from trex_bench.demos.store import load_demos

    ds = load_demos(args.dir)
    print(f"{args.dir}: {ds.game}, profile {ds.profile}, {len(ds.episodes)} episodes, demonstrator {ds.demonstrator}")
    _print_table(ds)
    return 0


def run_degradation(args: argparse.Namespace) -> int:
    from trex_bench.demos.degradation import degradation_command

    for line in degradation_command(args.dir, args.out, reference_csv=args.reference, demo_set_dir=args.demo_set):
        print(line)
    return 0


def _print_table(ds) -> None:
    print(f"  {'ep':>4} {'return':>9} {'length':>7} {'noise':>6} {'ckpt':>5}")
    for i, e in enumerate(ds.episodes):
        trunc = " (truncated)" if e.truncated else ""
        print(f"  {i:4d} {e.ret:9g} {e.length:7d} {e.noise:6.2f} {e.checkpoint:5d}{trunc}")
    r = ds.returns
    print(f"  return: mean {r.mean():.2f}, std {r.std():.2f}, min {r.min():g}, max {r.max():g}")


def _ppo_demonstrator_options(c: argparse.ArgumentParser) -> None:
    """The options of ``--demonstrator ppo``: a true-reward PPO run and the checkpoints recorded from it."""
    c.add_argument(
        "--checkpoints",
        type=positive_int,
        default=12,
        help="ppo demonstrator: record from N checkpoints (default 12, T-REX)",
    )
    c.add_argument(
        "--skip-checkpoints",
        type=nonneg_int,
        default=0,
        metavar="K",
        help="ppo demonstrator: start after the first K checkpoints (the later, unseen set of an existing "
        "run: e.g. --skip-checkpoints 12 --episodes 3 --final)",
    )
    c.add_argument("--final", action="store_true", help="ppo demonstrator: also record from the run's final agent")
    c.add_argument(
        "--ppo-budget", default="small", help="ppo demonstrator: PPO budget of the true-reward run (default small)"
    )
    c.add_argument(
        "--checkpoint-every",
        type=positive_int,
        default=None,
        help="ppo demonstrator: agent steps between checkpoints (default: the budget split in N+1)",
    )
    c.add_argument(
        "--ppo-dir",
        type=Path,
        default=None,
        help="ppo demonstrator: PPO run folder to train into, reuse, or go on with when a run there was cut off "
        "(default: OUT.ppo next to --out)",
    )
    c.add_argument(
        "--precision",
        choices=["auto", "fp32", "bf16"],
        default="fp32",
        help="ppo demonstrator: PPO policy numerics, as `rl train --precision` (default: fp32)",
    )
