"""The leaderboard: an append-only CSV with provenance, one row per (run, seed) (DESIGN.md "Leaderboard").

Appends are atomic and safe with many writers (local processes or Ray tasks on a shared disk): under a file lock
on ``<csv>.lock`` the current file is read and validated, the whole new file is written to a temp file and moved
over the old one with ``os.replace``. A reader never sees half a row, no writer loses another's row, and a file
that is not a well-formed leaderboard is refused, never truncated or rewritten.
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
import json
import math
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from filelock import FileLock

from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write, git_commit, stable_hash, versions
from trex_bench.evaluation.results import AgentResult, Evaluation, FidelityFigures

__all__ = [
    "COLUMNS",
    "REQUIRED",
    "append_row",
    "row_from_run",
    "build_row",
    "read_leaderboard",
    "agent_method",
    "card_transform",
    "ROW_TRANSFORM",
]


# DESIGN.md "Data formats / Leaderboard", in that order.
COLUMNS: tuple[str, ...] = (
    "run_id",
    "utc_time",
    "git_commit",
    "versions",
    "device",
    "game",
    "env_profile",
    "method",
    "ranking_source",
    "reward_transform",
    "budget",
    "rl_steps",
    "seed",
    "n_episodes",
    "mean",
    "std",
    "min",
    "max",
    "best_demo",
    "avg_demo",
    "beats_best_demo",
    "human_normalized",
    "fidelity_spearman",
    "pair_accuracy",
    "wall_s",
    "config_hash",
    # The PPO schedule's horizon (a CPU budget is the first rl_steps of a schedule_steps run; empty in rows of the
    # earlier protocol, which annealed over their own rl_steps), the policy's numeric precision, and whether the
    # opt-in wall-time valve (--max-seconds) stopped a stage.
    "schedule_steps",
    "precision",
    "time_capped",
)
# The header before those three columns: such a file still reads, and the next append rewrites it with the
# new header and empty cells for its old rows (they did not record those facts).
LEGACY_COLUMNS: tuple[str, ...] = COLUMNS[: COLUMNS.index("schedule_steps")]
REQUIRED: tuple[str, ...] = ("game", "method", "seed", "mean")
# Columns that hold numbers: an empty cell is "not recorded", anything else must be a finite number.
NUMERIC: tuple[str, ...] = (
    "rl_steps",
    "seed",
    "n_episodes",
    "mean",
    "std",
    "min",
    "max",
    "best_demo",
    "avg_demo",
    "human_normalized",
    "fidelity_spearman",
    "pair_accuracy",
    "wall_s",
    "schedule_steps",
)
# Metrics a run may leave undefined (NaN): written as an empty cell, "not recorded", never as ``nan``.
MAY_BE_UNDEFINED: tuple[str, ...] = ("fidelity_spearman", "pair_accuracy", "human_normalized")
_LOCK_TIMEOUT_S = 120.0


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _read_checked(path: Path, action: str = "append") -> str:
    """The file's text, after checking it is a well-formed leaderboard; ValueError otherwise."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a leaderboard CSV (not UTF-8 text); refusing to {action}") from e
    if not text:
        return ""
    try:
        rows = list(csv.reader(io.StringIO(text, newline=""), strict=True))
    except csv.Error as e:
        raise DataError(f"{path}: unparsable CSV ({e}); refusing to {action}") from e
    if not rows or tuple(rows[0]) not in (COLUMNS, LEGACY_COLUMNS):
        raise DataError(f"{path}: header is not the leaderboard header {','.join(COLUMNS)}; refusing to {action}")
    width = len(rows[0])
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != width:
            raise DataError(f"{path}: line {n} has {len(row)} fields, want {width}; refusing to {action}")
    if not text.endswith("\n"):
        raise DataError(f"{path}: last line is incomplete (no newline); refusing to {action}")
    for n, row in enumerate(rows[1:], start=2):
        problem = _row_problem(dict(zip(rows[0], row, strict=False)))
        if problem:
            raise DataError(f"{path}: line {n}: {problem}; refusing to {action}")
    if width < len(COLUMNS):  # a legacy file: the same rows with the new columns left empty
        buf = io.StringIO(newline="")
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(COLUMNS)
        for row in rows[1:]:
            writer.writerow([*row, *[""] * (len(COLUMNS) - width)])
        text = buf.getvalue()
    return text


