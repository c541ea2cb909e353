"""The layering of ``src/tunelab``: no module may reach, through tunelab's own imports, back to
itself. Imports inside functions count as much as those at the top of a file: a lazy import
hides a cycle from Python's start-up, not from the design."""

from __future__ import annotations

import ast
from pathlib import Path

import tunelab

PACKAGE = Path(tunelab.__file__).parent


def module_name(path: Path) -> str:
    """The dotted name of a file under ``src/tunelab``."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(tree: ast.AST, package: str) -> set[str]:
    """Every dotted name an import statement anywhere in ``tree`` brings in, as candidates:
    ``from a.b import c`` yields ``a.b`` and ``a.b.c`` (``c`` may be a submodule)."""
    names: set[str] = set()
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and is_type_checking(node):
            skipped.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph() -> dict[str, set[str]]:
    """Module -> the tunelab modules it imports (directly, or by importing a subpackage whose
    ``__init__`` runs first). The root package's lazy ``tunelab.<api name>`` facade is left out:
    every module is below it by construction."""
    files = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
        targets: set[str] = set()
        for imported in imported_names(ast.parse(path.read_text(encoding="utf-8")), package):
            if imported not in files:
                continue
            parts = imported.split(".")
            # importing a.b.c runs a/b/__init__ first, unless a.b is this module's own package
            # (already running); the root package's __init__ is only a lazy facade
            targets.update(".".join(parts[:i]) for i in range(2, len(parts) + 1))
        targets -= own_packages
        targets.discard(name)
        graph[name] = {target for target in targets if target in files and target != "tunelab"}
    return graph


def strongly_connected(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def elementary_cycles(graph: dict[str, set[str]], members: set[str]) -> list[list[str]]:
    """Every cycle inside one component, each once: it starts at its smallest module."""
    cycles: list[list[str]] = []

    def walk(path: list[str], seen: set[str]) -> None:
        for target in sorted(graph[path[-1]] & members):
            if target == path[0]:
                cycles.append([*path, target])
            elif target > path[0] and target not in seen:
                walk([*path, target], seen | {target})

    for start in sorted(members):
        walk([start], {start})
    return cycles


def import_cycles(graph: dict[str, set[str]]) -> list[str]:
    """One line per import cycle, e.g. ``tunelab.a -> tunelab.b -> tunelab.a``."""
    return sorted(
        " -> ".join(cycle)
        for members in strongly_connected(graph)
        for cycle in elementary_cycles(graph, members)
    )


def test_the_cycle_finder_sees_lazy_and_relative_imports(tmp_path: Path) -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles(graph) == ["a -> b -> c -> a"]
    tree = ast.parse("def f():\n    from . import sibling\n    import tunelab.x.y\n")
    assert {"tunelab.pkg.sibling", "tunelab.x.y"} <= imported_names(tree, "tunelab.pkg")


def test_no_import_cycles() -> None:
    graph = import_graph()
    assert graph.get("tunelab.api"), "the graph found no imports"
    cycles = import_cycles(graph)
    assert not cycles, "import cycles in src/tunelab:\n" + "\n".join(cycles)
