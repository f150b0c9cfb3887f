"""Expectations of the regression checks: ``results/regression.json``, comparison with a run, and refreshing it.

The file maps each metric ``<check>.<metric>`` to its expected value, its tolerance (``exact``, ``rel`` or ``band``)
and what produced it (command, reason, commit, versions, machine). ``compare_all`` judges a run of
``trex_bench.regression.runner.run_checks`` against it; ``update_expectations`` re-measures checks on purpose, with a
reason, and sets each band from the spread of the metric over seeds (``HOW`` says how, and is written into the file).
"""

from __future__ import annotations

import contextlib
import json
import math
import platform
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from trex_bench.regression.checks import BAND_SEEDS, CheckSkipped, Measured, RegressionError, Result, select_checks

__all__ = [
    "SCHEMA",
    "HOW",
    "REL_TOL",
    "ABS_FLOOR",
    "BAND_RULES",
    "compare",
    "compare_all",
    "load_expectations",
    "save_expectations",
    "provenance",
    "update_expectations",
    "record_for_cpu",
    "cpu_vendor",
    "for_cpu",
    "TOLERANCES",
]

SCHEMA = 1
REL_TOL, ABS_FLOOR = 1e-5, 1e-9
# Most a ``rel`` metric may differ on another CPU vendor as its rounding (``record_for_cpu``); the pinned losses and
# released-net scores agree across vendors to 1e-5 here. Beyond it a change moved it: ``update_expectations``.
VENDOR_REL_LIMIT = 1e-3
TOLERANCES = ("exact", "rel", "band")
# metric → (floor of the half-width, lowest and highest value the metric can take)
BAND_RULES: dict[str, tuple[float, float, float]] = {
    "spearman": (0.05, -1.0, 1.0),
    "pair_accuracy": (0.02, 0.0, 1.0),
    "eval_mean": (1.0, 0.0, math.inf),
    "spearman_mean_unseen": (0.05, -1.0, 1.0),
    "spearman_mean_all": (0.05, -1.0, 1.0),
    "beyond_best_accuracy": (0.02, 0.0, 1.0),
}

HOW = (
    "Written by `trex-bench regression update --reason ...` (trex_bench/regression/checks.py); checked by "
    "`trex-bench regression check` (`make regression`). Each metric is measured at seed 0 on CPU with one torch "
    "thread. tolerance 'exact': equal value (hashes, counts); 'rel': |got - expected| <= 1e-5*|expected| + 1e-9; "
    "'band': lo <= got <= hi, where the band is mean +- max(3*std, floor) of the metric over seeds 0-4 of the same "
    "check (std with ddof 1), clipped to the metric's range (floors: Spearman 0.05, pair and snippet accuracies 0.02, "
    "eval_mean 1.0); 'band_how' and 'samples' give the numbers. The checks pin the CPU float kernels ('numerics': "
    "torch's at AVX2, MKL_CBWR=COMPATIBLE,STRICT, oneDNN off) so that exact weight hashes hold across x86-64 CPUs "
    "('machine' says where each was recorded); a torch build may move them ('versions'). Where a CPU vendor still "
    "rounds differently, its own values of the exact and rel metrics are under 'by_cpu' (recorded with "
    "`regression update --this-cpu`) and that vendor is checked against them. A check whose input lies "
    "outside the repository (released.*: the authors' nets in "
    "../shared/reference) is skipped, and says so, where that input is absent. Each entry records the command, "
    "reason, commit and versions that produced it."
)


# -- comparison ----------------------------------------------------------------------------------------------------
def _band_text(entry: Mapping[str, Any]) -> str:
    if entry["tolerance"] == "band":
        lo, hi = entry["band"]
        return f"[{lo:.4g}, {hi:.4g}]"
    return f"rel {REL_TOL:g}" if entry["tolerance"] == "rel" else "exact"


def for_cpu(entry: Mapping[str, Any], vendor: str) -> Mapping[str, Any]:
    """The entry as this CPU vendor should see it: its ``by_cpu`` value (exact and rel metrics that round
    differently on another vendor's CPU even with the numerics pinned) in place of ``expected`` where there is one."""
    alt = entry.get("by_cpu", {}).get(vendor)
    return {**entry, "expected": alt["expected"]} if alt is not None else entry


