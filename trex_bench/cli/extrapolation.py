"""``trex-bench extrapolation``: train a reward on a game's demo set, score it on the unseen, better set."""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.cli.util import seed_list
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.experiment.budgets import BUDGETS
from trex_bench.experiment.extrapolation import CHOICES

REPO = Path(__file__).resolve().parents[2]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "extrapolation",
        help="does the learned reward rank unseen, better episodes correctly? (no RL; minutes on a CPU)",
        description="T-REX's own protocol: train the reward on a demo set of early PPO checkpoints, score it on "
        "later checkpoints of the same run (the unseen set): Spearman/Pearson of predicted vs true return on all "
        "and on the unseen episodes, snippet accuracy beyond the best demo, the Figure-3 plot per seed, and the "
        "table results/tables/extrapolation.md (+ .csv). --reference adds the authors' released nets as rows.",
        epilog="Example: trex-bench extrapolation breakout --method trex --seeds 0-2 --budget quick "
        "--reference ../shared/reference   (D-REX: --method drex; its demos: demos/<game>/drex-demos, see "
        "demos/README.md). Which net to keep: trex-bench extrapolation enduro --seeds 0-2 --choice latest "
        "(rows trex+latest; results/tables/reward-choice.md compares the choices). The reward a preference-loop run "
        "paid PPO: trex-bench extrapolation breakout --prefs-run runs/breakout-prefs-quick-s0",
    )
    p.add_argument("game", help="game id, e.g. breakout")
    p.add_argument(
        "--method",
        default="trex",
        choices=["trex", "drex"],
        help="trex: ranked by return on --demos; drex: its own protocol on --drex-demos (BC, noise rollouts, "
        "ranked by noise) (default: trex)",
    )
    p.add_argument(
        "--choice",
        default="default",
        choices=list(CHOICES),
        help="which reward net to keep (trex): default = best validation accuracy on held-out episode pairs of the "
        "demos; latest = the latest demo checkpoint's episode held out of training and judged on; ensemble = 3 nets, "
        "each on a bootstrap resample of the training pairs, r their mean. Rows and run folders are named "
        "trex+latest, trex+ensemble (default: default)",
    )
    p.add_argument(
        "--seeds",
        type=seed_list,
        default=None,
        help="seeds of the nets to train, e.g. 0-2 or 0,3 (default: 0; none with --prefs-run)",
    )
    p.add_argument(
        "--budget",
        default="quick",
        choices=list(BUDGETS),
        help="the budget whose reward recipe trains the net: " + " | ".join(BUDGETS) + " (default: quick)",
    )
    _add_scored(p)
    p.add_argument("--runs", type=Path, default=Path("runs/extrapolation"), help="where the reward nets go")
    p.add_argument(
        "--results",
        type=Path,
        default=Path("results"),
        help="tables/extrapolation.{csv,md} and plots/extrapolation/ go under here (default: results)",
    )
    p.add_argument("--cache", type=Path, default=None, help="frame cache folder (default: the package cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=run)


def _add_scored(p: argparse.ArgumentParser) -> None:
    """The episodes and the rewards scored: demo sets, the released nets, finished preference-loop runs."""
    p.add_argument(
        "--demos",
        type=Path,
        default=None,
        help=f"demo set (default: {REPO / 'demos'}/<game>/ppo-checkpoints, committed beside the package that runs)",
    )
    p.add_argument(
        "--unseen", type=Path, default=None, help=f"unseen, better set (default: {REPO / 'demos'}/<game>/ppo-later)"
    )
    p.add_argument(
        "--drex-demos",
        type=Path,
        default=None,
        help="drex: episodes of ONE demonstrator checkpoint of the same run (default: demos/<game>/drex-demos, "
        "10 episodes of the last demo checkpoint); scored on the same unseen set as T-REX",
    )
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="the authors' released nets (../shared/reference): also score released T-REX and D-REX",
    )
    p.add_argument(
        "--prefs-run",
        type=Path,
        action="append",
        default=[],
        metavar="RUN",
        help="a finished `pipeline --method prefs` run folder of this game: also score the reward its preference "
        "loop paid PPO at the end (rows 'prefs-<budget>', the run's seed); repeatable",
    )


def _default_set(game: str, name: str) -> Path:
    folder = REPO / "demos" / game / name
    if not (folder / "manifest.json").exists():
        have = sorted(p.name for p in (REPO / "demos" / game).glob("*") if (p / "manifest.json").exists())
        raise ConfigError(
            f"no committed demo set demos/{game}/{name} (this game has: {', '.join(have) or 'none'}); "
            f"make one with `trex-bench demos collect {game} --demonstrator ppo …` (demos/README.md) "
            "or pass --demos/--unseen"
        )
    return folder


