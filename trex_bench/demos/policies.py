"""Demonstrators. A demonstrator is anything with ``act(obs) -> actions`` (STYLE.md rule 6).

``obs`` is always a uint8 batch [N, 4, 84, 84] from ``trex_bench.core.envs``; ``act`` returns int64 [N] indices into
the game's minimal action set. The scripted trackers read the newest frame (ale-py's vector env exposes no RAM);
they are cheap, need no training, and play well enough that ε-noise orders their returns, which is what tests and
quick demo sets need.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from trex_bench.core.errors import ConfigError

__all__ = [
    "Demonstrator",
    "RandomPolicy",
    "NoopPolicy",
    "ScriptedBreakout",
    "ScriptedPong",
    "EpsilonGreedy",
]


@runtime_checkable
class Demonstrator(Protocol):
    """What collection needs from a policy."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        """Actions int64 [N] for observations uint8 [N, 4, 84, 84]."""
        ...

    def describe(self) -> str:
        """One line for the demo set's manifest."""
        ...


class RandomPolicy:
    """Uniform over the action set."""

    def __init__(self, n_actions: int, rng: np.random.Generator) -> None:
        self.n_actions, self.rng = n_actions, rng

    def act(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.integers(0, self.n_actions, len(obs))

    def describe(self) -> str:
        return "random"


class NoopPolicy:
    """Always NOOP (action 0 in every minimal action set); D-REX's "no-op" bin."""

    def act(self, obs: np.ndarray) -> np.ndarray:
        return np.zeros(len(obs), dtype=np.int64)

    def describe(self) -> str:
        return "noop"


def _centroid(mask: np.ndarray) -> tuple[float, float] | None:
    """(row, col) mean of a boolean image, or None when empty."""
    rc = np.argwhere(mask)
    return (float(rc[:, 0].mean()), float(rc[:, 1].mean())) if len(rc) else None


class ScriptedBreakout:
    """Move the paddle to where the ball will cross the paddle row; FIRE when no ball is in play.

    Breakout minimal set: NOOP FIRE RIGHT LEFT. From frames of the ``paper`` profile: rows 38–73 of the 84×84 frame
    lie between the bricks and the paddle, rows 75–76 hold the paddle, columns 5–78 are inside the side walls. The
    ball's velocity comes from the last two frames of the stack; its path is folded at the walls.
    """

    NOOP, FIRE, RIGHT, LEFT = 0, 1, 2, 3
    LO, HI, PADDLE_ROW = 5.0, 78.0, 75.0

    def act(self, obs: np.ndarray) -> np.ndarray:
        out = np.full(len(obs), self.FIRE, dtype=np.int64)
        for n in range(len(obs)):
            now = _centroid(obs[n, -1, 38:74, 5:79] > 60)
            paddle = _centroid(obs[n, -1, 75:77, 5:79] > 60)
            if now is None or paddle is None:
                continue
            target = now[1]
            before = _centroid(obs[n, -2, 38:74, 5:79] > 60)
            if before is not None and now[0] > before[0]:  # falling: predict the crossing point
                vy, vx = now[0] - before[0], now[1] - before[1]
                x = now[1] + 5 + vx * (self.PADDLE_ROW - (now[0] + 38)) / vy
                width = self.HI - self.LO
                x = (x - self.LO) % (2 * width)
                target = (x if x <= width else 2 * width - x) + self.LO - 5
            dx = target - paddle[1]
            out[n] = self.RIGHT if dx > 1.5 else self.LEFT if dx < -1.5 else self.NOOP
        return out

    def describe(self) -> str:
        return "scripted:breakout-tracker"


class ScriptedPong:
    """Keep the right paddle level with the ball (Pong minimal set: NOOP FIRE RIGHT(up) LEFT(down) ...).

    From frames of the ``paper`` profile: background gray 87, field rows 14–76, the agent's paddle in columns
    73–75, the ball anywhere between the paddles (columns 12–71).
    """

    NOOP, UP, DOWN = 0, 2, 3

    def act(self, obs: np.ndarray) -> np.ndarray:
        field = np.abs(obs[:, -1, 14:77].astype(np.int16) - 87) > 10
        out = np.zeros(len(obs), dtype=np.int64)
        for n in range(len(obs)):
            paddle = _centroid(field[n, :, 73:76])
            ball = _centroid(field[n, :, 12:72])
            if paddle is None or ball is None:
                continue
            dy = ball[0] - paddle[0]
            out[n] = self.DOWN if dy > 1 else self.UP if dy < -1 else self.NOOP
        return out

    def describe(self) -> str:
        return "scripted:pong-tracker"


SCRIPTED = {"breakout": ScriptedBreakout, "pong": ScriptedPong}


class EpsilonGreedy:
    """With probability ε take a uniform random action, else the base demonstrator's (ε = 1 is uniform random)."""

    def __init__(self, base: Demonstrator, epsilon: float, n_actions: int, rng: np.random.Generator) -> None:
        if not 0.0 <= epsilon <= 1.0:
            raise ConfigError(f"noise must be in [0, 1], got {epsilon}")
        self.base, self.epsilon, self.n_actions, self.rng = base, epsilon, n_actions, rng

    def act(self, obs: np.ndarray) -> np.ndarray:
        actions = self.base.act(obs) if self.epsilon < 1.0 else np.zeros(len(obs), np.int64)
        explore = self.rng.random(len(obs)) < self.epsilon
        return np.where(explore, self.rng.integers(0, self.n_actions, len(obs)), actions)

    def describe(self) -> str:
        return f"epsilon-greedy({self.epsilon}) around {self.base.describe()}"
