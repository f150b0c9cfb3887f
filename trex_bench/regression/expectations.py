"""Expectations of the regression checks: ``results/regression.json``, comparison with a run, and refreshing it.

The file maps each metric ``<check>.<metric>`` to its expected value, its tolerance (``exact``, ``rel`` or ``band``)
and what produced it (command, reason, commit, versions, machine). ``compare_all`` judges a run of
``trex_bench.regression.checks.run_checks`` against it; ``update_expectations`` re-measures checks on purpose, with a
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
]

SCHEMA = 1
REL_TOL, ABS_FLOOR = 1e-5, 1e-9
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
    "('machine' says where each was recorded); a torch build may move them ('versions'). A check whose input lies "
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


def compare(check: str, metric: str, entry: Mapping[str, Any] | None, got: Measured | None) -> Result:
    """One metric against its expectation; a missing expectation or measurement fails and says which."""
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


def compare_all(expectations: Mapping[str, Any], measured: Mapping[str, Mapping[str, Measured]]) -> list[Result]:
    """Every metric of the measured checks, and every expected metric of those checks that was not measured."""
    entries = expectations.get("metrics", {})
    out = []
    for check, values in measured.items():
        keys = list(values) + [
            k[len(check) + 1 :] for k in entries if k.startswith(check + ".") and k[len(check) + 1 :] not in values
        ]
        out += [compare(check, m, entries.get(f"{check}.{m}"), values.get(m)) for m in keys]
    return out


def load_expectations(path: str | Path) -> dict[str, Any]:
    """Read ``regression.json``; an absent file is no expectations (every metric then fails as new)."""
    path = Path(path)
    if not path.exists():
        return {"schema": SCHEMA, "metrics": {}}
    doc = json.loads(path.read_text())
    if doc.get("schema") != SCHEMA:
        raise RegressionError(f"{path}: schema {doc.get('schema')!r}, this trex_bench reads {SCHEMA}")
    return doc


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
