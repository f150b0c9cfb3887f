#!/usr/bin/env python3
"""Mutation testing over a curated list of single edits (``make test-mutation``; docs/mutation-testing.md).

For each mutation of ``tools/mutations.toml``: copy the repository's tracked files (as they are in the working
tree) into a fresh temporary directory, apply the edit there (``old`` must occur exactly once), run
``python -m pytest -q -x -p no:cacheprovider <its tests>`` in that copy with ``PYTHONPATH`` pointing at it and a
frame cache of its own, and record the verdict:

* ``caught``: the tests failed (pytest exit 1, or 2 when the mutated code broke collection);
* ``survived``: the tests passed (exit 0);
* ``error``: the edit did not apply, the run timed out, or pytest could not run the tests (exit 3, 4, 5, ...).

The working tree is never edited. The pass exits 1 when a mutation survives that the list does not mark
``accepted``, 2 when any mutation ends in ``error`` (a stale list or a broken suite), else 0.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LIST = REPO / "tools" / "mutations.toml"
PYTEST_ARGS = ("-q", "-x", "-p", "no:cacheprovider")
CAUGHT, SURVIVED, ERROR = "caught", "survived", "error"


class EditError(ValueError):
    """A mutation whose ``old`` text does not occur exactly once in its file (or a malformed list entry)."""


@dataclass(frozen=True)
class Mutation:
    """One curated single edit and the tests that should catch it."""

    id: str
    file: str
    old: str
    new: str
    description: str
    tests: tuple[str, ...]
    accepted: str | None = None
    timeout: float | None = None


@dataclass
class Result:
    """What one mutation's run showed."""

    id: str
    file: str
    description: str
    verdict: str
    seconds: float
    exit_code: int | None = None
    detail: str = ""
    accepted: str | None = None
    output_tail: str = field(default="", repr=False)


def load_mutations(path: str | Path) -> list[Mutation]:
    """The ``[[mutation]]`` entries of a TOML file, checked for required fields, types and unique ids.

    Raises:
        EditError: a missing or mistyped field, or a repeated id (naming the entry).
    """
    with open(path, "rb") as f:
        data = tomllib.load(f)
    entries = data.get("mutation")
    if not isinstance(entries, list) or not entries:
        raise EditError(f"{path}: no [[mutation]] entries")
    out: list[Mutation] = []
    seen: set[str] = set()
    for n, e in enumerate(entries):
        name = e.get("id", f"entry {n}")
        for key in ("id", "file", "old", "new", "description"):
            if not isinstance(e.get(key), str):
                raise EditError(f"{path}: mutation {name}: {key!r} missing or not a string")
        if not e["old"]:
            raise EditError(f"{path}: mutation {name}: 'old' is empty")
        tests = e.get("tests")
        if not isinstance(tests, list) or not tests or not all(isinstance(t, str) and t for t in tests):
            raise EditError(f"{path}: mutation {name}: 'tests' must be a non-empty list of pytest paths")
        accepted = e.get("accepted")
        if accepted is not None and not (isinstance(accepted, str) and accepted.strip()):
            raise EditError(f"{path}: mutation {name}: 'accepted' must be a non-empty reason")
        timeout = e.get("timeout")
        if timeout is not None and not (isinstance(timeout, int | float) and timeout > 0):
            raise EditError(f"{path}: mutation {name}: 'timeout' must be a number of seconds > 0")
        unknown = set(e) - {"id", "file", "old", "new", "description", "tests", "accepted", "timeout"}
        if unknown:
            raise EditError(f"{path}: mutation {name}: unknown field(s) {', '.join(sorted(unknown))}")
        if e["id"] in seen:
            raise EditError(f"{path}: mutation id {e['id']!r} is listed twice")
        seen.add(e["id"])
        out.append(Mutation(e["id"], e["file"], e["old"], e["new"], e["description"], tuple(tests), accepted,
                            float(timeout) if timeout is not None else None))
    return out


def apply_edit(text: str, old: str, new: str, where: str = "the file") -> str:
    """``text`` with its single occurrence of ``old`` replaced by ``new``.

    A Python file (``where`` ending in ``.py``) must still compile: a mutant that is a syntax error would read as
    "caught" (pytest's collection error) without testing anything.

    Raises:
        EditError: ``old`` occurs 0 or 2+ times in ``text`` (the message says how many), the edit changes nothing,
            or the mutated Python does not compile.
    """
    count = text.count(old)
    if count != 1:
        raise EditError(f"'old' text occurs {count} times in {where}, not exactly once: {old.strip()[:80]!r}")
    if old == new:
        raise EditError(f"'old' and 'new' are the same text in {where}")
    out = text.replace(old, new, 1)
    if where.endswith(".py"):
        try:
            compile(out, where, "exec")
        except SyntaxError as e:
            raise EditError(f"the mutated {where} does not compile: {e}") from e
    return out


