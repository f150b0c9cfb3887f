"""``trex-bench evaluate``: full-game evaluation of an agent with the true score."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.util import positive_int, seed, torch_device
from trex_bench.core.errors import ConfigError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="play N full games with an agent and report its true score",
        description="Evaluate an agent folder as T-REX did: N full games (no life-loss termination), stochastic "
        "policy, true score; compare with a demo set's best and average return. Writes eval.json.",
        epilog="Example: trex-bench evaluate --agent runs/breakout/agent --episodes 30 "
        "--demos demos/breakout/ppo-checkpoints",
    )
    p.add_argument("--agent", type=Path, required=True, help="agent folder (agent.zip + card.json)")
    p.add_argument(
        "--game", default=None, help="refuse an agent (PPO or BC) of another game (default: play its card's game)"
    )
    p.add_argument("--episodes", type=positive_int, default=30, help="number of full games (default: 30, as T-REX)")
    p.add_argument("--demos", type=Path, default=None, help="demo set to compare with (best and average return)")
    p.add_argument("--deterministic", action="store_true", help="argmax actions instead of sampling (T-REX samples)")
    p.add_argument("--seed", type=seed, default=0, help="seed of the games and of action sampling (default: 0)")
    p.add_argument("--envs", type=positive_int, default=8, help="games played at once (default: 8)")
    p.add_argument("--out", type=Path, default=None, help="eval.json path or folder (default: the agent folder)")
    p.add_argument("--device", type=torch_device, default="cpu", help="torch device of the policy (default: cpu)")
    p.add_argument("--overwrite", action="store_true", help="replace a file at --out that is not an eval report")
    p.add_argument(
        "--trust-pickle",
        action="store_true",
        help="load agent.zip with SB3's own loader, which runs the code pickled in it (only for a zip you "
        "trust whose weights do not fit its card)",
    )
    p.add_argument(
        "--leaderboard",
        type=Path,
        default=None,
        metavar="CSV",
        help="also append the agent's row to this leaderboard (method from its card: ppo-true, constant, trex, "
        "drex, prefs, gail or bc; needs --demos; not with --deterministic, off the protocol), e.g. a demonstrator "
        "run's final agent as ppo-true",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from trex_bench.evaluation.evaluate import evaluate_agent

    if args.leaderboard is not None and args.demos is None:
        raise ConfigError("--leaderboard needs --demos: a row compares the agent with a demo set's best and average")
    if args.leaderboard is not None and args.deterministic:  # no column tells its row from the protocol's sampled ones
        raise ConfigError(
            "--leaderboard takes rows of the protocol's sampled actions; drop --deterministic or --leaderboard"
        )
    method = None
    if args.leaderboard is not None:  # before playing: no eval.json is written for a row that cannot be appended
        from trex_bench.core.io import claim_output, read_json
        from trex_bench.evaluation.leaderboard import agent_method, read_leaderboard

        claim_output(args.leaderboard, "leaderboard")  # the one writer rule, then a torn, foreign or non-numeric file
        read_leaderboard(args.leaderboard)
        card = read_json(args.agent / "card.json") if (args.agent / "card.json").is_file() else None
        if isinstance(card, dict):  # without a card, evaluate_agent refuses the folder in one line
            method = "bc" if card.get("kind") == "bc_policy" else agent_method(card)

    r = evaluate_agent(
        args.agent,
        episodes=args.episodes,
        seed=args.seed,
        deterministic=args.deterministic,
        n_envs=args.envs,
        demos_dir=args.demos,
        out=args.out,
        device=args.device,
        progress=not args.no_progress,
        trust_pickle=args.trust_pickle,
        overwrite=args.overwrite,
        game=args.game,
    )
    print(f"{r['game']}: {r['episodes']} full games, {r['protocol']}")
    print(f"  true score: mean {r['mean']:.2f} ± {r['std']:.2f} (min {r['min']:g}, max {r['max']:g})")
    if r["best_demo"] is not None:
        verdict = "beats" if r["beats_best_demo"] else "does not beat"
        print(f"  demos: best {r['best_demo']:g}, average {r['avg_demo']:.2f}; the agent {verdict} the best demo")
    if r["human_normalized"] is not None:
        print(f"  human-normalised score: {r['human_normalized']:.3f}")
    print(f"wrote {r['path']}")
    if args.leaderboard is not None:
        from trex_bench.core.io import read_json
        from trex_bench.evaluation.leaderboard import agent_method, append_row, row_from_run

        card = read_json(args.agent / "card.json")
        method = method or agent_method(card)
        row = row_from_run(card, r, method, run_id=f"{args.agent.resolve().name}-eval-s{args.seed}")
        append_row(args.leaderboard, row)
        print(f"appended a {row['method']} row to {args.leaderboard}")
    return 0
