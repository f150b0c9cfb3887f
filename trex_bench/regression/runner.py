"""Run the regression checks (``trex_bench.regression.checks.CHECKS``), in this process or a pool of spawned ones.

Each check runs on one torch thread (``reproducible_torch``), so a check measures the same in a worker process as in
this one; the demo sets are measured first, one unit each, because the later checks read the frames they cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from trex_bench.regression.checks import (
    CHECKS,
    CheckSkipped,
    Measured,
    committed_demo_sets,
    measure_named_demo_set,
    select_checks,
)

__all__ = ["run_checks"]


def _measure(root: str, name: str, seed: int, demo_set: str | None) -> tuple[dict[str, Measured], float]:
    """One unit of work in a worker process: a check, or one demo set of ``demos``; (metrics, seconds)."""
    t0 = time.perf_counter()
    if demo_set is not None:
        out = measure_named_demo_set(Path(root), demo_set)
    else:
        out = next(c for c in CHECKS if c.name == name).measure(Path(root), seed)
    return out, time.perf_counter() - t0


def _here(fn: Callable[..., Any], *args: Any) -> Future:
    """``fn(*args)`` run in this process now, as a finished future (the pool's interface with one worker)."""
    done: Future = Future()
    try:
        done.set_result(fn(*args))
    except CheckSkipped as e:
        done.set_exception(e)
    return done


def run_checks(
    root: str | Path, names: Sequence[str] | None = None, seed: int = 0, workers: int = 1
) -> tuple[dict[str, dict[str, Measured]], dict[str, float], dict[str, str]]:
    """Measure the named checks (all when None) at ``seed``, ``workers`` processes at once.

    Each check runs on one torch thread (``reproducible_torch``), so a check measures the same in a worker process as
    in this one. ``demos`` runs first, one unit per demo set: the later checks read the frames it caches. With
    ``workers`` > 1 the units go to a pool of fresh (spawned) processes that inherit the pinned numerics' environment.

    Returns:
        ``({check: {metric: Measured}}, {check: seconds of work}, {skipped check: why})``; a skipped check is not
        measured. Seconds are summed over a check's units (the work it took, not the wall time of the run).
    """
    root = Path(root)
    checks = select_checks(names)
    phases = [
        [("demos", None, s) for s in committed_demo_sets(root)] if any(c.name == "demos" for c in checks) else [],
        [(c.name, c.name, None) for c in checks if c.name != "demos"],
    ]
    measured: dict[str, dict[str, Measured]] = {c.name: {} for c in checks}
    seconds = {c.name: 0.0 for c in checks}
    skipped: dict[str, str] = {}
    pool = ProcessPoolExecutor(workers, mp_context=get_context("spawn")) if workers > 1 else None
    try:
        for phase in phases:
            submit = pool.submit if pool else _here
            futures = [(check, submit(_measure, str(root), name, seed, demo_set)) for check, name, demo_set in phase]
            for check, future in futures:
                try:
                    metrics, took = future.result()
                except CheckSkipped as e:
                    skipped[check] = str(e)
                    continue
                measured[check].update(metrics)
                seconds[check] += took
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)
    return {k: v for k, v in measured.items() if k not in skipped}, seconds, skipped
