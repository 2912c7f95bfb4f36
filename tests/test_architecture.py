"""The package's shape (issue 13): no import cycles, flows never reach the CLI, and every
front door (CLI, webhook service, Prefect entry flows) goes through one dispatcher."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"mlgitops": ROOT / "mlgitops", "mlgitops.flows": ROOT / "flows"}


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for prefix, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join([prefix, *parts])] = path
    return found


MODULES = _modules()


def imports_of(name: str) -> set[str]:
    """Every mlgitops module ``name`` imports, at the top or inside a function (imports
    only a type checker sees, under ``if TYPE_CHECKING:``, do not run and are left out)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    typing_only = {
        id(inner)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        for stmt in node.body
        for inner in ast.walk(stmt)
    }
    out: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for target in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name and MODULES[target].name != "__init__.py":
                out.add(target)
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def test_no_import_cycles() -> None:
    try:
        tuple(graphlib.TopologicalSorter(GRAPH).static_order())
    except graphlib.CycleError as exc:
        raise AssertionError(f"import cycle: {' -> '.join(exc.args[1])}") from None


def test_the_cycle_check_sees_function_local_imports() -> None:
    """The check is not blind: a cycle through an import inside a function is found."""
    graph = {name: set(deps) for name, deps in GRAPH.items()}
    graph["mlgitops.train.metrics"].add("mlgitops.train.training")
    graph["mlgitops.train.training"].add("mlgitops.train.metrics")
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError:
        return
    raise AssertionError("a planted cycle was not found")


def test_flows_never_import_the_cli() -> None:
    for name in MODULES:
        if name.startswith("mlgitops.flows"):
            assert not any(dep == "mlgitops.cli" or dep.startswith("mlgitops.commands") for dep in GRAPH[name]), name


def test_every_package_is_installed() -> None:
    """A folder of modules pyproject.toml does not list would be missing from the wheel."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    packages = {name for name, path in MODULES.items() if path.name == "__init__.py"}
    assert packages - listed == set()


def test_the_cli_is_thin() -> None:
    """Issue 13: each command parses options, calls one function and prints: no command
    body over 30 lines, cli.py well under 300 lines, and no command builds an argv for
    another process or another command."""
    import ast

    assert len((ROOT / "mlgitops" / "cli.py").read_text().splitlines()) < 100
    long = []
    for path in sorted((ROOT / "mlgitops" / "commands").glob("*.py")):
        source = path.read_text()
        tree = ast.parse(source)
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef) and node.decorator_list and any("command" in ast.unparse(d) or "guarded" in ast.unparse(d) for d in node.decorator_list):
                body = node.body[1:] if node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant) else node.body
                lines = body[-1].end_lineno - body[0].lineno + 1 if body else 0
                if lines > 30:
                    long.append(f"{path.name}:{node.name}: {lines} lines")
        assert "subprocess" not in source and "sys.argv" not in source and "CliRunner" not in source, path.name
    assert long == []
