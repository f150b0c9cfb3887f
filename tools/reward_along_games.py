"""What a learned reward pays along whole games: σ(r̂) per step, per window of steps, beside the true score so far.

Asks of a reward net whether it pays more for better play, where the play is not the demos' own: record an agent's
games into a demo set (``trex-bench demos collect GAME --demonstrator sb3:RUN/agent/agent.zip ...``), then give that
set here with the reward model. σ(r̂) is what PPO is paid under the ``sigmoid`` transform (T-REX's). One table row per
game of each set: its length, true score, mean σ(r̂) per step, and the mean σ(r̂) of each window of ``--window`` steps
with the true score reached by its end; then a row for all the set's steps.

    python tools/reward_along_games.py --model RUN/reward --demos SET [SET ...] [--window 1000] [--out FILE.md] [--cache DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from trex_bench.demos.frames import FrameCache
from trex_bench.demos.store import load_demos
from trex_bench.reward.fidelity import episode_rewards
from trex_bench.reward.net import load_model


def table(model_dir: Path, sets: list[Path], window: int, cache: Path | None = None) -> str:
    lines = [
        f"σ(r̂) per step of `{model_dir}` (what PPO is paid under the sigmoid transform), per window of {window:,} "
        "steps: mean σ(r̂) (true score by the window's end).",
        "",
        "| demo set | episode | length | true score | mean σ(r̂) | windows |",
        "|---|---|---|---|---|---|",
    ]
    for folder in sets:
        demos = load_demos(folder)
        model, _ = load_model(model_dir, game=demos.game, profile=demos.profile)
        lengths = np.array([ep.length for ep in demos.episodes])
        paid = [1.0 / (1.0 + np.exp(-r)) for r in episode_rewards(model, FrameCache(demos, cache), lengths)]
        for i, (ep, sigma) in enumerate(zip(demos.episodes, paid, strict=True)):
            score = np.cumsum(ep.rewards)
            cells = [
                f"{sigma[s : s + window].mean():.2f} ({score[min(s + window, len(score)) - 1]:,.0f})"
                for s in range(0, len(sigma), window)
            ]
            lines.append(
                f"| {folder.name} | {i} | {ep.length:,} | {score[-1]:,.0f} | {sigma.mean():.3f} | {', '.join(cells)} |"
            )
        every = np.concatenate(paid)
        mean_score = np.mean([ep.rewards.sum() for ep in demos.episodes])
        lines.append(f"| {folder.name} | all {len(paid)} | {len(every):,} | {mean_score:,.1f} (mean) | {every.mean():.3f} | |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="reward-model folder")
    parser.add_argument("--demos", type=Path, nargs="+", required=True, help="demo sets (an agent's games)")
    parser.add_argument("--window", type=int, default=1000, help="steps per window (default 1000)")
    parser.add_argument("--out", type=Path, help="markdown file to write (default: print)")
    parser.add_argument("--cache", type=Path, help="frame cache folder (default: the package cache)")
    args = parser.parse_args()
    if args.window < 1:
        parser.error(f"--window must be >= 1, got {args.window}")
    text = table(args.model, args.demos, args.window, args.cache)
    if args.out is None:
        print(text, end="")
    else:
        from trex_bench.core.io import atomic_write

        atomic_write(args.out, lambda p: p.write_text(text))
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
