"""Sweeps: games × methods × seeds (× KL β) as independent ``trex-bench pipeline`` runs.

Each job is one resolved :class:`~trex_bench.experiment.config.ExperimentConfig` run by ``trex-bench pipeline --config``
in its own folder (``experiment.naming.run_name``: a readable prefix and a short hash of every other non-default field,
so two experiments never share a folder), started with ``--resume`` so a rerun reuses finished stages, appending its
leaderboard row under the file lock. A job whose folder already holds a ``summary.json`` is finished (its row is in the
leaderboard) and is skipped unless ``force``.

Executors run the same command line for every job; the job's config is written to
``<root>/sweep-configs/<run name>.json`` when it starts (the flags are never rebuilt):
- ``local`` (default): ``workers`` pipelines at once on this machine, each limited to ``threads`` torch/OpenMP
  threads. On 2 cores two single-threaded pipelines do more work than one two-threaded pipeline
  (docs/measurements.md, "Sweeps"), so ``--workers 2 --threads 1`` is the default.
- ``ray``: one Ray task per job (``ray.init(address=...)``, a local Ray when none), each reserving ``threads``
  CPUs. The package and the demo sets must be installed at the same paths on every node, and ``runs/`` and the
  leaderboard on a shared file system. Ray is an optional extra (``pip install -e .[ray]``; the dev extra has it).
  Ray starts its workers at nice 15: beside other work on the same machine they get the CPU last.
"""

from __future__ import annotations

import itertools
import math
import os
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trex_bench.core.errors import ConfigError
from trex_bench.core.interrupts import Terminated
from trex_bench.core.io import read_json
from trex_bench.experiment.config import METHODS, ExperimentConfig
from trex_bench.experiment.naming import run_name
from trex_bench.experiment.options import PipelineConfig
from trex_bench.experiment.pipeline import LEARNED_REWARD, check_inputs, check_kl_reference

__all__ = ["SweepJob", "JobResult", "plan_sweep", "run_sweep", "EXECUTORS"]

EXECUTORS = ("local", "ray")
# Options of a sweep that only some methods take: T-REX's ranking and labels, a learned reward's transform.
_APPLIES_TO = {
    "ranking": tuple(name for name, m in METHODS.items() if len(m.rankings) > 1),
    "human_labels": tuple(name for name, m in METHODS.items() if "human" in m.rankings),
    "transform": LEARNED_REWARD,
    "precision": tuple(name for name, m in METHODS.items() if m.ppo),
    "labeler": tuple(name for name, m in METHODS.items() if m.reward == "prefs"),
    "label_noise": tuple(name for name, m in METHODS.items() if m.reward == "prefs"),
}


@dataclass(frozen=True)
class SweepJob:
    """One pipeline run of a sweep: its config, folder and the command that runs it."""

    config: ExperimentConfig
    folder: Path
    leaderboard: Path

    @property
    def name(self) -> str:
        return self.folder.name

    @property
    def config_file(self) -> Path:
        """Where the job's config is written when it starts (``pipeline --config`` reads it)."""
        return self.folder.parent / "sweep-configs" / f"{self.name}.json"

    def command(self) -> list[str]:
        """``trex-bench pipeline --config <config_file>`` into the job's folder, resuming, appending its row."""
        return [
            sys.executable,
            "-m",
            "trex_bench",
            "pipeline",
            "--config",
            str(self.config_file),
            "--out",
            str(self.folder),
            "--resume",
            "--no-progress",
            "--leaderboard",
            str(self.leaderboard),
        ]

    def finished(self) -> bool:
        return (self.folder / "summary.json").exists()

    def finished_at(self) -> int | None:
        """When its ``summary.json`` was written (ns), None before: tells a run finished now from one finished
        before."""
        try:
            return (self.folder / "summary.json").stat().st_mtime_ns
        except FileNotFoundError:
            return None


@dataclass(frozen=True)
class JobResult:
    """How one job ended: ``status`` is ``done``, ``skipped`` (finished before), ``busy`` (another process owns its run
    folder: ``holder`` is its pid, 0 where unknown), ``failed``, or ``stopped`` (the sweep was stopped before the job
    began)."""

    job: SweepJob
    status: str
    returncode: int
    wall_s: float
    log: Path | None
    holder: int | None = None

    def score(self) -> tuple[float, float] | None:
        """(mean, std) of the agent's true score from the run's summary, when it has one."""
        path = self.job.folder / "summary.json"
        if self.status == "failed" or not path.exists():
            return None
        summary = read_json(path)
        row = summary.get("row") if isinstance(summary, dict) else None
        try:
            return float(row["mean"]), float(row["std"])  # type: ignore[index]
        except (TypeError, KeyError, ValueError):  # a summary.json that is not a run's summary: no score to show
            return None


