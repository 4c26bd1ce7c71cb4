"""The package's shape, checked from the source: no import cycles, one configuration layer.

The import graph is built with ``ast`` from every module under ``avatar/`` and counts
imports inside functions too (a lazy import is still a dependency). Plugin discovery goes
through the ``avatar.plugins`` entry-point group, so ``avatar.core.registry`` imports no plugin.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "avatar"
CONFIG_LAYER = "avatar.stages"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the ``avatar`` modules it imports (any depth of the file, lazy imports included)."""
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_import_cycles() -> None:
    assert cycles(import_graph()) == []


def test_only_the_entry_points_import_the_configuration_layer() -> None:
    graph = import_graph()
    offenders = sorted(name for name, imports in graph.items() if CONFIG_LAYER in imports)
    assert offenders == [], f"library modules importing {CONFIG_LAYER}: {offenders}"


def test_the_registry_imports_no_plugin() -> None:
    assert not {m for m in import_graph()["avatar.core.registry"] if m.startswith("avatar.plugins")}


def test_no_plugin_reads_a_composed_config() -> None:
    """Plugins get objects and plain options: no OmegaConf/Hydra import, no ``cfg`` name."""
    for path in (PACKAGE / "plugins").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        modules = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        modules |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert "cfg" not in names, path
        assert not {m for m in modules if m.split(".")[0] in ("omegaconf", "hydra")}, path


# The stage packages, lowest first: a package imports only from packages before it.
LAYERS = ["core", "task", "code", "learn", "run", "teach", "search", "distill", "report", "cli"]
TOP = {"avatar", "avatar.__main__", CONFIG_LAYER}  # above every stage (and the plugins: any layer)
MAX_LINES = 450


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in LAYERS else None


def test_a_stage_package_imports_only_from_lower_stages() -> None:
    offenders = []
    for name, imports in import_graph().items():
        own = layer(name)
        if own is None:
            continue
        for target in imports:
            other = layer(target)
            if target.startswith("avatar.plugins") or target in TOP - {"avatar"}:
                offenders.append(f"{name} -> {target}")
            elif other is not None and LAYERS.index(other) > LAYERS.index(own):
                offenders.append(f"{name} -> {target}")
    assert offenders == [], "imports up the stages: " + ", ".join(sorted(offenders))


def test_every_module_lives_in_a_stage_package() -> None:
    loose = sorted(
        module_name(p) for p in PACKAGE.glob("*.py") if module_name(p) not in TOP
    )
    assert loose == [], f"modules outside the stage packages: {loose}"


def test_no_module_is_longer_than_450_lines() -> None:
    long = {
        str(path.relative_to(REPO)): count
        for path in PACKAGE.rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}, f"split these modules: {long}"
