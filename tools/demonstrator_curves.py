"""The demonstrator runs' PPO curves beside rl-zoo3's published ones (issue #15 item 1).

Reads each run's TensorBoard log (``rollout/ep_rew_mean``: SB3's mean full-game score over the last 100 games) at
125k / 250k / 500k agent steps and writes ``results/tables/demonstrators.md``. rl-zoo3's numbers: its published PPO
training curves (8 envs, same hyperparameters), as quoted in issue #15.

    python tools/demonstrator_curves.py /work/demoruns --out results/tables/demonstrators.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.curves import read_scores

STEPS = (125_000, 250_000, 500_000)
RL_ZOO3 = {  # rl-zoo3 PPO training curves at 125k / 250k / 500k agent steps (issue #15)
    "beamrider": (414, 505, 550),
    "breakout": (5.5, 10.3, 15.3),
    "enduro": (0, 22, 112),
    "pong": (-20.1, -20.3, -17.4),
    "qbert": (285, 291, 427),
    "seaquest": (464, 629, 740),
    "spaceinvaders": (234, 204, 257),
}


def at(points: dict[int, float], step: int) -> float | None:
    """The last logged value at or before ``step`` (None past the run's end)."""
    before = [points[s] for s in sorted(points) if s <= step]
    return before[-1] if before and max(points) >= step * 0.99 else None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder of the demonstrator runs, one sub-folder per game")
    ap.add_argument("--out", type=Path, default=Path("results/tables/demonstrators.md"))
    args = ap.parse_args()
    fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
    lines = [
        "# Demonstrator runs: PPO on the true reward (`small`, rl-zoo3 settings, 10M-step schedule prefix)",
        "",
        "SB3's `rollout/ep_rew_mean` (mean full-game score of the last 100 games) at 125k / 250k / 500k agent steps,",
        "beside rl-zoo3's published PPO curves. Written by `python tools/demonstrator_curves.py RUNS`.",
        "",
        "| game | ours 125k | 250k | 500k | rl-zoo3 125k | 250k | 500k |",
        "|---|---|---|---|---|---|---|",
    ]
    for run in sorted(p for p in args.runs.iterdir() if (p / "tb").is_dir()):
        pts = read_scores(run / "tb")
        if not pts:
            continue
        ours = [fmt(at(pts, s)) for s in STEPS]
        zoo = [fmt(v) for v in RL_ZOO3.get(run.name, (None, None, None))]
        lines.append(f"| {run.name} | " + " | ".join(ours + zoo) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
