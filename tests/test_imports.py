"""The house's import drawing: no circle between any two modules (imports inside functions
and ``TYPE_CHECKING`` blocks count too), and the floors hold: the model library never imports
Ray or Optuna, and nothing below ``sweep`` imports it."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("sermodels", "search_spaces", "sweep")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The house's modules ``path`` imports, at any depth. ``from a import b`` names ``a.b``
    where that is a module, else ``a``; a package's own ``__init__`` run by importing its
    submodule is Python's doing, not an arrow of ours."""
    named = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            for alias in node.names:
                whole = f"{node.module}.{alias.name}"
                named.add(whole if whole in modules else node.module)
    return named & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    paths["launch"] = ROOT / "launch.py"
    modules = set(paths)
    return {name: imports_of(path, modules) - {name} for name, path in paths.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected set of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

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
            members = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                members.append(member)
                if member == node:
                    break
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_back():
    assert circles(import_graph()) == []


def test_the_circle_finder_finds_a_planted_circle():
    graph = import_graph()
    graph["sermodels.config"] = graph["sermodels.config"] | {"sermodels.data.corpus"}
    assert any("sermodels.config" in circle for circle in circles(graph))


@pytest.mark.parametrize("package", ["sermodels", "search_spaces"])
def test_the_floors_below_sweep_know_nothing_of_ray_optuna_or_sweep(package):
    for path in (ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                root = name.split(".")[0]
                if package == "sermodels":
                    assert root not in {"ray", "optuna", "sweep", "search_spaces"}, (path, name)
                else:
                    assert root not in {"ray", "sweep"}, (path, name)
