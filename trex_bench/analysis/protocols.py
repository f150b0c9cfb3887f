"""Which leaderboard rows belong to the current protocol, and why the others do not.

The leaderboard is append-only, so it still holds rows of protocols that were replaced. Two changes matter:

- **the PPO schedule**: PPO once annealed its learning rate and clip range over the budget's own steps; now a CPU
  budget is the first ``rl_steps`` of a full-length run (``schedule_steps``: rl-zoo3's 10M agent steps, DESIGN.md
  "Budgets"). A row that ran PPO (``rl_steps`` > 0; BC runs none) with no ``schedule_steps`` is of the earlier
  protocol (measured on Breakout: PPO on the true reward 8.7 at 500k steps annealed over 500k, 16.3 as a prefix of
  10M).
- **the demo set**: the demonstrations were once a scripted player's; now they are one episode from each of 12 early
  checkpoints of a PPO run on the true reward (T-REX's protocol; demos/README.md). The leaderboard names a demo set by
  its best and average return, so a game's *current* set is that of its latest row with a recorded schedule of a
  method that learns from demos (else of any method). A row of a method that learns from demos on another set is
  of an earlier protocol.
- **a demo set of its own**: D-REX learns from one demonstrator's episodes (``demos/<game>/drex-demos``; Brown et al.
  2019b §4), not from the ranked checkpoints (``OWN_DEMO_SET``). Its rows are judged on their own current set (that
  of its latest row on the current schedule), never on the others'.

The controls (``DEMO_FREE``: PPO on the constant or the true reward, a random policy) learn nothing from demos; a row
of theirs on the current schedule is current whatever set it was logged beside, and is compared with the game's
current demo set (its ``best_demo``/``avg_demo``/``beats_best_demo`` are rewritten to that set's).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "DEMO_FREE",
    "OWN_DEMO_SET",
    "OWN_STEPS",
    "EARLIER_NOTE",
    "Protocols",
    "split_protocols",
    "current_demo_sets",
    "shared_demo_sets",
    "demo_family",
    "why_apart",
    "ran_ppo",
    "SUITE",
    "SUITE_BUDGETS",
    "with_suite",
]

DEMO_FREE: tuple[str, ...] = ("constant", "ppo-true", "random")
# Methods that learn from a demo set of their own, and are judged against it (see the module doc).
OWN_DEMO_SET: tuple[str, ...] = ("drex",)
OWN_STEPS = "PPO annealed over its own steps"
NO_DEMO_SET = "no demo set recorded"

# What the "earlier protocols" sections of the tables, the statistics, the report and docs/results.md say.
EARLIER_NOTE = (
    "Rows of replaced protocols, kept apart: not comparable with the rows above. "
    f"`{OWN_STEPS}`: PPO's learning rate and clip range annealed to 0 over the run's own steps, where the current "
    "protocol runs the first steps of rl-zoo3's 10M-step schedule (Breakout, PPO on the true reward at 500k steps: "
    "8.7 annealed over 500k, 16.3 as a prefix of 10M); `demo set best … / avg …`: T-REX or another method that "
    "learns from demos trained on an earlier demo set (a scripted player's), where the current protocol uses "
    "12 early checkpoints of a PPO run (demos/README.md). Controls are compared within the same protocol."
)


# The eight-game leaderboard: every game at `small` but Pong at `medium`, where PPO has begun to learn Pong (rl-zoo3's
# PPO: −17.4 at 500k steps, −9.9 at 1M; our demonstrator run −18.6 and 5.1, demos/README.md).
SUITE_BUDGETS: dict[str, str] = {"pong": "medium"}
SUITE = "small (pong: medium)"


def with_suite(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` and, once more under the budget ``SUITE``, its rows of each game at that game's leaderboard budget
    (``SUITE_BUDGETS``, else ``small``): the eight games as one set for the statistics, in file order."""
    at = df["budget"] == df["game"].map(SUITE_BUDGETS).fillna("small")
    return pd.concat([df, df[at].assign(budget=SUITE)], ignore_index=True)


@dataclass(frozen=True)
class Protocols:
    """Leaderboard rows split by protocol.

    Attributes:
        current: rows of the current protocol, in file order (controls carry the game's current demo set).
        earlier: rows of replaced protocols, in file order, with a ``why`` column saying what differs.
    """

    current: pd.DataFrame
    earlier: pd.DataFrame


def _has_schedule(df: pd.DataFrame) -> pd.Series:
    return pd.to_numeric(df["schedule_steps"], errors="coerce").notna()


def demo_family(method: str) -> str:
    """Which of a game's current demo sets judges a method's rows: its own name for a method with a set of its own
    (``OWN_DEMO_SET``), else "" (the set shared by every other method)."""
    return method if method in OWN_DEMO_SET else ""