def _row_problem(cells: Mapping[str, str]) -> str:
    """What is wrong with one row's cells (strings by column), or ``""``: a number that is not a finite number
    (``abc``, ``nan``, ``inf``), a required cell left empty, a seed that is not an integer >= 0."""
    for c in REQUIRED:
        if not cells.get(c, "").strip():
            return f"{c} is empty"
    for c in NUMERIC:
        text = cells.get(c, "")
        if not text:
            continue
        try:
            value = float(text)
        except ValueError:
            return f"{c} = {text!r} is not a number"
        if not math.isfinite(value):
            return f"{c} = {text!r} is not a finite number"
    seed = float(cells["seed"])
    if seed < 0 or seed != int(seed):
        return f"seed = {cells['seed']!r} is not an integer >= 0"
    return ""


def append_row(csv_path: str | Path, row: Mapping[str, Any]) -> dict[str, str]:
    """Append one run's row to the leaderboard, atomically and under a file lock.

    Args:
        csv_path: the leaderboard file (created with its header when absent).
        row: values by column name (see ``COLUMNS``); ``game``, ``method``, ``seed`` and ``mean`` are required.
            ``run_id``, ``utc_time``, ``git_commit``, ``versions`` and ``device`` are filled in when absent;
            any other missing column is left empty. Dicts/lists are stored as JSON.

    Returns:
        The row as written (strings by column).

    Raises:
        ValueError: an unknown column, a missing required one, a metric that is not a finite number (the
            reader's rule), or an existing file that is not a well-formed leaderboard (left byte-identical).
    """
    unknown = sorted(set(row) - set(COLUMNS))
    if unknown:
        raise DataError(f"unknown leaderboard column(s) {', '.join(unknown)}; valid: {', '.join(COLUMNS)}")
    missing = [c for c in REQUIRED if row.get(c) in (None, "")]
    if missing:
        raise DataError(f"leaderboard row lacks required column(s) {', '.join(missing)}")
    full: dict[str, Any] = {
        "run_id": uuid.uuid4().hex[:12],
        "utc_time": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "git_commit": git_commit(),
        "versions": versions(),
        "device": "cpu",
    }
    full.update({k: v for k, v in row.items() if v is not None or k not in full})
    for c in MAY_BE_UNDEFINED:  # e.g. a reward net constant on every demo has no rank correlation: not recorded
        if isinstance(full.get(c), float) and math.isnan(full[c]):
            full[c] = None
    cells = {c: _cell(full.get(c)) for c in COLUMNS}
    problem = _row_problem(cells)  # the reader's own rule: a row it would refuse is never written
    if problem:
        raise DataError(f"leaderboard row of {cells['game']} {cells['method']} seed {cells['seed']}: {problem}")
    buf = io.StringIO(newline="")
    csv.writer(buf, lineterminator="\n").writerow([cells[c] for c in COLUMNS])
    line = buf.getvalue()

    path = Path(csv_path)
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a leaderboard CSV")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=_LOCK_TIMEOUT_S):
            old = _read_checked(path) if path.exists() else ""
            header = "" if old else ",".join(COLUMNS) + "\n"
            new = old + header + line
            atomic_write(path, lambda p: p.write_text(new, encoding="utf-8"), suffix=".csv")
    except (PermissionError, NotADirectoryError, FileExistsError) as e:  # a read-only folder, a file as a folder
        raise DataError(f"cannot write the leaderboard {path}: {e.strerror or e}") from e
    return cells


def build_row(
    evaluation: Evaluation, agent: AgentResult | None, fidelity: FidelityFigures | None, **run: Any
) -> dict[str, Any]:
    """The one leaderboard-row builder: the score columns from the evaluation (``evaluate_agent``'s summary, computed
    there once), the PPO columns from the agent (None: a policy without PPO, ``bc`` or ``random``), the fidelity
    columns from the reward's report, and what only the caller knows in ``run``: ``run_id``, ``device``, ``game``,
    ``env_profile``, ``method``, ``ranking_source``, ``reward_transform``, ``budget``, ``seed``, ``wall_s`` and
    ``config_hash`` (``stable_hash`` of the configuration the run was made from: a pipeline's ``config.json``, or an
    agent card's settings for an agent evaluated on its own). ``append_row`` fills in time, commit and versions.
    """
    s = evaluation.summary
    return {
        **run,
        "rl_steps": agent.steps if agent else 0,  # fewer than total_steps where --max-seconds stopped PPO
        "n_episodes": len(evaluation.returns),
        **{k: s.get(k) for k in Evaluation.SUMMARY},
        "fidelity_spearman": fidelity.spearman if fidelity else None,
        "pair_accuracy": fidelity.pair_accuracy if fidelity else None,
        "schedule_steps": agent.schedule_steps if agent else None,
        "precision": agent.precision if agent else None,
        "time_capped": agent.time_capped if agent else False,
    }