def plan_sweep(
    games: Sequence[str],
    methods: Sequence[str],
    seeds: Sequence[int],
    budget: str,
    *,
    root: Path = Path("runs"),
    leaderboard: Path = Path("results/leaderboard.csv"),
    kl_to: Path | None = None,
    kl_betas: Sequence[float] = (),
    check: bool = True,
    **config: Any,
) -> list[SweepJob]:
    """Every (game, method, β, seed) as a validated :class:`PipelineConfig` with its run folder under ``root``.

    ``kl_betas`` (with ``kl_to``) adds a KL axis to the PPO methods; β = 0 means no penalty. ``config`` holds
    the remaining :class:`PipelineConfig` fields, shared by all jobs (``demos``, ``ranking``, ``device`` ...).
    Bad values fail here, before anything runs; with ``check`` (the default) so do bad input files, each run's
    demo set, labels, ``--kl-to`` and unseen set (``pipeline.check_inputs``; ``check=False`` only names runs).
    """
    if not games or not methods or not seeds:
        raise ConfigError("a sweep needs at least one game, one method and one seed")
    if kl_betas and kl_to is None:
        raise ConfigError("--kl-betas needs --kl-to BC_DIR (the reference policy)")
    if kl_to is not None and not kl_betas:
        raise ConfigError("--kl-to needs --kl-betas (e.g. 0,0.01,0.1)")
    if any(not (math.isfinite(b) and b >= 0) for b in kl_betas):
        raise ConfigError(f"--kl-betas must be finite numbers >= 0, got {list(kl_betas)}")
    if kl_to is not None and check:
        check_kl_reference(kl_to)  # also when every β is 0 and no run would read it
    jobs: list[SweepJob] = []
    for game, method in itertools.product(games, methods):
        betas = [0.0] if method == "bc" else (kl_betas or [0.0])  # the clone itself has no KL axis
        for beta, seed in itertools.product(betas, seeds):
            kl = {"kl_to": kl_to, "kl_beta": beta} if beta > 0 else {}
            own = {k: v for k, v in config.items() if method in _APPLIES_TO.get(k, METHODS)}
            cfg = PipelineConfig(game=game, method=method, budget=budget, seed=seed, **kl, **own).resolve()
            if check:  # a missing demo set or --kl-to fails the plan (and --dry-run), not the run an hour in
                try:
                    check_inputs(cfg)
                except ValueError as e:
                    raise type(e)(f"{run_name(cfg)}: {e}") from e
            jobs.append(SweepJob(cfg, root / run_name(cfg), leaderboard))
    names = [j.name for j in jobs]
    if len(set(names)) != len(names):
        raise ConfigError("the sweep names the same run twice (repeated game, method or seed?)")
    return jobs