def current_demo_sets(df: pd.DataFrame) -> dict[tuple[str, str], tuple[float, float]]:
    """``{(game, family): (best demo, average demo)}`` (``demo_family``): per game, the shared set is that of the
    latest row on the current schedule of a method that learns from demos (else of any row there but an own-set
    method's); a method with a set of its own has the set of its latest such row. Rows without a demo score name no
    set; a game or family without a row is absent."""
    sets: dict[tuple[str, str], tuple[float, float]] = {}
    scored = df[_has_schedule(df) & df["best_demo"].notna()]
    family = scored["method"].map(demo_family)
    for (game, fam), rows in scored.groupby([scored["game"], family], sort=True):
        learned = rows[~rows["method"].isin(DEMO_FREE)]
        ref = learned if not learned.empty else rows
        sets[(str(game), str(fam))] = (float(ref["best_demo"].iloc[-1]), float(ref["avg_demo"].iloc[-1]))
    return sets


def shared_demo_sets(sets: dict[tuple[str, str], tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """``{game: (best demo, average demo)}`` of ``current_demo_sets``' shared sets: the one every method without a
    set of its own is judged on, the controls included."""
    return {game: s for (game, family), s in sets.items() if not family}


def ran_ppo(rl_steps: Any) -> Any:
    """Whether a row ran PPO (``rl_steps`` != 0; unknown, NaN, counts as ran): a scalar or an aligned ``pd.Series``.
    A row that ran none (random, BC) has no schedule to differ on."""
    return pd.to_numeric(rl_steps, errors="coerce") != 0


def why_apart(
    game: str,
    method: str,
    schedule_steps: object,
    best: float,
    avg: float,
    sets: dict[str, tuple[float, float]],
    rl_steps: object = None,
) -> str:
    """What sets a row (or a table row summarising such rows) apart from the current protocol; empty when nothing.

    ``schedule_steps`` is the row's (NaN/None: annealed over its own steps; ignored where ``rl_steps`` is 0: a method
    that ran no PPO, like BC); ``sets`` is ``current_demo_sets``. No demo score (``best`` NaN) gives no reason.
    """
    reasons = []
    if ran_ppo(rl_steps) and pd.isna(pd.to_numeric(schedule_steps, errors="coerce")):
        reasons.append(OWN_STEPS)
    current = sets.get((game, demo_family(method)))
    if current is not None and method not in DEMO_FREE and not pd.isna(best) and (best, avg) != current:
        reasons.append(f"demo set best {best:g} / avg {avg:.3g} (current: {current[0]:g} / {current[1]:.3g})")
    return "; ".join(reasons)


def split_protocols(df: pd.DataFrame) -> Protocols:
    """Rows of the current protocol and, apart, those of replaced ones with why (see the module doc).

    >>> rows = pd.DataFrame({"game": ["g", "g", "g"], "method": ["trex", "trex", "ppo-true"], "rl_steps": [9, 9, 9],
    ...     "schedule_steps": [None, 10, 10], "best_demo": [5.0, 3.0, 5.0], "avg_demo": [2.0, 1.0, 2.0],
    ...     "beats_best_demo": [False, False, True], "mean": [1.0, 2.0, 4.0]})
    >>> p = split_protocols(rows)
    >>> p.current[["method", "best_demo", "beats_best_demo"]].values.tolist()
    [['trex', 3.0, False], ['ppo-true', 3.0, True]]
    >>> p.earlier["why"].str.startswith("PPO annealed").tolist()
    [True]
    """
    if df.empty:
        return Protocols(df.copy(), df.assign(why=pd.Series(dtype=str)))
    sets = current_demo_sets(df)
    why = pd.Series(
        [
            why_apart(g, m, s, b, a, sets, n)
            for g, m, s, b, a, n in zip(
                *(df[c] for c in ("game", "method", "schedule_steps", "best_demo", "avg_demo", "rl_steps")), strict=True
            )
        ],
        index=df.index,
        dtype=str,
    )
    # A row of a method that learns from demos but names no demo set cannot be judged against its game's current one.
    keys = zip(df["game"], df["method"].map(demo_family), strict=True)
    unjudged = ~df["method"].isin(DEMO_FREE) & df["best_demo"].isna() & pd.Series([k in sets for k in keys], df.index)
    why[unjudged] = [f"{w}; {NO_DEMO_SET}" if w else NO_DEMO_SET for w in why[unjudged]]
    current = df[why == ""].copy()
    shared = shared_demo_sets(sets)
    free = current["method"].isin(DEMO_FREE) & current["game"].isin(list(shared))
    if free.any():
        best = current.loc[free, "game"].map(lambda g: shared[g][0])
        current.loc[free, "best_demo"] = best
        current.loc[free, "avg_demo"] = current.loc[free, "game"].map(lambda g: shared[g][1])
        current["beats_best_demo"] = current["beats_best_demo"].astype(object)  # all-empty reads as float
        current.loc[free, "beats_best_demo"] = current.loc[free, "mean"] > best
    return Protocols(current, df[why != ""].assign(why=why[why != ""]))