def row_from_run(
    agent_card: Mapping[str, Any],
    report: Mapping[str, Any],
    method: str,
    ranking_source: str | None = None,
    fidelity: Mapping[str, Any] | None = None,
    wall_s: float | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """``build_row`` of an agent evaluated on its own (``trex-bench evaluate --leaderboard``): from its ``card.json``
    and ``eval.json``; its ``config_hash`` is that of the card's settings and the evaluation's.
    """
    is_agent = agent_card.get("kind", "agent") == "agent" and "steps" in agent_card
    return build_row(
        Evaluation.from_json(dict(report)),
        AgentResult.from_card(dict(agent_card)) if is_agent else None,
        FidelityFigures.from_json(fidelity) if fidelity is not None else None,
        run_id=run_id,
        device=agent_card.get("device"),
        game=report["game"],
        env_profile=report["profile"],
        method=method,
        ranking_source=ranking_source,
        reward_transform=card_transform(agent_card) if is_agent else "",
        budget=agent_card.get("budget"),
        seed=agent_card.get("seed"),
        wall_s=wall_s if wall_s is not None else agent_card.get("wall_s"),
        config_hash=stable_hash(
            {k: agent_card.get(k) for k in ("game", "profile_settings", "reward", "config", "seed")}
            | {"eval": {k: report.get(k) for k in ("episodes", "seed", "deterministic")}}
        ),
    )


def agent_method(agent_card: Mapping[str, Any]) -> str:
    """The leaderboard method of a PPO agent, from its card: ``ppo-true``, ``constant``, the reward model's method
    (``trex``/``drex``) or the online reward's (``prefs``/``gail``)."""
    reward = agent_card.get("reward", {})
    source = reward.get("source")
    if source == "true":
        return "ppo-true"
    if source == "constant":
        return "constant"
    if source in ("model", "online") and reward.get("method") in _CARD_METHODS[source]:
        return str(reward["method"])
    raise DataError(f"cannot tell the method of an agent whose reward is {reward!r}")


_CARD_METHODS = {"model": ("trex", "drex"), "online": ("prefs", "gail")}

# The ``reward_transform`` of the rows of a method without a learned reward (``experiment.methods.METHODS[m]
# .row_transform``; a test holds the two in step): the true reward clipped to its sign, the survival bonus, the
# preference loop's normalised ensemble, GAIL's discriminator reward.
ROW_TRANSFORM = {"ppo-true": "clip", "constant": "constant", "prefs": "normalized", "gail": "gail"}


def card_transform(agent_card: Mapping[str, Any]) -> str:
    """The row's ``reward_transform`` of a PPO agent, from its card, as the pipeline writes it: the learned reward's
    transform, else the method's own (``ROW_TRANSFORM``), with ``+kl<β>`` for a KL penalty (a variant, never pooled
    with the plain method)."""
    reward = agent_card.get("reward", {})
    if reward.get("source") == "model":
        transform = str(reward.get("transform") or "")
    else:
        transform = ROW_TRANSFORM[agent_method(agent_card)]
    beta = float(agent_card.get("kl_beta") or 0.0)
    return transform + (f"+kl{beta:g}" if beta > 0 else "")


def read_leaderboard(csv_path: str | Path) -> pd.DataFrame:
    """The leaderboard as a DataFrame (checked like ``append_row`` does); an empty frame when absent.

    Raises:
        ValueError: a file that is not a well-formed leaderboard, or a row with a metric that is not a finite number
            (``abc``, ``nan``, ``inf``), an empty game, method, seed or mean, or a negative seed: one line naming the
            file and line.
    """
    path = Path(csv_path)
    if not path.exists():
        return pd.DataFrame(columns=list(COLUMNS))
    if path.is_dir():
        raise DataError(f"{path} is a directory, not a leaderboard CSV")
    text = _read_checked(path, action="read it")
    if not text:  # a 0-byte file: no rows yet (append_row writes the header into it)
        return pd.DataFrame(columns=list(COLUMNS))
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    for c in NUMERIC:  # each cell checked by _read_checked: a finite number, or empty (NaN here: not recorded)
        df[c] = pd.to_numeric(df[c], errors="coerce")
    df["beats_best_demo"] = df["beats_best_demo"].str.lower().map({"true": True, "false": False})
    return df
