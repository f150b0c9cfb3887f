"""``trex-bench reward train|import|score``."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.util import seed, torch_device
from trex_bench.core.errors import ConfigError
from trex_bench.experiment.budgets import BUDGETS
from trex_bench.experiment.config import RANKINGS

DEFAULT_REFERENCE = Path("../shared/reference")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reward",
        help="learn, import and score reward models",
        description="Learn a reward net from ranked demos (T-REX / D-REX), import the released nets, "
        "and report how well a reward model orders episodes.",
        epilog="Example: trex-bench reward train breakout --demos demos/breakout/ppo-checkpoints --method trex "
        "--budget quick --seed 0 --out runs/breakout-reward   (trex-bench reward SUBCOMMAND --help)",
    )
    rs = p.add_subparsers(dest="reward_command", metavar="SUBCOMMAND", required=True)

    t = rs.add_parser(
        "train",
        help="train a reward net from ranked demonstrations",
        description="Rank the demos, sample snippet pairs, train a Bradley-Terry reward net (T-REX eq. 1) with "
        "validation and early stopping, and write a reward-model folder.",
        epilog="Example: trex-bench reward train breakout --demos demos/breakout/ppo-checkpoints --method trex "
        "--ranking return --budget quick --seed 0 --out runs/breakout-trex-0",
    )
    t.add_argument("game", help="game id, e.g. breakout (the demo set must be of this game)")
    t.add_argument("--demos", type=Path, required=True, help="demo set folder")
    t.add_argument("--method", choices=["trex", "drex"], required=True, help="T-REX or D-REX (net width, recipe)")
    t.add_argument(
        "--ranking",
        choices=list(RANKINGS),
        default=None,
        help="how episodes are ranked (default: return for trex, noise for drex)",
    )
    t.add_argument(
        "--human-labels",
        type=Path,
        default=None,
        help="for --ranking human: the labels.csv of `trex-bench label serve` (clip preferences), or the T-REX "
        "MTurk CSV (A,B,label,scoreA,scoreB)",
    )
    t.add_argument(
        "--budget",
        choices=list(BUDGETS),
        default="quick",
        help="training budget (default: quick)",
    )
    t.add_argument("--seed", type=seed, required=True, help="seed of pair sampling, split and init")
    t.add_argument("--out", type=Path, required=True, help="reward-model folder to write")
    t.add_argument("--overwrite", action="store_true", help="write into --out even if it holds something else")
    t.add_argument("--cache", type=Path, default=None, help="frame cache folder (default: the package cache)")
    t.add_argument("--device", type=torch_device, default="cpu", help="torch device (default: cpu)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=run_train)

    i = rs.add_parser(
        "import",
        help="turn a released T-REX / MTurk / D-REX net into a reward-model folder",
        description="Load the authors' released .params for a game and write it as our reward-model folder.",
        epilog="Example: trex-bench reward import breakout --official trex --out runs/breakout-official-trex",
    )
    i.add_argument("game", help="game id, e.g. breakout")
    i.add_argument("--official", choices=["trex", "mturk", "drex"], required=True, help="which released net")
    i.add_argument(
        "--reference",
        type=Path,
        default=DEFAULT_REFERENCE,
        help=f"folder of the released artefacts (default: {DEFAULT_REFERENCE})",
    )
    i.add_argument("--out", type=Path, required=True, help="reward-model folder to write")
    i.set_defaults(func=run_import)

    s = rs.add_parser(
        "score",
        help="fidelity report of a reward model on a demo set",
        description="Predicted vs true return per episode (raw sum, sigmoid sum, mean per frame), Spearman and "
        "Pearson, and pair accuracy on equal-length snippets at matched progress.",
        epilog="Example: trex-bench reward score --model runs/breakout-trex-0 --demos demos/breakout/ppo-later "
        "--out runs/breakout-trex-0/fidelity.json",
    )
    s.add_argument("--model", type=Path, required=True, help="reward-model folder")
    s.add_argument("--demos", type=Path, required=True, help="demo set folder")
    s.add_argument("--out", type=Path, default=None, help="JSON report to write (and a scatter plot next to it)")
    s.add_argument("--cache", type=Path, default=None, help="frame cache folder (default: the package cache)")
    s.set_defaults(func=run_score)


def run_train(args: argparse.Namespace) -> int:
    from trex_bench.core.io import check_cache_dir, read_json
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.reward.build import summary_line, train_command

    check_cache_dir(args.cache)
    ranking = args.ranking or ("noise" if args.method == "drex" else "return")
    if args.human_labels is not None and ranking != "human":
        raise ConfigError("--human-labels is only used with --ranking human")
    out = train_command(
        args.game,
        args.demos,
        args.out,
        method=args.method,
        ranking=ranking,
        human_labels=args.human_labels,
        config=reward_config(args.budget, args.method),
        budget=args.budget,
        seed=args.seed,
        cache_dir=args.cache,
        device=args.device,
        progress=not args.no_progress,
        overwrite=args.overwrite,
    )
    print(summary_line(read_json(out / "card.json")["metrics"]))
    print(f"wrote reward model to {out}")
    return 0


def run_import(args: argparse.Namespace) -> int:
    from trex_bench.reward.official import import_official

    out = import_official(args.game, args.official, args.reference, args.out)
    print(f"wrote reward model to {out}")
    return 0


def run_score(args: argparse.Namespace) -> int:
    from trex_bench.core.io import check_cache_dir
    from trex_bench.reward.fidelity import default_report_path, score_command

    check_cache_dir(args.cache)
    report = score_command(args.model, args.demos, out_json=args.out, cache_dir=args.cache)
    _print_summary(report)
    written = args.out or default_report_path(args.model, report["demos_hash"])
    print(f"wrote fidelity report to {written} and its scatter plot to {written.with_suffix('.png')}")
    return 0


_LABELS = {"pred_sum": "raw sum", "pred_sigmoid_sum": "sigmoid sum", "pred_mean": "mean per frame"}


def _print_summary(report: dict) -> None:
    """One line per predicted-return flavour, then the snippet pair accuracy (``fidelity_report``'s keys)."""
    print(f"  {'predicted return':<16} {'Spearman':>9} {'Pearson':>9}")
    for name, c in report["correlations"].items():
        sp, pe = (float("nan") if c.get(k) is None else c[k] for k in ("spearman", "pearson"))
        print(f"  {_LABELS.get(name, name):<16} {sp:9.3f} {pe:9.3f}")
    pairs = report["pairwise"]
    print(
        f"  pair accuracy: {pairs['accuracy']:.3f} ({pairs['n_pairs']} equal-length snippet pairs at matched progress)"
    )
    step = report.get("per_step")
    if step:

        def fmt(v: float | None, spec: str) -> str:
            return "n/a" if v is None else format(v, spec)

        print(
            f"  per step: σ(r) is {fmt(step['sigmoid_constant_share'], '.1%')} a constant (survival bonus); "
            f"Spearman(r, score so far) {fmt(step['spearman_vs_score_so_far'], '.2f')}; "
            f"Δr at scoring steps {fmt(step['delta_at_scoring_steps'], '+.3f')} vs elsewhere "
            f"{fmt(step['delta_elsewhere'], '+.4f')} (std {fmt(step['delta_std'], '.3f')})"
        )
