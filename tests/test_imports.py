"""The package's import graph: layers import downward only, so no module imports one that imports it back."""

from __future__ import annotations

import ast
from pathlib import Path

import ganforge

PACKAGE = Path(ganforge.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the ganforge modules it imports anywhere in its text (at the top, in functions, for type checks)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: from the module's package, up level - 1
                    package = name.split(".") if is_package else name.split(".")[:-1]
                    package = package[: len(package) - (node.level - 1)]
                    base = ".".join(package + ([base] if base else []))
                targets.add(base)
                targets.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a list of modules, or None."""
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _is_package_edge(a: str, b: str) -> bool:
    """A package's __init__ re-exporting its own submodules (ganforge.models -> ganforge.models.dcgan) is no layer."""
    return b.startswith(a + ".")


def test_the_import_graph_has_no_cycle():
    graph = import_graph()
    # The top package re-exports the public API lazily; a subpackage's __init__ gathers its own modules.
    graph = {a: {b for b in targets if a != "ganforge" and not _is_package_edge(a, b)} for a, targets in graph.items()}
    graph = {a: {b for b in targets if b != "ganforge"} for a, targets in graph.items()}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_the_lower_layers_never_import_the_cli_or_the_server():
    graph = import_graph()
    for module, targets in graph.items():
        if module == "ganforge.__main__" or module.startswith(("ganforge.cli", "ganforge.serve")):
            continue
        assert not {t for t in targets if t.startswith(("ganforge.cli", "ganforge.serve"))}, module


def test_the_step_and_the_loop_live_in_their_own_modules():
    graph = import_graph()
    assert "ganforge.loop" in graph["ganforge.train"] and "ganforge.step" in graph["ganforge.loop"]
    assert "ganforge.train" not in graph["ganforge.loop"] and "ganforge.loop" not in graph["ganforge.step"]


def test_every_module_says_what_it_is_for_in_one_line():
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        doc = ast.get_docstring(ast.parse(path.read_text(), str(path)))
        if not doc or not doc.splitlines()[0].strip():
            missing.append(str(path.relative_to(PACKAGE)))
        elif len(doc.splitlines()[0]) > 120:
            missing.append(f"{path.relative_to(PACKAGE)} (first line over 120 characters)")
    assert not missing, f"modules without a one-line docstring: {missing}"
