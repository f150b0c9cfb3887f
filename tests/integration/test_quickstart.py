"""The README's main job, exactly as `make quickstart` runs it (its recipe read from the Makefile), at `smoke` size.

It runs the installed ``trex-bench`` console script in a subprocess with the recipe's default options (progress
bars on), so a dependency missing from setup.cfg on the default path fails here, as `rich` once did at the PPO stage.
"""

from __future__ import annotations

import csv
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def quickstart_command() -> list[str]:
    """The Makefile's `quickstart` recipe as argv, with `$(BIN)` this venv's bin folder and `$(SEED)` 0."""
    lines = (ROOT / "Makefile").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("quickstart:"))
    recipe = lines[start + 1].strip()
    recipe = recipe.replace("$(BIN)/", str(Path(sys.executable).parent) + "/").replace("$(SEED)", "0")
    assert "$(" not in recipe, f"unexpanded make variable in the quickstart recipe: {recipe}"
    return shlex.split(recipe)


def test_quickstart_recipe_runs_end_to_end_at_smoke(tmp_path):
    argv = quickstart_command()
    assert argv[1:3] == ["pipeline", "breakout"] and "--no-progress" not in argv
    i = argv.index("--budget")
    argv[i + 1] = "smoke"
    if "--demos" in argv:  # a path relative to the checkout, where make runs it
        j = argv.index("--demos") + 1
        argv[j] = str(ROOT / argv[j])
    env = dict(os.environ, TREX_BENCH_CACHE=str(tmp_path / "cache"), PYTHONUNBUFFERED="1")
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"quickstart failed (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    with open(tmp_path / "results" / "leaderboard.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and rows[0]["method"] == "trex" and rows[0]["budget"] == "smoke"
    assert re.search(r"wrote|leaderboard", done.stdout), done.stdout[-2000:]
    # the PPO stage drew its progress bar (on stderr), so the default path really ran with bars on
    assert "ppo breakout" in done.stderr
    # the reward's extrapolation to the later checkpoints is printed before PPO starts (the demos have a ppo-later set)
    out = done.stdout
    assert "extrapolation on" in out and out.index("extrapolation on") < out.index("[agent] running")


def test_every_imported_distribution_is_declared():
    """Each third-party module the package imports comes from a distribution setup.cfg installs or names as an optional
    extra (ray, minari: imported only by the commands that need them)."""
    import ast
    import configparser
    from importlib.metadata import packages_distributions

    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    declared = {re.split(r"[<>=!\[ ]", line.strip())[0].lower().replace("_", "-")
                for line in cfg["options"]["install_requires"].splitlines() if line.strip()}
    extras = cfg["options.extras_require"]
    optional = {re.split(r"[<>=!\[ ]", line.strip())[0].lower().replace("_", "-")
                for name in extras if name != "dev" for line in extras[name].splitlines() if line.strip()}
    assert optional >= {"ray", "minari"}
    dists = packages_distributions()
    imported: set[str] = set()
    for path in (ROOT / "trex_bench").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    missing = {}
    for module in sorted(imported - set(sys.stdlib_module_names) - {"trex_bench", "__future__"}):
        names = {d.lower().replace("_", "-") for d in dists.get(module, [module])}
        if not names & (declared | optional):
            missing[module] = sorted(names)
    assert not missing, f"imported but not in setup.cfg install_requires: {missing}"


def test_help_and_games_do_not_import_torch():
    """`trex-bench --help` and `trex-bench games` start without loading torch or SB3 (seconds saved per call)."""
    code = ("import sys; from trex_bench.cli import main\n"
            "for argv in (['games'],):\n    main(argv)\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('torch', 'stable_baselines3') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout[-500:]


def test_the_torch_free_profile_names_match_the_profiles():
    from trex_bench.core.envs import PROFILES
    from trex_bench.core.types import ENV_PROFILES

    assert tuple(PROFILES) == ENV_PROFILES
