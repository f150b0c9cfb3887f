"""The HTML report: built from the committed results/, every link and image resolves, gaps are named, and a real
browser (headless Chromium) renders it without a broken image, a console message or a blank screen."""

from __future__ import annotations

import html
import os
import re
import shutil
from pathlib import Path

import pytest
from test_curves import _run  # tests/ is on sys.path (pytest prepend mode), as for `fakes`

from trex_bench.analysis.browser import find_chromium, is_blank, render, static_problems
from trex_bench.analysis.report import build_report
from trex_bench.cli import main
from trex_bench.core.lockfile import parse_lock, read_lock

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "results"


@pytest.fixture(scope="module")
def committed_report(tmp_path_factory):
    """The report of the committed results/ (few bootstrap resamples), written outside the tree."""
    out = tmp_path_factory.mktemp("report")
    return build_report(RESULTS, out, reps=50, games=["breakout", "seaquest", "mspacman"],
                        methods=["trex", "drex", "bc", "constant", "ppo-true", "gail"])


def test_report_builds_from_committed_results(committed_report):
    page = committed_report.path.read_text(encoding="utf-8")
    assert static_problems(committed_report.path) == []
    for section in ("leaderboard", "stats", "papers", "extrapolation", "fidelity", "curves", "versions", "notes"):
        assert f"<section id={section}>" in page
    committed_pngs = sorted((RESULTS / "plots" / "extrapolation").glob("*/*.png"))
    assert len(committed_pngs) >= 12 and set(committed_pngs) <= set(committed_report.figures)
    assert page.count("<figure>") == len(committed_report.figures)
    assert page.count("made by <code>") == len(committed_report.figures)  # every figure names its command ...
    assert "commit <code>unknown</code>" not in page                       # ... and its commit
    assert "★ beats best demo" in page                                     # ppo-true on breakout, small, 10M horizon
    assert "IQM" in page and "Best of seeds" in page and "T-REX (ICML 2019, Table 1)" in page


