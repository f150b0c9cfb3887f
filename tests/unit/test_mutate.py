"""The mutation runner's own logic (tools/mutate.py): edits, verdicts, exit status, the list's staleness.

None of these runs the real suite: the end-to-end case mutates a two-file throwaway repository.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("trex_mutate", ROOT / "tools" / "mutate.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses resolve their module by name
    spec.loader.exec_module(mod)
    return mod


mutate = _load()


def test_an_edit_applies_exactly_once_or_refuses():
    assert mutate.apply_edit("a = 1\nb = 2\n", "b = 2", "b = 3") == "a = 1\nb = 3\n"
    with pytest.raises(mutate.EditError, match="occurs 0 times"):
        mutate.apply_edit("a = 1\n", "b = 2", "b = 3")
    with pytest.raises(mutate.EditError, match="occurs 2 times"):
        mutate.apply_edit("x = 0\nx = 0\n", "x = 0", "x = 1")
    with pytest.raises(mutate.EditError, match="same text"):
        mutate.apply_edit("x = 0\n", "x = 0", "x = 0")


def test_a_mutant_that_does_not_compile_is_refused_not_counted_as_caught():
    with pytest.raises(mutate.EditError, match="does not compile"):
        mutate.apply_edit("if x:\n    y = 1\n", "    y = 1\n", "", "m.py")
    assert mutate.apply_edit("if x:\n    y = 1\n", "    y = 1\n", "", "notes.md") == "if x:\n"


@pytest.mark.parametrize(("code", "verdict"), [(0, "survived"), (1, "caught"), (2, "caught"), (3, "error"),
                                               (4, "error"), (5, "error")])
def test_verdicts_from_pytest_exit_codes(code, verdict):
    assert mutate.verdict_from_exit(code) == verdict


def _result(verdict: str, accepted: str | None = None):
    return mutate.Result("X", "f.py", "d", verdict, 1.0, accepted=accepted)


def test_exit_status_and_summary():
    caught, kept, open_ = _result("caught"), _result("survived", "equivalent"), _result("survived")
    assert mutate.exit_status([caught, kept]) == 0
    assert mutate.exit_status([caught, kept, open_]) == 1
    assert mutate.exit_status([caught, _result("error")]) == 2
    assert mutate.summary_line([caught, caught, kept, _result("error")]) == \
        "2 caught, 1 survived, 1 errors (25.0 % surviving)"
    table = mutate.format_table([caught, kept])
    assert "survived (accepted)" in table and table.splitlines()[0].split()[:5] == ["id", "file", "description",
                                                                                   "verdict", "seconds"]


def _write(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(body, encoding="utf-8")
    return path


ENTRY = """
[[mutation]]
id = "A"
file = "pkg.py"
old = "x = 1"
new = "x = 2"
description = "d"
tests = ["test_pkg.py"]
"""


def test_the_list_is_checked_when_loaded(tmp_path):
    (m,) = mutate.load_mutations(_write(tmp_path, ENTRY))
    assert (m.id, m.tests, m.accepted, m.timeout) == ("A", ("test_pkg.py",), None, None)
    with pytest.raises(mutate.EditError, match="listed twice"):
        mutate.load_mutations(_write(tmp_path, ENTRY + ENTRY))
    with pytest.raises(mutate.EditError, match="'tests'"):
        mutate.load_mutations(_write(tmp_path, ENTRY.replace('tests = ["test_pkg.py"]', "tests = []")))
    with pytest.raises(mutate.EditError, match="unknown field"):
        mutate.load_mutations(_write(tmp_path, ENTRY + 'acepted = "typo"\n'))
    with pytest.raises(mutate.EditError, match="unknown mutation id"):
        mutate.select(mutate.load_mutations(_write(tmp_path, ENTRY)), "A,B")


def test_every_listed_edit_applies_to_this_tree():
    """tools/mutations.toml stays in step with the code: each `old` text occurs exactly once and the mutant compiles."""
    mutations = mutate.load_mutations(mutate.DEFAULT_LIST)
    assert mutate.check_list(mutations, ROOT) == []
    assert len(mutations) >= 30


@pytest.fixture
def toy_repo(tmp_path) -> Path:
    """A git repository with a module and the test that pins it."""
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "pkg.py").write_text("def f():\n    return 1\n")
    (repo / "test_pkg.py").write_text("import pkg\n\n\ndef test_f():\n    assert pkg.f() == 1\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "pkg.py", "test_pkg.py"], cwd=repo, check=True)
    return repo


def _mutation(new: str, old: str = "return 1", timeout: float | None = None):
    return mutate.Mutation("T", "pkg.py", old, new, "toy", ("test_pkg.py",), None, timeout)


def test_run_one_on_a_copy_caught_survived_error(toy_repo):
    files = mutate.tracked_files(toy_repo)
    assert sorted(files) == ["pkg.py", "test_pkg.py"]
    caught = mutate.run_one(_mutation("return 2"), toy_repo, files, sys.executable, 60)
    assert caught.verdict == "caught" and caught.exit_code == 1 and "test_f" in caught.detail
    survived = mutate.run_one(_mutation("return 2 - 1"), toy_repo, files, sys.executable, 60)
    assert survived.verdict == "survived" and survived.exit_code == 0
    stale = mutate.run_one(_mutation("return 3", old="return 9"), toy_repo, files, sys.executable, 60)
    assert stale.verdict == "error" and "occurs 0 times" in stale.detail
    assert (toy_repo / "pkg.py").read_text() == "def f():\n    return 1\n"  # the working tree is never edited


def test_a_run_past_its_timeout_is_killed_and_an_error(toy_repo):
    (toy_repo / "test_pkg.py").write_text("import time\n\n\ndef test_slow():\n    time.sleep(60)\n")
    r = mutate.run_one(_mutation("return 2", timeout=2), toy_repo, mutate.tracked_files(toy_repo), sys.executable, 60)
    assert r.verdict == "error" and r.detail == "timed out after 2 s" and r.seconds < 30