def compare(check: str, metric: str, entry: Mapping[str, Any] | None, got: Measured | None, vendor: str = "") -> Result:
    """One metric against its expectation (``vendor``'s own where it has one); a missing expectation or measurement
    fails and says which."""
    if entry is not None:
        entry = for_cpu(entry, vendor)
    if entry is None:
        return Result(
            check,
            metric,
            None,
            None if got is None else got.value,
            "-",
            False,
            "no expectation: new metric (run `trex-bench regression update --reason ...`)",
        )
    exp, band = entry["expected"], _band_text(entry)
    if got is None:
        return Result(check, metric, exp, None, band, False, "expected but not measured (a check lost a metric)")
    v = got.value
    if entry["tolerance"] == "exact" or isinstance(exp, str) or isinstance(v, str):
        if v == exp:
            return Result(check, metric, exp, v, band, True)
        how = "hash differs" if isinstance(exp, str) else f"off by {float(v) - float(exp):+g}"
        return Result(check, metric, exp, v, band, False, how)
    d = float(v) - float(exp)
    if entry["tolerance"] == "rel":
        limit = REL_TOL * abs(float(exp)) + ABS_FLOOR
        ok = abs(d) <= limit
        return Result(check, metric, exp, v, band, ok, "" if ok else f"off by {d:+.3g} (limit ±{limit:.3g})")
    lo, hi = entry["band"]
    if math.isnan(float(v)):
        return Result(check, metric, exp, v, band, False, "not a number (undefined)")
    if v < lo:
        return Result(check, metric, exp, v, band, False, f"{lo - v:.4g} below the band's low end {lo:.4g}")
    if v > hi:
        return Result(check, metric, exp, v, band, False, f"{v - hi:.4g} above the band's high end {hi:.4g}")
    return Result(check, metric, exp, v, band, True)


def compare_all(
    expectations: Mapping[str, Any], measured: Mapping[str, Mapping[str, Measured]], vendor: str | None = None
) -> list[Result]:
    """Every metric of the measured checks, and every expected metric of those checks that was not measured; each
    against this CPU vendor's expectation where the file has one (``cpu_vendor``)."""
    vendor = cpu_vendor() if vendor is None else vendor
    entries = expectations.get("metrics", {})
    out = []
    for check, values in measured.items():
        keys = list(values) + [
            k[len(check) + 1 :] for k in entries if k.startswith(check + ".") and k[len(check) + 1 :] not in values
        ]
        out += [compare(check, m, entries.get(f"{check}.{m}"), values.get(m), vendor) for m in keys]
    return out


def load_expectations(path: str | Path, missing_ok: bool = False) -> dict[str, Any]:
    """Read and validate ``regression.json`` (one-line ``RegressionError`` naming the file and the entry).

    An absent file is an error for ``check`` (every metric would be "new" and nothing would be compared) and no
    expectations for ``update`` (``missing_ok``), which creates it.
    """
    path = Path(path)
    if not path.exists():
        if missing_ok:
            return {"schema": SCHEMA, "metrics": {}}
        raise RegressionError(
            f"{path}: no expectations file there (create one with `trex-bench regression update --reason ...`)"
        )
    if not path.is_file():
        raise RegressionError(f"{path} is not a file")
    try:
        doc = json.loads(path.read_text(), parse_constant=_refuse_constant)
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise RegressionError(f"{path}: not a readable JSON expectations file ({e})") from e
    if not isinstance(doc, dict):
        raise RegressionError(f"{path}: expected a JSON object, got {type(doc).__name__}")
    if doc.get("schema") != SCHEMA:
        raise RegressionError(f"{path}: schema {doc.get('schema')!r}, this trex_bench reads {SCHEMA}")
    metrics = doc.get("metrics")
    if not isinstance(metrics, dict):
        raise RegressionError(f"{path}: 'metrics' must be an object of metric -> entry")
    for key, entry in metrics.items():
        problem = _entry_problem(entry)
        if problem:
            raise RegressionError(f"{path}: metric {key!r}: {problem}")
    return doc


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number an expectation can hold")


