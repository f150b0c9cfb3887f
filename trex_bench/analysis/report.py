"""``trex-bench report``: one static HTML page of everything in ``results/`` (no server, relative links only).

The page holds the leaderboard by game with the methods side by side (best and average demo beside them, a cell
above the average demo marked, one above the best demo flagged), the aggregate statistics (``stats.py``), the
papers' tables beside ours (``results/tables/*.md``), the extrapolation table with its Figure-3 plots, the
reward-fidelity scatters and D-REX degradation curves found under ``results/``, the learning curves
(``results/plots/curves``, drawn from the exported curves in ``results/curves``; with ``--runs`` drawn afresh with
those runs' TensorBoard logs too), and the package versions the rows were made with against the lock file. Rows of
replaced protocols (``protocols``) sit in collapsed sections. Every figure names the command that makes it and the
commit it came from: for a committed PNG the commit that last changed it, for a figure drawn here the commit the
report is built at.

The page is a Jinja2 template (``templates/report.html.j2``) rendered with autoescape on: every string from the results
is escaped; the generated markdown tables are rendered with the ``Markdown`` package with raw HTML escaped too
(``markdown_to_html``: the only HTML the template inserts unescaped), so a ``<script>`` in a CSV cell stays text.
Committed PNGs are referenced in place (``../plots/...``), not copied: the report stays a few tens of kB and works from
the file system or any static host that serves ``results/``.
"""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from trex_bench.analysis.protocols import EARLIER_NOTE, split_protocols
from trex_bench.analysis.stats import DEFAULT_METHODS, check_bootstrap, horizon, protocol_stats, tables_markdown
from trex_bench.core.errors import ConfigError, DataError
from trex_bench.core.io import atomic_write, git_commit
from trex_bench.core.lockfile import read_lock
from trex_bench.evaluation.leaderboard import read_leaderboard
from trex_bench.evaluation.summary import score_cell, summarize_rows, variants

__all__ = ["Report", "build_report", "markdown_to_html"]

PAPER_TABLES = ("trex", "mturk", "drex")
LOCKED = ("torch", "stable-baselines3", "ale-py", "gymnasium", "numpy")
EARLIER_HEADING = "## Earlier protocols"
REPORT_TITLE = "<title>trex_bench report</title>"  # as in templates/report.html.j2: tells a report folder


@dataclass(frozen=True)
class Report:
    """What ``build_report`` wrote: the page, the figures it shows, and what it could not show and why."""

    path: Path
    figures: tuple[Path, ...]
    notes: tuple[str, ...]


def markdown_to_html(md: str, level_offset: int = 1) -> str:
    """Markdown (headings, pipe tables, lists, paragraphs) as HTML, headings moved down ``level_offset`` levels. Raw
    HTML in ``md`` is escaped, never passed through, so the template may insert the result as it is (``|safe``).

    >>> html = (markdown_to_html("# T\\n\\n| a | b |\\n|---|---|\\n| 1 | <script>x</script> |")).replace("\\n", "")
    >>> html.startswith("<h2>T</h2><table><thead><tr><th>a</th>"), "<td>&lt;script&gt;x&lt;/script&gt;</td>" in html
    (True, True)
    """
    import markdown

    shifted = re.sub(r"(?m)^(#{1,6})(?=\s)", lambda m: "#" * min(len(m.group(1)) + level_offset, 6), md)
    converter = markdown.Markdown(extensions=["tables"])
    converter.preprocessors.deregister("html_block")  # raw HTML blocks and inline tags become text
    converter.inlinePatterns.deregister("html")
    return re.sub(r'(href|src)="([^"]*)"', _safe_url, converter.convert(shifted))


def _safe_url(m: re.Match[str]) -> str:
    """A link or image of a generated page as it is when it is a web address, an anchor or a relative path; else
    (``javascript:``, ``data:``: Python-Markdown passes any scheme, and a leaderboard cell can hold a link) ``#``.

    >>> attr = r'(href|src)="([^"]*)"'
    >>> _safe_url(re.match(attr, 'href="javascript:alert(1)"')), _safe_url(re.match(attr, 'src="a/b.png"'))
    ('href="#"', 'src="a/b.png"')
    """
    url = re.sub(r"[\x00-\x20]", "", html.unescape(m.group(2)))
    return m.group(0) if re.match(r"(https?:|#|[^:]*$)", url, re.IGNORECASE) else f'{m.group(1)}="#"'