def test_requested_game_and_method_without_rows_are_named(committed_report, tmp_path):
    assert "no leaderboard rows for game 'mspacman'" in committed_report.notes
    page = committed_report.path.read_text(encoding="utf-8")
    assert "<h3>breakout</h3>" in page and "<h3>seaquest</h3>" in page and "<h3>mspacman</h3>" not in page
    assert "no leaderboard rows for game 'mspacman'" in html.unescape(page)
    assert not any("for method 'gail'" in n for n in committed_report.notes)  # the committed board has gail rows
    results = tmp_path / "results"  # the same board without them
    results.mkdir()
    lines = (RESULTS / "leaderboard.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    (results / "leaderboard.csv").write_text("".join(x for x in lines if ",gail," not in x), encoding="utf-8")
    report = build_report(results, results / "report", reps=20, games=["breakout"], methods=["trex", "gail"])
    assert "no leaderboard rows for method 'gail'" in report.notes


def test_learning_curves_from_runs_and_a_run_without_logs(tmp_path):
    runs = tmp_path / "runs"
    _run(runs, "breakout-trex-quick-s0", "trex", [(1024, 0.5), (2048, 1.5)])
    _run(runs, "breakout-constant-quick-s0", "constant", None)
    results = tmp_path / "results"
    results.mkdir()
    shutil.copy(RESULTS / "leaderboard.csv", results / "leaderboard.csv")
    report = build_report(results, results / "report", runs=runs, reps=20)
    assert [p.name for p in report.figures] == ["breakout-quick.png"]
    assert any("breakout-constant-quick-s0" in n and "no TensorBoard log" in n for n in report.notes)
    assert static_problems(report.path) == []
    assert "results/tables/trex.md is missing" in " ".join(report.notes).replace(str(tmp_path) + "/", "")


def test_committed_curves_and_earlier_protocols_are_on_the_page(committed_report):
    """Without --runs the page shows the committed learning-curve figures; replaced protocols' rows sit in collapsed
    sections, never in the current leaderboard tables; a single seed shows its games' spread, never ± 0.0."""
    committed = sorted((RESULTS / "plots" / "curves").glob("*.png"))
    assert committed and set(committed) <= set(committed_report.figures)
    page = committed_report.path.read_text(encoding="utf-8")
    current, _, rest = page.partition("<details><summary>Earlier protocols")
    assert rest and "PPO annealed over its own steps" in rest and "PPO annealed over its own steps" not in current
    # ± 0.0 only as the spread of games that all scored the same (Enduro's 0s, D-REX's Pong 21–0s), never of seeds
    assert "(30 games)" in current and "± 0.0 (" not in re.sub(r"-?[\d.]+ ± 0\.0 \(30 games\)", "", page)


def test_a_script_in_a_csv_cell_stays_text(tmp_path):
    """Autoescape: a leaderboard cell or a generated table's cell with markup is shown as text, never run."""
    from trex_bench.evaluation.leaderboard import append_row

    results = tmp_path / "results"
    (results / "tables").mkdir(parents=True)
    shutil.copy(RESULTS / "leaderboard.csv", results / "leaderboard.csv")
    evil = "<script>alert(1)</script>"
    append_row(results / "leaderboard.csv", dict(game="breakout", method="trex", seed=7, mean=1.0, best_demo=15.0,
                                                 avg_demo=5.8, reward_transform=evil, budget="small",
                                                 schedule_steps=10_000_000, rl_steps=500_736, n_episodes=30, std=1.0))
    link = "[click](javascript:alert(2))"  # Python-Markdown passes a link of any scheme
    (results / "tables" / "trex.md").write_text(f"# T\n\n| game | x |\n|---|---|\n| {evil} | <b>y</b> {link} |\n")
    report = build_report(results, results / "report", reps=20, methods=["trex"])
    page = report.path.read_text(encoding="utf-8")
    assert page.count("<script>") == 1, "the page's own image check is its only script"
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "&lt;b&gt;y&lt;/b&gt;" in page
    assert '<a href="#">click</a>' in page and "javascript:" not in page


def test_bad_report_arguments_are_one_line_errors_that_write_nothing(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["report", "--results", str(RESULTS), "--out", str(out), "--reps", "0"]) == 2
    assert "--reps" in capsys.readouterr().err and not out.exists(), "nothing written, not even an empty folder"
    afile = tmp_path / "afile"
    afile.write_text("x")
    for bad in (afile, afile / "sub"):
        assert main(["report", "--results", str(RESULTS), "--out", str(bad), "--reps", "5"]) == 2
        err = capsys.readouterr().err
        assert "is a file, not a folder" in err and len(err.strip().splitlines()) == 1 and "File exists" not in err
    assert afile.read_text() == "x"


def test_a_report_is_written_only_into_a_new_empty_or_report_folder(committed_report, tmp_path, capsys):
    """`report --out docs` replaced docs/index.html; a report folder written before is written again."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.html").write_text("<html>the project's own page</html>")
    assert main(["report", "--results", str(RESULTS), "--out", str(docs), "--reps", "5"]) == 2
    assert "holds other files, not a report" in capsys.readouterr().err
    assert (docs / "index.html").read_text() == "<html>the project's own page</html>"
    assert sorted(p.name for p in docs.iterdir()) == ["index.html"]
    from trex_bench.analysis.report import _check_out

    _check_out(committed_report.path.parent)  # a report folder: written again


def test_versions_differ_from_the_lock_are_shown(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("# a lock\ntorch==2.13.0+cpu\nstable-baselines3==2.9.2\nale-py==0.12.1\nnumpy==2.4.6\n")
    report = build_report(RESULTS, tmp_path / "r", reps=20, lock=lock)
    page = report.path.read_text(encoding="utf-8")
    assert "different package version sets" in page      # the committed rows: CPU (torch 2.13) and H200 (torch 2.11)
    assert "<td class=differs>2.11.0</td>" in page          # torch 2.11.0 on the H200 rows is not the lock's
    assert "<tr class=lock><td>requirements.lock</td>" in page


def test_corrupt_lock_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "requirements.lock"
    bad.write_text("torch==2.13.0+cpu\nstable-baselines3>=2.4\nale-py==0.12.1\n")
    with pytest.raises(ValueError, match=r"line 2: 'stable-baselines3>=2.4' is not an exact pin"):
        read_lock(bad)
    with pytest.raises(ValueError, match="pins no ale-py"):
        parse_lock("torch==2.13.0\nstable-baselines3==2.9.2\n")
    with pytest.raises(ValueError, match="pinned twice"):
        parse_lock("torch==2.13.0\ntorch==2.12.0\n")
    assert main(["report", "--results", str(RESULTS), "--out", str(tmp_path / "r"), "--lock", str(bad)]) == 2


def test_committed_lock_file_parses():
    pins = read_lock(ROOT / "requirements.lock")
    assert pins["torch"].startswith("2.13.0") and "rliable" in pins


def test_the_lock_pins_every_declared_dependency():
    """`make install` installs the lock, then the package with --no-deps: a dependency added to setup.cfg (the package's
    or the dev extra's) without `make lock` would be missing on a fresh machine."""
    import configparser
    import re

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    lines = cfg["options"]["install_requires"].splitlines() + cfg["options.extras_require"]["dev"].splitlines()
    declared = {re.split(r"[<>=!\[ ]", ln.strip())[0].lower().replace("_", "-") for ln in lines if ln.strip()}
    pins = {name.lower().replace("_", "-") for name in read_lock(ROOT / "requirements.lock")}
    assert declared - pins == set(), "declared in setup.cfg but not pinned: run `make lock`"


def test_report_renders_in_headless_chromium(committed_report):
    """Skips without Chromium locally; under CI=true a missing browser is a failure (CI installs it)."""
    if find_chromium() is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI=true but no chromium on PATH: .ci/run must `make install-browser` before `make test`")
        pytest.skip("no chromium on PATH (make install-browser)")
    shot = committed_report.path.parent / "screenshot.png"
    check = render(committed_report.path, shot)
    assert check.images == len(committed_report.figures) and check.broken_images == 0
    assert check.console == ()
    assert not is_blank(shot)
    assert check.problems == []
    assert "<h3>breakout</h3>" in check.dom


def test_browser_check_catches_a_broken_image_and_a_script_error(tmp_path, committed_report):
    if find_chromium() is None:
        pytest.skip("no chromium on PATH (make install-browser)")
    page = committed_report.path.read_text(encoding="utf-8")
    bad = committed_report.path.parent / "bad.html"
    bad.write_text(page.replace("<h1>", '<img src="nope.png"><script>console.error("boom")</script><h1>', 1))
    check = render(bad, tmp_path / "bad.png")
    assert check.broken_images == 1 and any("boom" in c for c in check.console)
    assert any("nope.png" in p for p in static_problems(bad))
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body><script>document.body.dataset.images=0</script></body></html>")
    assert "one colour" in " ".join(render(blank, tmp_path / "blank.png").problems)


def test_the_template_ships_as_package_data():
    """The page is a Jinja2 template inside the package: setup.cfg must ship it, or an installed wheel has no page."""
    import configparser
    from fnmatch import fnmatch

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    patterns = cfg["options.package_data"]["trex_bench.analysis"].split()
    template = ROOT / "trex_bench" / "analysis" / "templates" / "report.html.j2"
    assert template.is_file()
    assert any(fnmatch("templates/report.html.j2", p) for p in patterns)