def verdict_from_exit(code: int) -> str:
    """pytest's exit status → verdict: 0 survived; 1 (tests failed) or 2 (collection broke) caught; else error."""
    if code == 0:
        return SURVIVED
    if code in (1, 2):
        return CAUGHT
    return ERROR


def first_failure(output: str) -> str:
    """The first ``FAILED``/``ERROR`` line of pytest's short summary (``-ra``), or "" when it has none."""
    for line in output.splitlines():
        if line.startswith(("FAILED ", "ERROR ")):
            return line.strip()[:200]
    return ""


def tracked_files(repo: Path) -> list[str]:
    """Paths of the files git tracks in ``repo`` that exist in its working tree (a deleted one is skipped)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=repo, capture_output=True, check=True).stdout
    names = [n for n in out.decode().split("\0") if n]
    return [n for n in names if (repo / n).is_file() or (repo / n).is_symlink()]


def copy_tree(repo: Path, files: list[str], dest: Path) -> None:
    """Copy ``files`` (relative to ``repo``) into ``dest``, keeping symlinks as links."""
    for name in files:
        src, dst = repo / name, dest / name
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        else:
            shutil.copy2(src, dst)


def check_list(mutations: list[Mutation], repo: Path) -> list[str]:
    """Problems of the list against ``repo``'s working tree (missing file, ``old`` not exactly once); [] if none."""
    problems = []
    for m in mutations:
        path = repo / m.file
        if not path.is_file():
            problems.append(f"{m.id}: {m.file} does not exist")
            continue
        try:
            apply_edit(path.read_text(encoding="utf-8"), m.old, m.new, m.file)
        except EditError as e:
            problems.append(f"{m.id}: {e}")
    return problems


