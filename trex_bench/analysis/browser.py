"""The report checked in a real browser: headless Chromium (Debian's ``chromium``; ``make install-browser``).

No CDP and no browser download: two plain command lines. ``--dump-dom`` returns the DOM after the load event, where
the report's own script has counted the images that did not decode (``data-images``, ``data-broken-images``);
``--screenshot`` writes a PNG of the first screen. With ``--enable-logging=stderr --v=0`` Chromium prints every
console message as an ``INFO:CONSOLE`` line; the report runs no other script, so every such line is a problem.
``static_problems`` checks the same page without a browser: every ``img``/``a`` target is relative and exists.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np

__all__ = ["BrowserCheck", "find_chromium", "render", "static_problems", "is_blank"]

_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class BrowserCheck:
    """What the browser saw: the DOM after load, its image counts, console messages and the screenshot."""

    dom: str
    images: int
    broken_images: int
    console: tuple[str, ...]
    screenshot: Path

    @property
    def problems(self) -> list[str]:
        out = [f"console: {c}" for c in self.console]
        if self.broken_images:
            out.append(f"{self.broken_images} of {self.images} images did not load")
        if is_blank(self.screenshot):
            out.append(f"the screenshot {self.screenshot} is one colour (a blank page)")
        return out


def find_chromium() -> str | None:
    """The path of a Chromium binary on PATH, or None."""
    return next((p for p in map(shutil.which, _BROWSERS) if p), None)


def _run(browser: str, args: list[str], url: str, timeout: float) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory(prefix="trex-chromium-") as profile:
        cmd = [
            browser,
            "--headless",
            "--no-sandbox",  # CI runs as root, where Chromium refuses its sandbox
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            *args,
            url,
        ]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{browser} exited {r.returncode}: {r.stderr.strip()[-500:]}")
    return r


def render(
    page: str | Path, screenshot: str | Path, size: tuple[int, int] = (1280, 1000), timeout: float = 120
) -> BrowserCheck:
    """Open ``page`` in headless Chromium: its DOM after load, console messages, and a screenshot.

    Raises:
        FileNotFoundError: no Chromium on PATH (``make install-browser``).
        RuntimeError: Chromium failed or wrote no screenshot.
    """
    browser = find_chromium()
    if browser is None:
        raise FileNotFoundError("no chromium on PATH: `make install-browser` (Debian's chromium package)")
    url = Path(page).resolve().as_uri()
    shot = Path(screenshot).resolve()
    dom_run = _run(browser, ["--dump-dom"], url, timeout)
    shot_run = _run(browser, [f"--screenshot={shot}", f"--window-size={size[0]},{size[1]}"], url, timeout)
    if not shot.is_file():
        raise RuntimeError(f"{browser} wrote no screenshot {shot}")
    console = tuple(
        line.split("] ", 1)[-1] for line in (dom_run.stderr + shot_run.stderr).splitlines() if ":CONSOLE" in line
    )
    body = re.search(r"<body([^>]*)>", dom_run.stdout)
    attrs = dict(re.findall(r'data-([a-z-]+)="(\d+)"', body.group(1))) if body else {}
    if "images" not in attrs:
        raise RuntimeError("the page's image check did not run (no data-images on <body> after load)")
    return BrowserCheck(dom_run.stdout, int(attrs["images"]), int(attrs.get("broken-images", 0)), console, shot)


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[tuple[str, str]] = []
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(str(a["id"]))
        if tag == "img" and a.get("src") is not None:
            self.targets.append(("img", str(a["src"])))
        if tag == "a" and a.get("href") is not None:
            self.targets.append(("a", str(a["href"])))


def static_problems(page: str | Path) -> list[str]:
    """Every ``img src`` and ``a href`` of ``page`` that is absolute, remote or points at nothing."""
    page = Path(page)
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    problems = []
    for tag, target in parser.targets:
        parts = urlsplit(target)
        if parts.scheme or parts.netloc or target.startswith("/"):
            problems.append(f"<{tag}> {target!r} is not a relative link")
        elif not parts.path:
            if parts.fragment not in parser.ids:
                problems.append(f"<{tag}> {target!r}: no element with that id")
        elif not (page.parent / unquote(parts.path)).exists():
            problems.append(f"<{tag}> {target!r}: {os.path.normpath(page.parent / unquote(parts.path))} does not exist")
    return problems


def is_blank(png: str | Path) -> bool:
    """True when every pixel of the PNG has the same colour."""
    import matplotlib.image

    pixels = np.asarray(matplotlib.image.imread(str(png)))
    return bool((pixels == pixels.reshape(-1, *pixels.shape[2:])[0]).all())
