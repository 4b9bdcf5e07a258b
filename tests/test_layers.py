"""The package's layers, read from the imports of its source files.

``partita`` (facade, CLI) -> ``partita.actors`` -> ``partita.sql`` -> ``partita.runtime``:
dependencies point one way, ``runtime`` imports neither layer above it nor mentions
SQL, and the wheel installs exactly one top-level package.
"""

from __future__ import annotations

import ast
import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = {
    "partita": ROOT / "partita",
    "partita._cli": ROOT / "partita" / "_cli",
    "partita._ui": ROOT / "partita" / "_ui",
    "partita.runtime": ROOT / "runtime",
    "partita.actors": ROOT / "actors",
    "partita.sql": ROOT / "sql",
}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package, folder in PACKAGES.items():
        for path in sorted(folder.glob("*.py")):
            name = package if path.stem == "__init__" else f"{package}.{path.stem}"
            found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    """Every partita module ``name`` imports (``TYPE_CHECKING`` imports included)."""
    package = name if path.stem == "__init__" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            out.add(target)
            out.update(f"{target}.{a.name}" for a in node.names)
    modules = _modules()
    return {m for m in out if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    return {name: _imports(name, path) for name, path in _modules().items()}


def _layer(module: str) -> str:
    for package in ("partita.runtime", "partita.actors", "partita.sql"):
        if module == package or module.startswith(package + "."):
            return package
    return "partita"


def test_runtime_imports_no_layer_above_it() -> None:
    bad = [
        (m, t)
        for m, targets in _graph().items()
        if _layer(m) == "partita.runtime"
        for t in targets
        if _layer(t) != "partita.runtime"
    ]
    assert bad == []


def test_dependencies_point_one_way() -> None:
    order = {"partita": 3, "partita.actors": 2, "partita.sql": 1, "partita.runtime": 0}
    bad = [
        (m, t)
        for m, targets in _graph().items()
        for t in targets
        if order[_layer(t)] > order[_layer(m)]
        # a package's __init__ re-exports; the facade may be imported by nothing below
    ]
    assert bad == []


def test_runtime_never_mentions_sql() -> None:
    hits = [
        f"{path.name}:{i}"
        for path in sorted(PACKAGES["partita.runtime"].glob("*.py"))
        for i, line in enumerate(path.read_text().splitlines(), 1)
        if "sql" in line.lower().replace("sqlite", "")  # the store engine is not the SQL layer
    ]
    assert hits == []


def test_no_import_cycles() -> None:
    graph = _graph()
    # a package's __init__ only re-exports what its modules define: leave it out
    inits = {n for n, p in _modules().items() if p.stem == "__init__"}
    edges = {m: {t for t in ts if t not in inits} for m, ts in graph.items() if m not in inits}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append([*stack[stack.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node)
    assert cycles == []


def test_a_users_own_sql_package_does_not_shadow_partita(tmp_path: Path) -> None:
    for name in ("sql", "runtime", "actors"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise ImportError('the user {name}')\n")
    script = textwrap.dedent(
        """
        import partita
        print(partita.run_query("SELECT x + 1 AS y FROM t", [{"x": 1}]).rows)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.stderr == ""
    assert done.stdout == "[{'y': 2}]\n"


def test_public_names_report_partita_as_their_module() -> None:
    import partita

    for name in partita.__all__:
        obj = getattr(partita, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__ == "partita", name


@pytest.mark.slow
def test_the_wheel_installs_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
        capture_output=True,
    )
    import zipfile

    (wheel,) = tmp_path.glob("partita-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert tops == {"partita"}
    for sub in ("runtime", "actors", "sql"):
        assert f"partita/{sub}/__init__.py" in names
        assert f"partita/{sub}/py.typed" in names