def _value_problem(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return f"expected must be a string or a number, got {type(value).__name__}"
    if isinstance(value, float) and not math.isfinite(value):
        return "expected must be finite"
    return ""


def _entry_problem(entry: Any) -> str:
    """What is wrong with one expectation entry, or "" (schema: expected, tolerance, band for 'band', by_cpu)."""
    if not isinstance(entry, dict):
        return f"an entry must be an object, got {type(entry).__name__}"
    tol = entry.get("tolerance")
    if tol not in TOLERANCES:
        return f"tolerance must be one of {', '.join(TOLERANCES)}, got {tol!r}"
    problem = _value_problem(entry.get("expected"))
    if problem:
        return problem
    if tol != "exact" and isinstance(entry["expected"], str):
        return f"a {tol!r} tolerance needs a number, got the string {entry['expected']!r}"
    if tol == "band":
        band = entry.get("band")
        ok = isinstance(band, list) and len(band) == 2 and all(not _value_problem(b) for b in band)
        if not ok or isinstance(band[0], str) or isinstance(band[1], str) or band[0] > band[1]:
            return f"band must be [low, high] with finite low <= high, got {band!r}"
    by_cpu = entry.get("by_cpu", {})
    if not isinstance(by_cpu, dict):
        return "by_cpu must be an object of CPU vendor -> {expected: ...}"
    for vendor, alt in by_cpu.items():
        problem = _value_problem(alt.get("expected")) if isinstance(alt, dict) else "must be an object"
        if problem:
            return f"by_cpu[{vendor!r}]: {problem}"
    return ""


def save_expectations(path: str | Path, doc: Mapping[str, Any]) -> None:
    """Write the document atomically (indented, keys sorted)."""
    from trex_bench.core.io import write_json

    write_json(path, doc)


# -- update --------------------------------------------------------------------------------------------------------
def provenance(root: Path, command: str, reason: str) -> dict[str, Any]:
    """What produced an expectation: command, reason, commit (``-dirty`` with uncommitted changes), versions, CPU."""
    from importlib import metadata

    from trex_bench.core.io import git_commit, versions

    commit = git_commit(root)
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        st = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        )
        commit += "-dirty" if st.returncode == 0 and st.stdout.strip() else ""
    vers = versions()
    for pkg in ("pandas", "scipy", "tensorboard"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            vers[pkg] = metadata.version(pkg)
    from trex_bench.regression.numerics import numerics

    cpu = next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("model name")), platform.machine())
    return {
        "command": command,
        "reason": reason,
        "commit": commit,
        "versions": vers,
        "machine": cpu,
        "numerics": numerics(),
        "updated_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _cpuinfo() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_vendor() -> str:
    """``GenuineIntel``, ``AuthenticAMD``, … (``/proc/cpuinfo``'s ``vendor_id``), or the machine type elsewhere."""
    return next((ln.split(":", 1)[1].strip() for ln in _cpuinfo() if ln.startswith("vendor_id")), platform.machine())


def _band(metric: str, seeds: Sequence[int], samples: Sequence[float]) -> tuple[list[float], str]:
    """mean ± max(3·std, floor) of ``samples`` (ddof 1), clipped to the metric's range; and how, in words."""
    import numpy as np

    floor, lo_lim, hi_lim = BAND_RULES[metric]
    x = np.asarray(samples, dtype=np.float64)
    mean, std = float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0
    half = max(3 * std, floor)
    band = [round(max(mean - half, lo_lim), 6), round(min(mean + half, hi_lim), 6)]
    return band, (
        f"mean {mean:.4g} ± max(3·std {3 * std:.4g}, floor {floor:g}) over seeds "
        f"{','.join(map(str, seeds))}, clipped to [{lo_lim:g}, {hi_lim:g}]"
    )


def update_expectations(
    root: str | Path,
    old: Mapping[str, Any],
    reason: str,
    command: str,
    names: Sequence[str] | None = None,
    band_seeds: Sequence[int] = BAND_SEEDS,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Measure the named checks (bands over ``band_seeds``) and return (new document, keys whose entry changed).

    An entry whose expected value, tolerance and band are unchanged keeps its old provenance; a changed or new one
    records ``reason``, ``command``, commit and versions beside it. Metrics of the re-measured checks that no
    longer exist are dropped (listed as changed).

    Raises:
        RegressionError: an empty reason, or an unknown check name.
    """
    if not reason or not reason.strip():
        raise RegressionError('refusing to update expectations without a reason (--reason "what changed and why")')
    root = Path(root)
    checks = select_checks(names)
    prov = provenance(root, command, reason.strip())
    entries = dict(old.get("metrics", {}))
    changed = []
    for check in checks:
        if progress:
            progress(check.name)
        seeds = (0, *[s for s in band_seeds if s != 0]) if check.banded else (0,)
        try:
            runs = {s: check.measure(root, s) for s in seeds}  # seed 0 is the expectation; all of them set the band
        except CheckSkipped as e:
            raise RegressionError(f"cannot measure {check.name}: {e}") from e
        base = runs[0]
        fresh = {}
        for metric, m in base.items():
            new: dict[str, Any] = {"expected": m.value, "tolerance": m.tolerance, "check": check.description}
            if m.tolerance == "band":
                samples = [float(r[metric].value) for r in runs.values()]
                new["band"], new["band_how"] = _band(metric, seeds, samples)
                new["samples"] = {str(s): v for s, v in zip(runs, samples, strict=True)}
            fresh[f"{check.name}.{metric}"] = new
        for key in [k for k in entries if k.startswith(check.name + ".") and k not in fresh]:
            del entries[key]
            changed.append(key)
        for key, new in fresh.items():
            prev = entries.get(key)
            same = prev is not None and all(prev.get(k) == new.get(k) for k in ("expected", "tolerance", "band"))
            entries[key] = {**new, **{k: prev[k] for k in prov if k in prev}} if same else {**new, **prov}
            if not same:
                changed.append(key)
    doc = {"schema": SCHEMA, "how": HOW, "metrics": dict(sorted(entries.items()))}
    return doc, changed


def record_for_cpu(
    root: str | Path,
    old: Mapping[str, Any],
    reason: str,
    command: str,
    names: Sequence[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Measure the named checks at seed 0 and record this CPU vendor's value of each exact or rel metric that differs
    from the file's ``expected`` under ``by_cpu[<vendor>]`` (bands and other vendors' values untouched); returns (new
    document, keys whose entry changed).

    Raises:
        RegressionError: an empty reason, an unknown check, a metric the file lacks (``update_expectations``
            first), or a ``rel`` metric further than ``VENDOR_REL_LIMIT`` from its expectation.
    """
    if not reason or not reason.strip():
        raise RegressionError('refusing to record values without a reason (--reason "what changed and why")')
    vendor, prov = cpu_vendor(), provenance(Path(root), command, reason.strip())
    entries = {k: dict(v) for k, v in old.get("metrics", {}).items()}
    changed = []
    for check in select_checks(names):
        if progress:
            progress(check.name)
        try:
            base = check.measure(Path(root), 0)
        except CheckSkipped as e:
            raise RegressionError(f"cannot measure {check.name}: {e}") from e
        for metric, m in base.items():
            key = f"{check.name}.{metric}"
            if key not in entries:
                raise RegressionError(f"{key} has no expectation yet: run `trex-bench regression update` first")
            _check_rounding(key, entries[key], m)
            if entries[key]["tolerance"] != "band" and _record(entries[key], check.name, metric, m, vendor, prov):
                changed.append(key)
    return {"schema": SCHEMA, "how": HOW, "metrics": dict(sorted(entries.items()))}, changed


def _check_rounding(key: str, entry: Mapping[str, Any], m: Measured) -> None:
    """Refuse a ``rel`` value too far from the common expectation to be a CPU vendor's rounding."""
    if entry["tolerance"] == "rel" and isinstance(m.value, (int, float)):
        expected, got = float(entry["expected"]), float(m.value)
        if abs(got - expected) > VENDOR_REL_LIMIT * abs(expected) + ABS_FLOOR:
            raise RegressionError(
                f"{key}: {got!r} is further from {expected!r} than a CPU vendor's rounding ({VENDOR_REL_LIMIT:g} "
                "relative); if a change moved it, record it with `trex-bench regression update`"
            )


def _record(entry: dict[str, Any], check: str, metric: str, m: Measured, vendor: str, prov: Mapping[str, Any]) -> bool:
    """Set (or drop, where the common value holds) ``vendor``'s value in ``entry``; whether it changed."""
    by_cpu = dict(entry.get("by_cpu", {}))
    before = by_cpu.get(vendor, {}).get("expected")
    if compare(check, metric, {k: v for k, v in entry.items() if k != "by_cpu"}, m).ok:
        by_cpu.pop(vendor, None)
    else:
        by_cpu[vendor] = {"expected": m.value, **prov}
    entry.pop("by_cpu", None)
    if by_cpu:
        entry["by_cpu"] = by_cpu
    return by_cpu.get(vendor, {}).get("expected") != before
