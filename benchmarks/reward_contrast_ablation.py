"""Which reward-trainer choices decide how well a net ranks unseen, better episodes (issue: reward contrast)?

    python benchmarks/reward_contrast_ablation.py [--game breakout] [--seeds 0] [--budget quick]
        [--variants baseline,select-loss,...] [--reference ../shared/reference] [--json OUT]

Each variant is the budget's ``TrainConfig`` with a few fields changed; each trains on the game's committed
early-checkpoint demo set (``demos/<game>/ppo-checkpoints``) and is scored on the later checkpoints of the same PPO
run (``demos/<game>/ppo-later``) with ``trex_bench.reward.extrapolation.score_split``. Printed per variant (mean over
seeds): Spearman of the per-frame mean reward with the true return on the unseen episodes and on all, snippet
accuracy on all pairs and beyond the best demo, the share of σ(r) a constant explains on the unseen episodes, Δr at
scoring steps, optimiser steps and wall time. ``--reference`` adds the authors' released T-REX net as a row.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# name -> TrainConfig overrides of the budget's preset
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "select-loss": {"select": "val_loss"},
    "select-last": {"select": "last", "patience": 0},
    "lr-5e-5-last": {"lr": 5e-5, "select": "last", "patience": 0},
    "pairs-6000-last": {"n_pairs": 6000, "select": "last", "patience": 0, "passes": 1.0},
    "passes-6-last": {"passes": 6.0, "select": "last", "patience": 0},
    "lr-1e-3": {"lr": 1e-3},
    "wd-1e-3-last": {"weight_decay": 1e-3, "select": "last", "patience": 0},
    "select-loss-6000": {"n_pairs": 6000, "select": "val_loss", "passes": 2.0},
}

COLUMNS = ("spearman_mean_unseen", "spearman_mean_all", "snippet_accuracy_all", "beyond_best_accuracy",
           "sigmoid_constant_share_unseen", "delta_at_scoring_steps_unseen")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--game", default="breakout")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds")
    ap.add_argument("--budget", default="quick")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--reference", type=Path, default=None, help="../shared/reference: add the released T-REX net")
    ap.add_argument("--cache", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()

    from trex_bench.demos.frames import FrameCache
    from trex_bench.demos.store import load_demos
    from trex_bench.experiment.budgets import reward_config
    from trex_bench.reward.extrapolation import score_split
    from trex_bench.reward.ranking import by_return
    from trex_bench.reward.train import train_reward

    demos = load_demos(ROOT / "demos" / args.game / "ppo-checkpoints")
    unseen = load_demos(ROOT / "demos" / args.game / "ppo-later")
    cache = FrameCache(demos, args.cache)
    seeds = [int(s) for s in args.seeds.split(",")]
    rows: dict[str, dict[str, Any]] = {}
    if args.reference is not None:
        from trex_bench.reward.official import load_official

        r = score_split(load_official(args.game, "trex", args.reference), "released-trex", -1, demos, unseen, args.cache)
        rows["released T-REX net"] = {**{k: r.metrics[k] for k in COLUMNS}, "steps": None, "wall_s": None}
        _print(rows)
    for name in args.variants.split(","):
        per_seed = []
        for seed in seeds:
            cfg = reward_config(args.budget, "trex", **VARIANTS[name])
            t0 = time.perf_counter()
            with tempfile.TemporaryDirectory():
                net, m = train_reward(cache, by_return(demos), cfg, args.game, np.random.default_rng(seed))
            wall = time.perf_counter() - t0
            r = score_split(net, name, seed, demos, unseen, args.cache)
            per_seed.append({**r.metrics, "steps": m["members"][0]["steps"], "best_step": m["members"][0]["best_step"],
                             "wall_s": wall, "val_accuracy": m["val_accuracy"], "config": asdict(cfg)})
        rows[name] = {k: _mean([p[k] for p in per_seed]) for k in (*COLUMNS, "steps", "best_step", "wall_s")}
        rows[name]["runs"] = per_seed
        _print(rows)
    if args.json:
        args.json.write_text(json.dumps({"game": args.game, "budget": args.budget, "seeds": seeds, "rows": rows},
                                        indent=2, default=str))


def _mean(values: list[Any]) -> float | None:
    v = [x for x in values if x is not None]
    return statistics.fmean(v) if v else None


def _print(rows: dict[str, dict[str, Any]]) -> None:
    heads = ("ρ unseen", "ρ all", "snip acc", "beyond best", "σ const", "Δr score", "steps", "wall s")
    print("\n| variant | " + " | ".join(heads) + " |\n|---|" + "---|" * len(heads))
    for name, r in rows.items():
        vals = [r[k] for k in (*COLUMNS, "steps", "wall_s")]
        cells = ["n/a" if v is None else (f"{v:.3f}" if isinstance(v, float) and abs(v) < 10 else f"{v:.0f}") for v in vals]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
