"""The demonstrator runs' PPO curves beside rl-zoo3's published ones (issue #15 item 1).

Reads each run's TensorBoard log (``rollout/ep_rew_mean``: SB3's mean full-game score over the last 100 games) at
125k / 250k / 500k / 1M / 2M agent steps and writes ``results/tables/demonstrators.md``. rl-zoo3's numbers: its
published PPO training curves (8 envs, same hyperparameters), as quoted in issue #15.

A run folder is not committed (its checkpoints are hundreds of MB) and leaves with the machine it ran on, so the
table is updated, not rewritten: a run found under RUNS replaces its row, the rows of runs no longer on disk stay.

    python tools/demonstrator_curves.py /work/demoruns --out results/tables/demonstrators.md
"""

from __future__ import annotations

import argparse
from pathlib import Path

from trex_bench.analysis.curves import read_scores

STEPS = (125_000, 250_000, 500_000, 1_000_000, 2_000_000)
RL_ZOO3 = {  # rl-zoo3 PPO training curves at 125k / 250k / 500k / 1M agent steps (issue #15); Hero: none published
    "beamrider": (414, 505, 550, 602),
    "breakout": (5.5, 10.3, 15.3, 25.5),
    "enduro": (0, 22, 112, 214),
    "pong": (-20.1, -20.3, -17.4, -9.9),
    "qbert": (285, 291, 427, 749),
    "seaquest": (464, 629, 740, 842),
    "spaceinvaders": (234, 204, 257, 371),
}
ZOO_STEPS = 4  # rl-zoo3's columns: the first four of STEPS
HEADER = "| run | ours 125k | 250k | 500k | 1M | 2M | rl-zoo3 125k | 250k | 500k | 1M |"


def at(points: dict[int, float], step: int) -> float | None:
    """The last logged value at or before ``step`` (None past the run's end)."""
    before = [points[s] for s in sorted(points) if s <= step]
    return before[-1] if before and max(points) >= step * 0.99 else None


def kept_rows(table: Path) -> dict[str, list[str]]:
    """``{run: its 'ours' cells}`` of an existing table, padded with '–' where it has fewer step columns."""
    rows: dict[str, list[str]] = {}
    if not table.exists():
        return rows
    for line in table.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| ") or cells[0] in ("run", "---") or set(cells[0]) <= {"-"}:
            continue
        ours = cells[1 : len(cells) - ZOO_STEPS]
        rows[cells[0]] = (ours + ["–"] * len(STEPS))[: len(STEPS)]
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", type=Path, help="folder of the demonstrator runs, one sub-folder per game")
    ap.add_argument("--out", type=Path, default=Path("results/tables/demonstrators.md"))
    args = ap.parse_args()
    fmt = lambda v: "–" if v is None else f"{v:.4g}"  # noqa: E731
    rows = kept_rows(args.out)
    for run in sorted(p for p in args.runs.iterdir() if (p / "tb").is_dir()):
        pts = read_scores(run / "tb")
        if pts:
            rows[run.name] = [fmt(at(pts, s)) for s in STEPS]
    lines = [
        "# Demonstrator runs: PPO on the true reward (`small`/`medium`, rl-zoo3 settings, 10M-step schedule prefix)",
        "",
        "SB3's `rollout/ep_rew_mean` (mean full-game score of the last 100 games) at 125k / 250k / 500k / 1M / 2M",
        "agent steps, beside rl-zoo3's published PPO curves (– where a run is shorter or rl-zoo3 publishes none). A run",
        "named `GAME-500k` is a `small` run kept beside the game's longer demonstrator run. Written by",
        "`python tools/demonstrator_curves.py RUNS`, which keeps the rows of runs no longer on disk.",
        "",
        HEADER,
        "|---" * (1 + len(STEPS) + ZOO_STEPS) + "|",
    ]
    for name in sorted(rows):
        zoo = [fmt(v) for v in RL_ZOO3.get(name.split("-")[0], (None,) * ZOO_STEPS)]
        lines.append(f"| {name} | " + " | ".join(rows[name] + zoo) + " |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
