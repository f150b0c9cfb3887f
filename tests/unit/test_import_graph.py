"""The package's import graph: folders in pipeline order, each importing only from its own layer or below; no
cycles; no module loose at the package's top; no domain module importing the CLI or printing.

Every ``import`` counts, function-local ones included: a cycle or an upward arrow that only works because one side
imports late is still one. No module keeps a ``__getattr__`` shim for an old import path.

The layer order, bottom to top (DESIGN.md). A folder may import from its own layer and from any layer below it:
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "trex_bench"

LAYERS = ("core", "demos", "bc", "reward", "rl", "evaluation", "experiment", "analysis", "regression", "label", "cli")
TOP_LEVEL = {"trex_bench", "trex_bench.__main__"}  # the package's face (its version) and `python -m trex_bench`


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in modules and t != name}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph = {m: _imports(m, p, modules) for m, p in modules.items()}
    for m in graph:  # a package's __init__ importing its own submodules (the CLI's command groups) is not a cycle
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_import_graph_has_no_cycle():
    assert _cycles(_graph()) == []


def test_the_cycle_finder_finds_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_domain_module_imports_the_cli():
    entry_points = {"trex_bench.__main__"}
    bad = {
        m: sorted(t for t in ts if t == "trex_bench.cli" or t.startswith("trex_bench.cli."))
        for m, ts in _graph().items()
        if not (m == "trex_bench.cli" or m.startswith("trex_bench.cli.")) and m not in entry_points
    }
    assert {m: ts for m, ts in bad.items() if ts} == {}


def test_no_domain_module_prints():
    """Printing is the CLI's (cli/): domain code returns values, logs, or takes a progress/log callback."""
    # lockfile is a standard-library script run by `make install` before the package is installed (its own main)
    scripts = {"trex_bench.core.lockfile"}
    printing = []
    for name, path in _modules().items():
        if name == "trex_bench.cli" or name.startswith("trex_bench.cli.") or name in scripts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                printing.append(f"{name}:{node.lineno}")
    assert printing == []


def _layer(module: str) -> int:
    """The index of ``module``'s folder in LAYERS; -1 for the package's face."""
    if module == "trex_bench":
        return -1
    return LAYERS.index(module.split(".")[1])


def _upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} -> {t}"
        for m, ts in graph.items()
        if m not in TOP_LEVEL
        for t in ts
        if _layer(t) > _layer(m)
    )


def test_every_module_sits_in_a_layer_folder():
    loose = [m for m in _modules() if m not in TOP_LEVEL and m.split(".")[1] not in LAYERS]
    assert loose == [], "modules outside the layer folders (add the folder to LAYERS or move the module)"


def test_layers_only_import_downwards():
    assert _upward_imports(_graph()) == []


def test_the_layer_check_finds_an_upward_import():
    graph = {"trex_bench.core.io": {"trex_bench.rl.ppo"}, "trex_bench.rl.ppo": {"trex_bench.core.io"}}
    assert _upward_imports(graph) == ["trex_bench.core.io -> trex_bench.rl.ppo"]


def test_no_module_keeps_an_old_import_path_alive():
    shims = [
        name
        for name, path in _modules().items()
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__"
    ]
    assert shims == []