def _released_nets(game: str, reference: Path) -> list[str]:
    """The released families (``trex``, ``drex``) of ``game`` to score; a missing file is an error, before training.

    A family the authors released no net of for this game (Hero's D-REX) is said and skipped.
    """
    from trex_bench.reward.official import official_path

    found = []
    for which in ("trex", "drex"):
        try:
            path = official_path(game, which, reference)
        except DataError as e:
            print(f"no released {which} net for {game}: {e}")
            continue
        if not path.is_file():
            raise ConfigError(f"--reference {reference}: {path} not found (the authors' nets: ../shared/reference)")
        found.append(which)
    return found


def run(args: argparse.Namespace) -> int:
    from trex_bench.core.games import get_game
    from trex_bench.core.io import check_cache_dir, check_path, claim_output, write_json
    from trex_bench.demos.store import load_demos
    from trex_bench.experiment.extrapolation import choice_label, prefs_reward, train_drex_or_reuse, train_or_reuse
    from trex_bench.reward.extrapolation import (
        check_split,
        figure3,
        score_split,
        update_table,
    )
    from trex_bench.reward.net import load_model

    game = get_game(args.game).id
    demos_dir = args.demos or _default_set(game, "ppo-checkpoints")
    unseen_dir = args.unseen or _default_set(game, "ppo-later")
    demos, unseen = load_demos(demos_dir, game=game), load_demos(unseen_dir, game=game)
    check_split(demos, unseen, str(demos_dir), str(unseen_dir))  # before any training
    drex_dir = None
    if args.method == "drex" and args.choice != "default":
        raise ConfigError("--choice applies to --method trex (D-REX keeps its own protocol's net)")
    if args.method == "drex":
        drex_dir = args.drex_demos or _default_set(game, "drex-demos")
        drex_demos = load_demos(drex_dir, game=game)
        check_split(drex_demos, unseen, str(drex_dir), str(unseen_dir), need_ranking=False)
    released = _released_nets(game, args.reference) if args.reference is not None else []  # before any training
    online = [prefs_reward(run, game) for run in args.prefs_run]  # before any training, too
    tables = args.results / "tables"
    claim_output(tables / "extrapolation.csv", "extrapolation_table")  # an unwritable --results fails here, too
    check_path(tables / "extrapolation.md")
    check_path(args.results / "plots" / "extrapolation" / game, into=True)
    check_cache_dir(args.cache)
    label = choice_label(args.method, args.choice)  # the rows' method and the run folders' name
    seeds = args.seeds if args.seeds is not None else ([] if args.prefs_run else [0])
    if drex_dir is None:  # every seed's folder, before the first is trained
        for seed in seeds:
            claim_output(args.runs / f"{game}-{label}-{args.budget}-s{seed}", "reward_model")
    jobs = []
    for seed in seeds:
        out = args.runs / f"{game}-{label}-{args.budget}-s{seed}"
        if drex_dir is not None:
            folder = train_drex_or_reuse(game, drex_dir, out, args.budget, seed, args.cache, not args.no_progress)
        else:
            folder = train_or_reuse(
                game, demos_dir, out, args.method, args.budget, seed, args.cache, not args.no_progress, args.choice
            )
        jobs.append((label, seed, folder))
    for which in released:
        from trex_bench.reward.official import import_official

        folder = args.runs / f"{game}-released-{which}"
        if not (folder / "card.json").exists():
            import_official(game, which, args.reference, folder)
        jobs.append((f"released-{which}", -1, folder))
    models = [(method, seed, load_model(folder, game=game)[0], True) for method, seed, folder in jobs]
    models += [(method, seed, paid, False) for paid, method, seed in online]
    results = []
    for method, seed, model, paid_sigmoid in models:
        r = score_split(model, method, seed, demos, unseen, args.cache, paid_sigmoid=paid_sigmoid)
        plot = figure3(r, args.results / "plots" / "extrapolation" / f"{game}-{method}" / f"s{seed}.png")
        write_json(plot.with_suffix(".json"), r.to_json())  # per-episode predictions, to redraw or report from
        m, paid = r.metrics, "σ(r)" if paid_sigmoid else "r"
        print(
            f"{game} {method} seed {seed}: Spearman (mean r) all {_f(m['spearman_mean_all'])}, unseen "
            f"{_f(m['spearman_mean_unseen'])}; σ-sum all {_f(m['spearman_sigmoid_sum_all'])}; snippet accuracy "
            f"beyond the best demo {_f(m['beyond_best_accuracy'])} ({r.n_beyond_best} unseen episodes beyond "
            f"{r.best_demo:g}); {paid} constant share {_f(m['sigmoid_constant_share_unseen'])}  [{plot}]"
        )
        results.append(r)
    update_table(results, tables / "extrapolation.csv", tables / "extrapolation.md")
    print(f"wrote {tables / 'extrapolation.md'} and {tables / 'extrapolation.csv'}")
    return 0


def _f(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.2f}"
