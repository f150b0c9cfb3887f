"""What the reward net sees: one real 84×84 frame per game with its score/lives mask drawn on it.

The mask rows come from ``games.GAMES`` (T-REX's released ``mask_score``, PAPERS.md). A PNG per game lets a person
check each mask against the real screen: the score digits and the lives counter must fall inside the red
rows, and nothing the agent plays with may. The frame is taken from a seeded random-policy game 60 agent steps after
its first point (so the score shows a non-zero digit: Q*bert draws it only a moment after the point), with the exact
frames of ``make_vec_env``. ``trex-bench games --masks DIR`` writes the eight papers' games; ``docs/masks.md`` says
what was checked on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from trex_bench.core.envs import make_vec_env
from trex_bench.core.games import Game, get_game
from trex_bench.core.io import atomic_write

__all__ = ["MaskFrame", "mask_frame", "masked_input", "save_mask_png"]


@dataclass(frozen=True)
class MaskFrame:
    """One 84×84 frame of a game and where it came from.

    Attributes:
        game: the game.
        frame: uint8 [84, 84], the newest frame of the observation stack.
        step: agent steps from the start of the game to this frame.
        score: the game's score at this frame (sum of true rewards so far).
        seed: the env seed of the random-policy game.
    """

    game: Game
    frame: np.ndarray
    step: int
    score: float
    seed: int


def mask_frame(game: Game | str, seed: int = 0, max_steps: int = 2000, after_point: int = 60) -> MaskFrame:
    """Play a seeded random policy until ``after_point`` steps past the first point (or ``max_steps``); its frame.

    >>> f = mask_frame("breakout", seed=0, max_steps=5)
    >>> f.frame.shape, f.frame.dtype.name, f.step
    ((84, 84), 'uint8', 5)
    """
    g = get_game(game)
    env = make_vec_env(g, n_envs=1, profile="paper", seed=seed, training=False)
    rng = np.random.default_rng(seed)
    try:
        obs = env.reset()
        score, step, scored_at = 0.0, 0, None
        while step < max_steps and (scored_at is None or step < scored_at + after_point):
            obs, rew, done, infos = env.step(np.array([rng.integers(env.action_space.n)]))
            step += 1
            if done[0]:  # a lost game before the first point: keep its last frame
                obs = infos[0]["terminal_observation"][None]
                break
            score += float(rew[0])
            if scored_at is None and score != 0:
                scored_at = step
    finally:
        env.close()
    return MaskFrame(g, np.asarray(obs[0, -1], dtype=np.uint8), step, score, seed)


def masked_input(game: Game | str, frame: np.ndarray) -> np.ndarray:
    """The frame as the reward net sees it: the game's mask rows set to zero (``TrexRewardNet.input_scale``)."""
    out = np.array(frame, copy=True)
    out[list(get_game(game).mask_rows)] = 0
    return out


def save_mask_png(mf: MaskFrame, path: Path | str) -> Path:
    """Three panels: the frame, the masked rows in red over it, the reward net's input. Written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    g = mf.game
    rgb = np.repeat(mf.frame[..., None], 3, axis=2).astype(np.float32) / 255.0
    rows = list(g.mask_rows)
    overlay = rgb.copy()
    overlay[rows] = 0.55 * overlay[rows] + 0.45 * np.array([1.0, 0.0, 0.0])
    fig = Figure(figsize=(9.0, 3.6))
    FigureCanvasAgg(fig)
    panels = (
        (mf.frame, f"frame (step {mf.step}, score {mf.score:g})"),
        (overlay, f"mask: top {g.mask_top} / bottom {g.mask_bottom} rows"),
        (masked_input(g, mf.frame), "reward-net input"),
    )
    for i, (img, title) in enumerate(panels):
        ax = fig.add_subplot(1, 3, i + 1)
        ax.imshow(img, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([0, 20, 40, 60, 83])
        ax.tick_params(labelsize=7)
    fig.suptitle(f"{g.id}: the reward net's score/lives mask (random policy, seed {mf.seed})", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda p: fig.savefig(p, format="png", dpi=110), suffix=".png")
    return path