def _markdown_parts(md: str, level_offset: int) -> list[dict[str, Any]]:
    """A generated page as template parts: its current-protocol part, and its "Earlier protocols" section (if any)
    as a collapsed one."""
    current, _, earlier = md.partition(EARLIER_HEADING)
    parts: list[dict[str, Any]] = [{"html": markdown_to_html(current, level_offset)}]
    if earlier:
        body, sep, footer = earlier.partition("\nPublished:")  # the papers' tables end with their provenance
        parts.append({"earlier": markdown_to_html(body, level_offset + 1)})
        if sep:
            parts.append({"html": markdown_to_html("Published:" + footer, level_offset)})
    return parts


def _last_commit(path: Path) -> str:
    """The short hash of the commit that last changed ``path``, ``uncommitted`` or ``unknown`` (no git)."""
    try:
        r = subprocess.run(
            ["git", "log", "-1", "--format=%h", "--", path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if r.returncode != 0:
        return "unknown"
    return r.stdout.strip() or "uncommitted"


def _figure(path: Path, out_dir: Path, caption: str, command: str, commit: str) -> dict[str, str]:
    return {
        "path": str(path),
        "src": Path(os.path.relpath(path, out_dir)).as_posix(),
        "caption": caption,
        "command": command,
        "commit": commit,
    }


def _version_sets(lb: pd.DataFrame) -> dict[str, str]:
    """Each distinct ``versions`` cell → a label A, B, … in order of first use."""
    labels: dict[str, str] = {}
    for v in lb["versions"]:
        if v not in labels:
            labels[v] = chr(ord("A") + len(labels)) if len(labels) < 26 else f"V{len(labels)}"
    return labels


def _num(v: float) -> str:
    """A demo return as the tables write it: 3,115 · 2,710 · 5.83 · -19.5."""
    return f"{v:,.0f}" if abs(v) >= 1000 or float(v).is_integer() else f"{v:.3g}"


def _cell(r: pd.Series, latest: pd.DataFrame, labels: dict[str, str]) -> dict[str, str]:
    """One leaderboard cell: the score, best of seeds, the version sets of its rows, and how it compares."""
    same = latest
    for col in ("game", "variant", "budget", "best_demo", "avg_demo"):
        same = same[same[col] == r[col]]
    steps = r["schedule_steps"]
    same = same[same["schedule_steps"].isna() if pd.isna(steps) else same["schedule_steps"] == steps]
    cls = "beats" if r["mean"] > r["best_demo"] else ("above-avg" if r["mean"] > r["avg_demo"] else "")
    return {
        "score": score_cell(r["mean"], r["std"], r["seeds"], r["spread"], r["games"]),
        "best": f"best of seeds {r['best']:.1f}; " if r["seeds"] > 1 else "",
        "versions": ",".join(sorted({labels[x] for x in same["versions"]})),
        "cls": cls,
        "flag": " ★ beats best demo" if cls == "beats" else (" ◆" if cls == "above-avg" else ""),
    }


def _game_tables(rows: pd.DataFrame, games: Sequence[str], methods: Sequence[str], labels: dict[str, str]) -> list:
    """Per game: rows = (what differs ×) budget × horizon × demo set, columns = method variants."""
    rows = rows[rows["method"].isin(methods)].copy()
    if "why" not in rows.columns:
        rows["why"] = ""
    rows["variant"] = variants(rows)
    by = ("game", "budget", "variant", "why")
    summary = summarize_rows(rows, by)
    latest = rows.drop_duplicates(subset=[*by, "best_demo", "avg_demo", "schedule_steps", "seed"], keep="last")
    order = {m: i for i, m in enumerate(methods)}
    tables = []
    for game in games:
        s = summary[summary["game"] == game]
        if s.empty:
            continue
        names = sorted(set(s["variant"]), key=lambda v: (order.get(v.split(" ")[0], 99), v))
        body = []
        for (why, budget, steps, best, avg), grp in s.groupby(
            ["why", "budget", "schedule_steps", "best_demo", "avg_demo"], dropna=False, sort=True
        ):
            hits = {v: grp[grp["variant"] == v] for v in names}
            cells = [None if h.empty else _cell(h.iloc[0], latest, labels) for h in hits.values()]
            body.append(
                {
                    "why": why,
                    "budget": budget,
                    "horizon": horizon(steps),
                    "best": f"{best:g}",
                    "avg": f"{avg:.3g}",
                    "cells": cells,
                }
            )
        tables.append({"game": game, "variants": names, "rows": body, "why": bool((s["why"] != "").any())})
    return tables


def _versions(lb: pd.DataFrame, lock: dict[str, str] | None) -> dict[str, Any]:
    """The version sets of the rows against the lock file: what the versions table shows."""
    sets = []
    for cell, label in _version_sets(lb).items():
        try:
            v = json.loads(cell) if cell else {}
        except json.JSONDecodeError:
            v = {}
        cells = []
        for p in LOCKED:
            ours = v.get(p, "—")
            differs = lock is not None and p in lock and ours.split("+")[0] != lock[p].split("+")[0]
            cells.append({"version": ours, "differs": differs})
        sets.append({"label": label, "rows": int((lb["versions"] == cell).sum()), "cells": cells})
    return {"packages": LOCKED, "sets": sets, "lock": [lock.get(p, "—") for p in LOCKED] if lock else None}


def _paper_parts(results: Path, out: Path, notes: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for kind in PAPER_TABLES:
        md = results / "tables" / f"{kind}.md"
        if md.is_file():
            parts += _markdown_parts(md.read_text(encoding="utf-8"), 2)
            link = Path(os.path.relpath(md, out)).as_posix()
            parts.append({"link": link, "text": f"{kind}.md", "command": f"trex-bench tables {kind}"})
        else:
            notes.append(f"{md} is missing (make tables)")
    return parts


def _extrapolation_parts(results: Path, out: Path, notes: list[str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    ext_md = results / "tables" / "extrapolation.md"
    if ext_md.is_file():
        parts += _markdown_parts(ext_md.read_text(encoding="utf-8"), 2)
    else:
        notes.append(f"{ext_md} is missing (trex-bench extrapolation)")
    for png in sorted((results / "plots" / "extrapolation").glob("*/*.png")):
        game = png.parent.name.split("-")[0]
        cmd = f"trex-bench extrapolation {game} --seeds 0-2 --budget quick --reference ../shared/reference"
        parts.append(_figure(png, out, f"Figure 3: {png.parent.name}, {png.stem}", cmd, _last_commit(png)))
    return parts


def _fidelity_parts(results: Path, out: Path) -> list[dict[str, Any]]:
    parts = [
        _figure(png, out, f"reward fidelity: {png.relative_to(results)}", "trex-bench reward score", _last_commit(png))
        for png in sorted(results.rglob("fidelity*.png"))
    ]
    parts += [
        _figure(png, out, f"D-REX degradation: {png.stem}", "trex-bench demos degradation", _last_commit(png))
        for png in sorted(results.rglob("*degradation*.png"))
    ]
    return parts or [{"text": "none under results/"}]


def _curve_parts(results: Path, out: Path, runs: Path | None, context: dict[str, Any]) -> list[dict[str, Any]]:
    """The learning-curve figures: the committed ones (``trex-bench curves plot``), or, with ``runs``, drawn here from
    the exported curves and those runs' TensorBoard logs."""
    from trex_bench.analysis.curve_plots import plot_curves
    from trex_bench.analysis.curves import collect_curves, load_curves, load_references

    notes: list[str] = context["notes"]
    if runs is None:
        pngs = sorted((results / "plots" / "curves").glob("*.png"))
        parts = [_figure(p, out, f"learning curves: {p.stem}", "trex-bench curves plot", _last_commit(p)) for p in pngs]
        return parts or [{"text": "no learning curves under results/plots/curves (trex-bench curves plot)"}]
    exported = load_curves(results / "curves")
    live, skipped = collect_curves(runs)
    notes += [f"learning curve skipped: run {name}: {why}" for name, why in skipped]
    fresh = {c.run for c in live}
    curves = [c for c in exported if c.run not in fresh] + live
    drawn = plot_curves(curves, out / "curves", load_references(results / "curves" / "rlzoo3"))
    command = f"{context['command']} (from {Path(runs).name}/*/agent/tb and results/curves)"
    parts = [_figure(p, out, f"learning curves: {p.stem}", command, context["short"]) for p in drawn]
    return parts or [{"text": "no run with a TensorBoard log and no exported curve"}]


def _template() -> Any:
    import jinja2

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("trex_bench.analysis", "templates"),
        autoescape=True,  # every string from the results is escaped; only markdown_to_html's output goes in |safe
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2")


def _check_out(out: Path) -> None:
    """A one-line error, before anything is written, where ``out`` cannot be a folder, or holds anything but a report
    written before (its ``index.html``, with the template's title, ``curves/`` and screenshot are replaced: ``--out
    docs`` replaced ``docs/index.html``)."""
    for p in (out, *out.parents):
        if p.exists():
            if not p.is_dir():
                raise ConfigError(f"the report folder {out}: {p} is a file, not a folder")
            break
    index = out / "index.html"
    if out.is_dir() and any(not c.name.startswith(".") for c in out.iterdir()):
        if not (index.is_file() and REPORT_TITLE in index.read_text(encoding="utf-8", errors="replace")[:4096]):
            raise ConfigError(f"the report folder {out} holds other files, not a report; choose a new or empty folder")


def build_report(
    results: str | Path,
    out: str | Path,
    runs: str | Path | None = None,
    games: Sequence[str] | None = None,
    methods: Sequence[str] = DEFAULT_METHODS,
    reps: int = 2000,
    command: str = "trex-bench report",
    lock: str | Path | None = None,
) -> Report:
    """Write ``out/index.html`` (and ``out/curves/*.png`` when ``runs`` is given) from a ``results/`` folder.

    Args:
        results: the results folder (``leaderboard.csv``, ``tables/``, ``plots/``, ``curves/``).
        out: the report folder.
        runs: a folder of run folders whose learning curves are drawn afresh, or None (the committed figures).
        games: the games to show (default: every game with rows); one without rows is named on the page.
        methods: the methods to show; one without rows is named on the page.
        reps: bootstrap resamples of the aggregate statistics.
        command: the command line, printed on the page.
        lock: the lock file whose versions the rows are compared with (default: ``results/../requirements.lock``
            when it exists).

    Raises:
        ValueError: ``results`` has no ``leaderboard.csv``, ``reps`` is out of range, ``out`` cannot be a folder,
            or the lock file is corrupt. Nothing is written then.
    """
    results, out = Path(results), Path(out)
    csv = results / "leaderboard.csv"
    if not csv.is_file():
        raise DataError(f"{csv} does not exist: the report is built from a results folder with a leaderboard")
    check_bootstrap(reps, 0)
    _check_out(out)
    if runs is not None and not Path(runs).is_dir():
        raise ConfigError(f"{runs} is not a folder of run folders")
    lock_path = Path(lock) if lock is not None else results.parent / "requirements.lock"
    locked = read_lock(lock_path) if lock is not None or lock_path.is_file() else None
    lb = read_leaderboard(csv)
    commit = git_commit(results)
    context = _context(lb, results, out, games, methods, reps, locked)
    context |= {"command": command, "commit": commit[:7] if commit != "unknown" else commit}
    context["short"] = context["commit"]
    out.mkdir(parents=True, exist_ok=True)
    curves = _curve_parts(results, out, Path(runs) if runs is not None else None, context)
    next(s for s in context["sections"] if s["id"] == "curves")["parts"] = curves
    context["sections"][-1]["title"] = f"What is missing ({len(context['notes'])})"
    page = _template().render(**context)
    path = out / "index.html"
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"), suffix=".html")
    figures = tuple(Path(p["path"]) for s in context["sections"] for p in s.get("parts", []) if "src" in p)
    return Report(path, figures, tuple(context["notes"]))


def _context(
    lb: pd.DataFrame,
    results: Path,
    out: Path,
    games: Sequence[str] | None,
    methods: Sequence[str],
    reps: int,
    locked: dict[str, str] | None,
) -> dict[str, Any]:
    """Everything the template shows but the learning curves (drawn once ``out`` exists)."""
    notes: list[str] = []
    game_list = list(games) if games else sorted(set(lb["game"]))
    notes += [f"no leaderboard rows for game {g!r}" for g in game_list if not (lb["game"] == g).any()]
    notes += [f"no leaderboard rows for method {m!r}" for m in methods if not (lb["method"] == m).any()]
    split, labels = split_protocols(lb), _version_sets(lb)
    current, earlier = protocol_stats(lb, methods=methods, reps=reps)
    notes += [n for n in current.notes if not n.startswith("no leaderboard rows for method")]
    stats = [{"html": markdown_to_html("\n".join(tables_markdown(current, "##")), 1)}]
    if not earlier.aggregates.empty:
        stats.append({"earlier": markdown_to_html("\n".join(tables_markdown(earlier, "###")), 1)})
    sections = [
        {"id": "leaderboard", "title": "Leaderboard by game"},
        {"id": "stats", "title": "Aggregate statistics", "parts": stats},
        {"id": "papers", "title": "The papers' tables beside ours", "parts": _paper_parts(results, out, notes)},
        {
            "id": "extrapolation",
            "title": "Reward extrapolation (T-REX Figure 3)",
            "parts": _extrapolation_parts(results, out, notes),
        },
        {"id": "fidelity", "title": "Reward fidelity and D-REX degradation", "parts": _fidelity_parts(results, out)},
        {"id": "curves", "title": "Learning curves (true score vs agent steps)", "parts": []},
        {"id": "versions", "title": "Package versions of the rows"},
        {"id": "notes", "title": "What is missing"},
    ]
    return {
        "sections": sections,
        "leaderboard": _game_tables(split.current, game_list, methods, labels),
        "earlier_leaderboard": _game_tables(split.earlier, game_list, methods, labels),
        "earlier_note": EARLIER_NOTE,
        "versions": _versions(lb, locked),
        "notes": notes,
        "n_rows": len(lb),
        "leaderboard_href": Path(os.path.relpath(results / "leaderboard.csv", out)).as_posix(),
    }
