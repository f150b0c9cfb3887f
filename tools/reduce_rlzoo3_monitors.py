"""rl-zoo3's published Atari PPO training curves, reduced from its monitor files to small cited CSVs.

DLR-RM/rl-trained-agents holds, for each Atari PPO run of rl-zoo3 (``ppo/<Game>NoFrameskip-v4_1/``), the SB3
``Monitor`` file of each of its 8 training envs (``0.monitor.csv`` … ``7.monitor.csv``: one line per episode,
``r`` its return, ``l`` its length, ``t`` the wall time). rl-zoo3 builds its training envs with SB3's
``make_vec_env(..., monitor_dir=..., wrapper_class=AtariWrapper)`` (``rl_zoo3/exp_manager.py``, ``create_envs``),
and ``make_vec_env`` puts the ``Monitor`` *below* the wrapper class. So the monitor sees the raw
``NoFrameskip-v4`` env: ``r`` is the unclipped full-game score (all lives: the life-loss episodes and the reward
clipping are the AtariWrapper's, above it) and ``l`` counts emulator frames, 4 per agent step.

Per game this writes ``OUT/<game>.csv`` (``step,score``): at every ``--every`` agent steps, the mean return of the
last 100 episodes finished by then over all 8 envs, what SB3 logs as ``rollout/ep_rew_mean`` and what our runs'
curves show (``trex_bench.analysis.curves``). An episode of env ``i`` ends at agent step
``8 · (frames env i has run so far) / 4``: the 8 envs step together. This counts the no-op frames after each reset
and life loss (the AtariWrapper's, not agent steps) as agent steps, so the step axis runs ahead by about 1 %
(Breakout: 10.13M at the end of a 10M-step run). ``OUT/README.md`` cites the source files.

    python tools/reduce_rlzoo3_monitors.py MONITORS --commit SHA --out results/curves/rlzoo3

MONITORS is a checkout (or copy) of rl-trained-agents: ``MONITORS/ppo/<Game>NoFrameskip-v4_1/*.monitor.csv``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path

import numpy as np

GAMES = {  # our game id -> the ALE v4 name rl-zoo3 trained on
    "beamrider": "BeamRider",
    "breakout": "Breakout",
    "enduro": "Enduro",
    "hero": "Hero",
    "pong": "Pong",
    "qbert": "Qbert",
    "seaquest": "Seaquest",
    "spaceinvaders": "SpaceInvaders",
}
FRAMES_PER_STEP = 4  # AtariWrapper's frame_skip
WINDOW = 100  # SB3's ep_info_buffer: the last 100 episodes


def read_monitor(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(returns, lengths in frames) of one monitor file (a ``#{json}`` line, then ``r,l,t``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or not lines[0].startswith("#{"):
        raise ValueError(f"{path}: not an SB3 monitor file (no '#{{...}}' header line)")
    rows = list(csv.DictReader(io.StringIO("\n".join(lines[1:]))))
    return np.array([float(r["r"]) for r in rows]), np.array([int(r["l"]) for r in rows])


def reduce_run(folder: Path, every: int) -> tuple[list[int], list[float], dict]:
    """The ``step,score`` points of one run folder and facts about it."""
    files = sorted(folder.glob("*.monitor.csv"), key=lambda p: int(p.name.split(".")[0]))
    if not files:
        raise ValueError(f"{folder}: no *.monitor.csv")
    n_envs = len(files)
    ends, returns = [], []
    for f in files:
        r, frames = read_monitor(f)
        ends.append(n_envs * np.cumsum(frames) / FRAMES_PER_STEP)
        returns.append(r)
    end, ret = np.concatenate(ends), np.concatenate(returns)
    order = np.argsort(end, kind="stable")
    end, ret = end[order], ret[order]
    csum = np.concatenate([[0.0], np.cumsum(ret)])
    steps, scores = [], []
    for step in range(every, int(end[-1]) + 1, every):
        done = int(np.searchsorted(end, step, side="right"))  # episodes finished by this step
        if done == 0:
            continue
        lo = max(0, done - WINDOW)
        steps.append(step)
        scores.append(float((csum[done] - csum[lo]) / (done - lo)))
    facts = {"envs": n_envs, "episodes": int(len(ret)), "last_episode_step": int(end[-1])}
    return steps, scores, facts


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("monitors", type=Path, help="a copy of DLR-RM/rl-trained-agents (its ppo/ folder is read)")
    ap.add_argument("--commit", required=True, help="the rl-trained-agents commit the files come from")
    ap.add_argument("--repo", default="DLR-RM/rl-trained-agents")
    ap.add_argument("--every", type=int, default=50_000, help="agent steps between points (default 50000)")
    ap.add_argument("--out", type=Path, default=Path("results/curves/rlzoo3"))
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows, missing = [], []
    for game, name in GAMES.items():
        folder = args.monitors / "ppo" / f"{name}NoFrameskip-v4_1"
        if not folder.is_dir():
            missing.append(f"{game} ({folder.relative_to(args.monitors)} is not in {args.repo})")
            continue
        steps, scores, facts = reduce_run(folder, args.every)
        text = "step,score\n" + "".join(f"{s},{v:.6g}\n" for s, v in zip(steps, scores, strict=True))
        (args.out / f"{game}.csv").write_text(text, encoding="utf-8")
        at = {s: v for s, v in zip(steps, scores, strict=True)}
        rows.append(
            f"| {game} | `ppo/{name}NoFrameskip-v4_1/{{0..{facts['envs'] - 1}}}.monitor.csv` | {facts['episodes']:,} | "
            f"{facts['last_episode_step']:,} | "
            + " | ".join(_num(at.get(s)) for s in (1_000_000, 2_000_000, 2_500_000, 10_000_000))
            + " |"
        )
        print(f"{game}: {len(steps)} points, {json.dumps(facts)}")
    readme = README.format(
        repo=args.repo, commit=args.commit, every=args.every, rows="\n".join(rows),
        missing="; ".join(missing) or "none",
    )
    (args.out / "README.md").write_text(readme, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


README = """# rl-zoo3's PPO training curves (reference)

Source: [{repo}](https://github.com/{repo}) at commit `{commit}`, the training monitor files of rl-zoo3's Atari
PPO runs (8 envs, n_steps 128, batch 256, 4 epochs, lr 2.5e-4 and clip 0.1 annealed linearly over 10M agent steps,
ent 0.01, vf 0.5, `AtariWrapper`, 4 stacked frames: each run's `config.yml`). Reduced by
`python tools/reduce_rlzoo3_monitors.py RL_TRAINED_AGENTS --commit {commit}`; the monitor files themselves are not
committed here.

`<game>.csv`: `step,score`, every {every:,} agent steps the mean return of the last 100 episodes finished over all 8
envs (SB3's `rollout/ep_rew_mean`, as our curves). The monitor sits below rl-zoo3's `AtariWrapper` (SB3's
`make_vec_env` applies `wrapper_class` after `Monitor`; `rl_zoo3/exp_manager.py`), so a return is the unclipped score
of a full game (all lives) and an episode's length is in frames: agent step = 8 × (an env's frames so far) / 4. The
no-op frames after resets and life losses count as steps there, so this step axis runs ahead by about 1 %.

| game | files | episodes | last episode ends at step | score at 1M | 2M | 2.5M | 10M |
|---|---|---|---|---|---|---|---|
{rows}

Games without a published PPO run: {missing}.
"""

if __name__ == "__main__":
    raise SystemExit(main())
