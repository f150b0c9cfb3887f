"""``trex-bench report``: one static HTML page of everything in ``results/`` (no server, relative links only).

The page holds the leaderboard by game with the methods side by side (best and average demo beside them, a cell
above the average demo marked, one above the best demo flagged), the aggregate statistics (``stats.py``), the
papers' tables beside ours (``results/tables/*.md``), the extrapolation table with its Figure-3 plots, the
reward-fidelity scatters and D-REX degradation curves found under ``results/``, learning curves from a folder of
runs (``curves.py``; the committed ``results/`` holds no run folders), and the package versions the rows were made
with against the lock file. Every figure names the command that makes it and the commit it came from: for a
committed PNG the commit that last changed it, for a figure drawn here the commit the report is built at.

Committed PNGs are referenced in place (``../plots/...``), not copied: the report stays a few tens of kB and works
from the file system or any static host that serves ``results/``.
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

import pandas as pd

from trex_bench.analysis.curves import collect_curves, plot_curves
from trex_bench.analysis.stats import DEFAULT_METHODS, aggregate_stats, horizon, variant
from trex_bench.analysis.stats import to_markdown as stats_markdown
from trex_bench.core.errors import DataError
from trex_bench.core.io import atomic_write, git_commit
from trex_bench.core.lockfile import read_lock
from trex_bench.evaluation.leaderboard import read_leaderboard, summarize_rows

__all__ = ["Report", "build_report", "markdown_to_html"]

PAPER_TABLES = ("trex", "mturk", "drex")
LOCKED = ("torch", "stable-baselines3", "ale-py", "gymnasium", "numpy")


@dataclass(frozen=True)
class Report:
    """What ``build_report`` wrote: the page, the figures it shows, and what it could not show and why."""

    path: Path
    figures: tuple[Path, ...]
    notes: tuple[str, ...]


def _inline(text: str) -> str:
    """Escape, then `code` and **bold** (what our generated markdown uses)."""
    t = html.escape(text, quote=False)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", t)


def markdown_to_html(md: str, level_offset: int = 1) -> str:
    """The subset of markdown our tables use: headings, pipe tables, ``- `` lists and paragraphs.

    >>> markdown_to_html("# T\\n\\n| a | b |\\n|---|---|\\n| 1 | `x` |") == (
    ...     "<h2>T</h2>\\n<table><thead><tr><th>a</th><th>b</th></tr></thead>"
    ...     "<tbody><tr><td>1</td><td><code>x</code></td></tr></tbody></table>"
    ... )
    True
    """
    out: list[str] = []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        if not line:
            i += 1
        elif m := re.match(r"(#+)\s+(.*)", line):
            level = min(len(m.group(1)) + level_offset, 6)
            out.append(f"<h{level}>{_inline(m.group(2))}</h{level}>")
            i += 1
        elif line.startswith("|"):
            rows = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                rows.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in rows[1:] if not all(re.fullmatch(r":?-+:?", c) for c in r)]
            head = "".join(f"<th>{_inline(c)}</th>" for c in rows[0])
            cells = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{cells}</tbody></table>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].strip().startswith("- "):
                items.append(f"<li>{_inline(lines[i].strip()[2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not re.match(r"[#|]|- ", lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            out.append(f"<p>{_inline(' '.join(para))}</p>")
    return "\n".join(out)


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


def _figure(path: Path, out_dir: Path, caption: str, command: str, commit: str) -> str:
    src = Path(os.path.relpath(path, out_dir)).as_posix()
    return (
        f'<figure><a href="{html.escape(src)}"><img src="{html.escape(src)}" alt="{html.escape(caption)}"></a>'
        f"<figcaption>{html.escape(caption)}<br><span class=prov>made by <code>{html.escape(command)}</code>, "
        f"commit <code>{html.escape(commit)}</code></span></figcaption></figure>"
    )


def _version_sets(lb: pd.DataFrame) -> dict[str, str]:
    """Each distinct ``versions`` cell → a label A, B, … in order of first use."""
    labels: dict[str, str] = {}
    for v in lb["versions"]:
        if v not in labels:
            labels[v] = chr(ord("A") + len(labels)) if len(labels) < 26 else f"V{len(labels)}"
    return labels


def _leaderboard_html(lb: pd.DataFrame, games: Sequence[str], methods: Sequence[str], notes: list[str]) -> str:
    """One table per game: rows = budget × horizon × demo set, columns = method variants, mean ± std (seeds)."""
    rows = lb[lb["method"].isin(methods)].copy()
    rows["variant"] = [variant(m, t) for m, t in zip(rows["method"], rows["reward_transform"].fillna(""), strict=True)]
    labels = _version_sets(lb)
    by = ("game", "budget", "variant")
    summary = summarize_rows(rows, by)
    latest = rows.drop_duplicates(subset=[*by, "best_demo", "avg_demo", "schedule_steps", "seed"], keep="last")
    order = {m: i for i, m in enumerate(methods)}
    parts = []
    for game in games:
        s = summary[summary["game"] == game]
        if s.empty:
            notes.append(f"no leaderboard rows for game {game!r}")
            continue
        variants = sorted(set(s["variant"]), key=lambda v: (order.get(v.split(" ")[0], 99), v))
        head = "".join(f"<th>{html.escape(v)}</th>" for v in variants)
        body = []
        keys = ["budget", "schedule_steps", "best_demo", "avg_demo"]
        for key, grp in s.groupby(keys, dropna=False, sort=True):
            budget, steps, best, avg = key
            cells = []
            for v in variants:
                hit = grp[grp["variant"] == v]
                if hit.empty:
                    cells.append("<td class=empty>—</td>")
                    continue
                r = hit.iloc[0]
                same = latest[
                    (latest["game"] == game)
                    & (latest["variant"] == v)
                    & (latest["budget"] == budget)
                    & (latest["best_demo"] == best)
                    & (latest["avg_demo"] == avg)
                    & (latest["schedule_steps"].isna() if pd.isna(steps) else latest["schedule_steps"] == steps)
                ]
                vs = ",".join(sorted({labels[x] for x in same["versions"]}))
                cls = "beats" if r["mean"] > best else ("above-avg" if r["mean"] > avg else "")
                flag = " ★ beats best demo" if cls == "beats" else (" ◆" if cls == "above-avg" else "")
                cells.append(
                    f"<td class='{cls}'>{r['mean']:.1f} ± {r['std']:.1f} <small>({int(r['seeds'])} seed"
                    f"{'s' if r['seeds'] != 1 else ''}, best {r['best']:.1f}; versions {vs}){flag}</small></td>"
                )
            body.append(
                f"<tr><td>{html.escape(str(budget))}</td><td>{html.escape(horizon(steps))}</td>"
                f"<td class=demo>{best:g}</td><td class=demo>{avg:.3g}</td>{''.join(cells)}</tr>"
            )
        parts.append(
            f"<h3>{html.escape(game)}</h3><table><thead><tr><th>budget</th><th>schedule horizon</th>"
            f"<th>best demo</th><th>average demo</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
        )
    for m in methods:
        if not (lb["method"] == m).any():
            notes.append(f"no leaderboard rows for method {m!r}")
    return "\n".join(parts)


def _versions_html(lb: pd.DataFrame, lock: dict[str, str] | None) -> str:
    labels = _version_sets(lb)
    out = ["<table><thead><tr><th>set</th><th>rows</th>"]
    out += [f"<th>{p}</th>" for p in LOCKED] + ["</tr></thead><tbody>"]
    for cell, label in labels.items():
        try:
            v = json.loads(cell) if cell else {}
        except json.JSONDecodeError:
            v = {}
        n = int((lb["versions"] == cell).sum())
        tds = []
        for p in LOCKED:
            ours = v.get(p, "—")
            differs = lock is not None and p in lock and ours.split("+")[0] != lock[p].split("+")[0]
            tds.append(f"<td{' class=differs' if differs else ''}>{html.escape(ours)}</td>")
        out.append(f"<tr><td>{label}</td><td>{n}</td>{''.join(tds)}</tr>")
    if lock is not None:
        tds = "".join(f"<td>{html.escape(lock.get(p, '—'))}</td>" for p in LOCKED)
        out.append(f"<tr class=lock><td>requirements.lock</td><td></td>{tds}</tr>")
    out.append("</tbody></table>")
    warn = (
        f"<p class=warn>The rows come from {len(labels)} different package version sets: compare a row only with "
        "rows of the same set (the set is named in each leaderboard cell; a version that differs from the lock file "
        "is highlighted).</p>"
        if len(labels) > 1
        else "<p>All rows come from one package version set.</p>"
    )
    return warn + "".join(out)


# The page's only script: after load, the browser itself counts images that did not decode (``browser.py`` reads
# ``data-broken-images`` from the DOM chromium dumps) and logs each as a console error.
_IMAGE_CHECK = (
    'addEventListener("load",()=>{const b=[...document.images].filter(i=>!i.complete||i.naturalWidth===0);'
    "document.body.dataset.images=document.images.length;document.body.dataset.brokenImages=b.length;"
    'b.forEach(i=>console.error("broken image: "+i.getAttribute("src")));});'
)

_CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5em auto;max-width:1400px;padding:0 1em;color:#222;background:#fff}
table{border-collapse:collapse;margin:.6em 0 1.2em;font-size:13px}th,td{border:1px solid #ccc;padding:3px 7px}
th{background:#eef2f7;text-align:left}td.beats{background:#c8f0c8;font-weight:bold}td.above-avg{background:#eef9e0}
td.demo{background:#fff6dd}td.empty{color:#aaa}td.differs{background:#ffd9d9}tr.lock td{font-weight:bold}
figure{display:inline-block;margin:.4em;vertical-align:top;width:300px}img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:12px}.prov{color:#555}.warn{background:#fff0d0;padding:.4em}nav a{margin-right:1em}
code{background:#f4f4f4;padding:0 2px}
"""


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
        results: the results folder (``leaderboard.csv``, ``tables/``, ``plots/``, ``device/``).
        out: the report folder.
        runs: a folder of run folders for learning curves, or None (the page says where curves come from).
        games: the games to show (default: every game with rows); one without rows is named on the page.
        methods: the methods to show; one without rows is named on the page.
        reps: bootstrap resamples of the aggregate statistics.
        command: the command line, printed on the page.
        lock: the lock file whose versions the rows are compared with (default: ``results/../requirements.lock``
            when it exists).

    Raises:
        ValueError: ``results`` has no ``leaderboard.csv``, or the lock file is corrupt.
    """
    results, out = Path(results), Path(out)
    csv = results / "leaderboard.csv"
    if not csv.is_file():
        raise DataError(f"{csv} does not exist: the report is built from a results folder with a leaderboard")
    lock_path = Path(lock) if lock is not None else results.parent / "requirements.lock"
    locked = read_lock(lock_path) if lock is not None or lock_path.is_file() else None
    lb = read_leaderboard(csv)
    out.mkdir(parents=True, exist_ok=True)
    commit = git_commit(results)
    short = commit[:7] if commit != "unknown" else commit
    notes: list[str] = []
    figures: list[Path] = []
    game_list = list(games) if games else sorted(set(lb["game"]))

    sections = [("leaderboard", "Leaderboard by game", _leaderboard_html(lb, game_list, methods, notes))]
    stats = aggregate_stats(lb, methods=methods, reps=reps)
    notes += [n for n in stats.notes if not n.startswith("no leaderboard rows for method")]
    sections.append(("stats", "Aggregate statistics", markdown_to_html(stats_markdown(stats, str(csv)), 2)))

    papers = []
    for kind in PAPER_TABLES:
        md = results / "tables" / f"{kind}.md"
        if md.is_file():
            papers.append(markdown_to_html(md.read_text(encoding="utf-8"), 2))
            papers.append(
                f'<p><a href="{os.path.relpath(md, out)}">{kind}.md</a> (made by `trex-bench tables {kind}`)</p>'
            )
        else:
            notes.append(f"{md} is missing (make tables)")
    sections.append(("papers", "The papers' tables beside ours", "\n".join(papers)))

    extra = []
    ext_md = results / "tables" / "extrapolation.md"
    if ext_md.is_file():
        extra.append(markdown_to_html(ext_md.read_text(encoding="utf-8"), 2))
    else:
        notes.append(f"{ext_md} is missing (trex-bench extrapolation)")
    for png in sorted((results / "plots" / "extrapolation").glob("*/*.png")):
        game = png.parent.name.split("-")[0]
        cmd = f"trex-bench extrapolation {game} --seeds 0-2 --budget quick --reference ../shared/reference"
        figures.append(png)
        extra.append(_figure(png, out, f"Figure 3: {png.parent.name}, {png.stem}", cmd, _last_commit(png)))
    sections.append(("extrapolation", "Reward extrapolation (T-REX Figure 3)", "\n".join(extra)))

    fid = []
    for png in sorted(results.rglob("fidelity*.png")):
        figures.append(png)
        fid.append(
            _figure(
                png,
                out,
                f"reward fidelity: {png.relative_to(results)}",
                "trex-bench reward score (pipeline fidelity stage)",
                _last_commit(png),
            )
        )
    for png in sorted(results.rglob("*degradation*.png")):
        figures.append(png)
        fid.append(
            _figure(png, out, f"D-REX degradation: {png.stem}", "trex-bench demos degradation", _last_commit(png))
        )
    sections.append(
        ("fidelity", "Reward fidelity and D-REX degradation", "\n".join(fid) or "<p>none under results/</p>")
    )

    if runs is None:
        curves_html = (
            "<p>No <code>--runs</code> folder given: learning curves are drawn from the runs' TensorBoard logs, "
            "which stay in run folders (<code>trex-bench report --runs runs</code>); the committed results/ hold "
            "none. rl-zoo3's published PPO curves are not drawn: no citable source of their per-step data.</p>"
        )
    else:
        curves, skipped = collect_curves(runs)
        notes += [f"learning curve skipped: run {name}: {why}" for name, why in skipped]
        drawn = plot_curves(curves, out / "curves")
        figures += drawn
        curves_html = (
            "\n".join(
                _figure(p, out, f"learning curves: {p.stem}", f"{command} (from {Path(runs).name}/*/agent/tb)", short)
                for p in drawn
            )
            or "<p>no run with a TensorBoard log</p>"
        )
    sections.append(("curves", "Learning curves (true score vs agent steps)", curves_html))
    sections.append(("versions", "Package versions of the rows", _versions_html(lb, locked)))

    notes_html = "<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in notes) + "</ul>" if notes else "<p>nothing</p>"
    sections.append(("notes", f"What is missing ({len(notes)})", notes_html))
    nav = "".join(f'<a href="#{sid}">{html.escape(title)}</a>' for sid, title, _ in sections)
    body = "\n".join(f"<section id={sid}><h2>{html.escape(t)}</h2>\n{h}</section>" for sid, t, h in sections)
    page = (
        "<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8><title>trex_bench report</title>"
        f"<style>{_CSS}</style></head><body><h1>trex_bench report</h1>"
        f"<p>Built by <code>{html.escape(command)}</code> at commit <code>{html.escape(short)}</code> from "
        f'<a href="{html.escape(os.path.relpath(csv, out))}">leaderboard.csv</a> ({len(lb)} rows). '
        "★ = mean above the best demo, ◆ = above the average demo.</p>"
        f"<nav>{nav}</nav>{body}<script>{_IMAGE_CHECK}</script></body></html>\n"
    )
    path = out / "index.html"
    atomic_write(path, lambda p: p.write_text(page, encoding="utf-8"), suffix=".html")
    return Report(path, tuple(figures), tuple(notes))