def _run_pytest(python: str, copy: Path, tests: tuple[str, ...], timeout: float) -> tuple[int | None, str]:
    """Run pytest on ``tests`` inside ``copy``; returns (exit code, or None on timeout; combined output).

    The run gets its own process group (killed whole on timeout), ``PYTHONPATH`` = the copy, and a frame cache
    inside the copy, so a mutant never reads from or writes into the shared ``~/.cache/trex_bench``.
    """
    env = os.environ | {"PYTHONPATH": str(copy), "TREX_BENCH_CACHE": str(copy / ".mutant-cache"),
                        "PYTHONDONTWRITEBYTECODE": "1"}
    cmd = [python, "-m", "pytest", *PYTEST_ARGS, *tests]
    proc = subprocess.Popen(cmd, cwd=copy, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
        return proc.returncode, out
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        return None, out or ""


def run_one(m: Mutation, repo: Path, files: list[str], python: str, timeout: float, baseline: bool = False) -> Result:
    """Copy the tree, apply ``m`` (unless ``baseline``), run its tests there, remove the copy; returns the verdict."""
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix=f"trex-mutant-{m.id}-"))
    limit = m.timeout or timeout

    def result(verdict: str, code: int | None = None, detail: str = "", out: str = "") -> Result:
        return Result(m.id, m.file, m.description, verdict, round(time.perf_counter() - t0, 1), code, detail,
                      m.accepted, out[-4000:])

    try:
        copy_tree(repo, files, tmp)
        if not baseline:
            target = tmp / m.file
            if not target.is_file():
                return result(ERROR, detail=f"{m.file} is not a tracked file")
            try:
                target.write_text(apply_edit(target.read_text(encoding="utf-8"), m.old, m.new, m.file), encoding="utf-8")
            except EditError as e:
                return result(ERROR, detail=str(e))
        code, out = _run_pytest(python, tmp, m.tests, limit)
        if code is None:
            return result(ERROR, None, f"timed out after {limit:g} s", out)
        verdict = verdict_from_exit(code)
        last = next((ln.strip() for ln in reversed(out.splitlines()) if ln.strip()), "")
        detail = first_failure(out) if verdict == CAUGHT else ("" if verdict == SURVIVED else f"pytest exit {code}: {last[:200]}")
        return result(verdict, code, detail, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def summary_line(results: list[Result]) -> str:
    """``N caught, M survived, K errors (P % surviving)``."""
    n = {v: sum(r.verdict == v for r in results) for v in (CAUGHT, SURVIVED, ERROR)}
    pct = 100.0 * n[SURVIVED] / len(results) if results else 0.0
    return f"{n[CAUGHT]} caught, {n[SURVIVED]} survived, {n[ERROR]} errors ({pct:.1f} % surviving)"


def exit_status(results: list[Result]) -> int:
    """2 if any error, else 1 if a survivor is not accepted, else 0."""
    if any(r.verdict == ERROR for r in results):
        return 2
    return 1 if any(r.verdict == SURVIVED and not r.accepted for r in results) else 0


def format_table(results: list[Result]) -> str:
    """A fixed-width table: id, file, description, verdict, seconds (accepted survivors marked)."""
    rows = [("id", "file", "description", "verdict", "seconds")]
    for r in results:
        verdict = r.verdict + (" (accepted)" if r.verdict == SURVIVED and r.accepted else "")
        desc = r.description if len(r.description) <= 70 else r.description[:69] + "…"
        rows.append((r.id, r.file.removeprefix("trex_bench/"), desc, verdict, f"{r.seconds:.1f}"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(c.ljust(w) if i < 4 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def select(mutations: list[Mutation], only: str | None) -> list[Mutation]:
    """The mutations named by ``--only ID[,ID]`` (all when None), in list order.

    Raises:
        EditError: an id that the list does not hold.
    """
    if not only:
        return mutations
    wanted = [s.strip() for s in only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - {m.id for m in mutations})
    if unknown:
        raise EditError(f"--only names unknown mutation id(s): {', '.join(unknown)}")
    return [m for m in mutations if m.id in wanted]


def main(argv: list[str] | None = None) -> int:
    """Command line: run the selected mutations, print the table and summary, write ``--json``."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--list", default=str(DEFAULT_LIST), help="the mutations file (default: tools/mutations.toml)")
    ap.add_argument("--only", metavar="ID[,ID]", help="run only these mutation ids")
    ap.add_argument("--jobs", type=int, default=1, help="mutations run at once (default 1)")
    ap.add_argument("--json", metavar="OUT", help="also write the results as JSON")
    ap.add_argument("--timeout", type=float, default=1200.0, help="seconds per mutation unless it sets its own")
    ap.add_argument("--python", default=sys.executable, help="the interpreter that runs pytest")
    ap.add_argument("--check", action="store_true", help="only check that every edit applies exactly once; run nothing")
    ap.add_argument("--baseline", action="store_true",
                    help="first run the selected mutations' tests on an unmutated copy and stop if they fail")
    args = ap.parse_args(argv)
    if args.jobs < 1:
        ap.error("--jobs must be >= 1")
    try:
        mutations = select(load_mutations(args.list), args.only)
    except EditError as e:
        print(f"mutate: {e}", file=sys.stderr)
        return 2
    problems = check_list(mutations, REPO)
    if args.check:
        for p in problems:
            print(f"mutate: {p}", file=sys.stderr)
        print(f"{len(mutations) - len(problems)} of {len(mutations)} edits apply exactly once")
        return 2 if problems else 0
    files = tracked_files(REPO)
    if args.baseline:
        tests = tuple(dict.fromkeys(t for m in mutations for t in m.tests))
        base = run_one(Mutation("baseline", "", "", "", "unmutated tree", tests), REPO, files, args.python,
                       args.timeout * 2, baseline=True)
        print(f"baseline: {base.verdict.replace(SURVIVED, 'passed')} in {base.seconds:.1f} s {base.detail}".rstrip())
        if base.verdict != SURVIVED:
            print(base.output_tail, file=sys.stderr)
            return 2
    print(f"{len(mutations)} mutations, {args.jobs} at a time", flush=True)

    def one(m: Mutation) -> Result:
        r = run_one(m, REPO, files, args.python, args.timeout)
        print(f"  {r.id}: {r.verdict} ({r.seconds:.1f} s) {r.detail}".rstrip(), flush=True)
        return r

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(one, mutations))
    print()
    print(format_table(results))
    for r in results:
        if r.verdict == ERROR:
            print(f"error {r.id}: {r.detail}")
        elif r.verdict == SURVIVED:
            print(f"survived {r.id}: " + (f"accepted: {r.accepted}" if r.accepted else "NOT accepted: add a test or "
                                          "an `accepted` reason"))
        elif r.accepted:
            print(f"note {r.id}: caught, but marked accepted: drop its `accepted` reason")
    print(summary_line(results))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary_line(results),
                                               "results": [asdict(r) for r in results]}, indent=2) + "\n")
    return exit_status(results)


if __name__ == "__main__":
    sys.exit(main())