def child_env(threads: int) -> dict[str, str]:
    """A job's environment: ``threads`` torch/OpenMP threads, and the very ``trex_bench`` this process runs (its
    folder first on ``PYTHONPATH``; ``PYTHONSAFEPATH``: not whatever ``trex_bench/`` sits in the working folder,
    which ``python -m`` would import first)."""
    import trex_bench

    root = str(Path(trex_bench.__file__).resolve().parents[1])
    path = os.pathsep.join([root, *[p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return os.environ | {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONPATH": path,
        "PYTHONSAFEPATH": "1",
    }


def _die_with_parent() -> Callable[[], None] | None:
    """On Linux, a ``preexec_fn`` that has the kernel send the child SIGTERM when the sweep dies (even by
    ``kill -9``: ``prctl(PR_SET_PDEATHSIG)``), so no pipeline runs on as an orphan that a rerun would collide with;
    None elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes
    import signal

    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up here: the child only calls it
    parent = os.getpid()

    def preexec() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the sweep died before the line above: die now
            os._exit(143)

    return preexec


class _Children:
    """The runs a local sweep has started and not yet seen end, so that a stop reaches them. Thread-safe: workers
    start runs, the main thread (the only one Python delivers a signal to) stops them; once stopping, none starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[subprocess.Popen[bytes]] = set()
        self._stopping = False

    def start(self, command: list[str], **popen: Any) -> subprocess.Popen[bytes] | None:
        """The started run, or None where the sweep is stopping."""
        with self._lock:
            if self._stopping:
                return None
            child = subprocess.Popen(command, **popen)
            self._live.add(child)
            return child

    def ended(self, child: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._live.discard(child)

    def stop(self, terminate: bool) -> None:
        """Start no more runs; pass SIGTERM on to the live ones where ``terminate`` (Ctrl-C reached them already:
        one process group); wait for each to save its checkpoint and end (``rl.ppo.train_ppo``)."""
        with self._lock:
            self._stopping = True
            live = list(self._live)
        for child in live:
            if terminate:
                child.terminate()
        for child in live:
            child.wait()


def _run_local(job: SweepJob, log: Path, threads: int, children: _Children) -> int | None:
    """Run ``job``'s pipeline to its end; its exit code, or None where the sweep stopped before it started. The log
    is appended to: a resumed run's log keeps the sessions before it."""
    job.config.write(job.config_file)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a") as f:
        f.write(f"== {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {shlex.join(job.command())}\n")
        f.flush()
        child = children.start(
            job.command(),
            stdout=f,
            stderr=subprocess.STDOUT,
            env=child_env(threads),
            preexec_fn=_die_with_parent(),  # safe beside the worker threads: it only calls prctl
        )
        if child is None:
            return None
        try:
            return child.wait()
        finally:
            children.ended(child)


def _timed_run(job: SweepJob, log: Path, threads: int, children: _Children | None = None) -> JobResult:
    """Run one job to its end (the body of both executors; Ray's tasks each have their own ``children``). A job
    refused because another process owns its run folder (a run of another sweep) is ``busy``, not ``failed``; one that
    another process finished meanwhile is ``done``; one the sweep stopped before it began is ``stopped``."""
    from trex_bench.experiment.run_folder import owner

    if (holder := owner(job.folder)) is not None:  # its config, log and folder are another process's: left alone
        return JobResult(job, "busy", -1, 0.0, None, holder)
    t0, before = time.perf_counter(), job.finished_at()
    rc = _run_local(job, log, threads, children or _Children())
    if rc is None:
        return JobResult(job, "stopped", -1, 0.0, log)
    finished_now = job.finished_at() not in (None, before)  # by another process meanwhile; a --force rerun that
    # failed leaves the summary of the run before it, and is failed
    holder = None if rc == 0 or finished_now else owner(job.folder)  # a race with another sweep: it began first
    status = "done" if rc == 0 or finished_now else "busy" if holder is not None else "failed"
    return JobResult(job, status, rc, time.perf_counter() - t0, log, holder)


def _run_ray(
    jobs: list[SweepJob], logs: dict[str, Path], threads: int, address: str | None, report: Callable[[JobResult], None]
) -> None:
    try:
        import ray
    except ModuleNotFoundError as e:
        raise ConfigError("--executor ray needs Ray: pip install ray (or use --executor local)") from e
    ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)

    run_job = ray.remote(num_cpus=threads)(_timed_run)
    try:
        pending = [run_job.remote(j, logs[j.name], threads) for j in jobs]
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            report(ray.get(ready[0]))
    finally:
        ray.shutdown()  # a local Ray stops; a cluster is only disconnected from


def run_sweep(
    jobs: Sequence[SweepJob],
    *,
    executor: str = "local",
    workers: int = 2,
    threads: int = 1,
    force: bool = False,
    log_dir: Path = Path("runs/sweep-logs"),
    address: str | None = None,
    on_result: Callable[[JobResult], None] | None = None,
) -> list[JobResult]:
    """Run ``jobs``; each job's output goes to ``log_dir/<run name>.log``; results in the order jobs end."""
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor {executor!r}; valid: {', '.join(EXECUTORS)}")
    if workers < 1 or threads < 1:
        raise ConfigError("--workers and --threads must be >= 1")
    results: list[JobResult] = []

    def report(r: JobResult) -> None:
        results.append(r)
        if on_result is not None:
            on_result(r)

    todo = []
    for job in jobs:
        if job.finished() and not force:
            report(JobResult(job, "skipped", 0, 0.0, None))
        else:
            todo.append(job)
    logs = {j.name: log_dir / f"{j.name}.log" for j in todo}
    if executor == "ray":
        _run_ray(todo, logs, threads, address, report)
        return results

    children = _Children()
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        for fut in as_completed([pool.submit(_timed_run, j, logs[j.name], threads, children) for j in todo]):
            report(fut.result())
    except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM through the CLI (core.interrupts.Terminated)
        children.stop(terminate=isinstance(stop, Terminated))
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # the runs not started never start
    return results
