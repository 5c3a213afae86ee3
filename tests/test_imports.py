"""No import circle in the package: every `import` (module level or inside a function) of a dm2_repro
module, a module also importing its parent packages, must leave the module graph acyclic, so that the
layers read one way, as the sub-packages are named (envs -> networks -> algos -> training -> sweeps -> results ->
figures / verdicts)."""
from __future__ import annotations

import ast
from pathlib import Path

import dm2_repro

PACKAGE = Path(dm2_repro.__file__).resolve().parent


def module_graph(root: Path) -> dict[str, set[str]]:
    """Module name -> the package's modules it imports (and their parent packages), from the source."""
    names = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(root.parent).with_suffix("").parts
        names[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph = {}
    for name, path in names.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets |= {f"{base}.{alias.name}" if f"{base}.{alias.name}" in names else base for alias in node.names}
        deps = set()
        for target in targets:
            parts = target.split(".")
            deps |= {".".join(parts[:i]) for i in range(2, len(parts) + 1)}   # a module loads its parents too
        graph[name] = {d for d in deps if d in names and d != name and not name.startswith(d + ".")}
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v), on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_package_has_no_import_circle():
    graph = module_graph(PACKAGE)
    assert len(graph) > 30 and "dm2_repro.envs.registry" in graph["dm2_repro.config"] | graph["dm2_repro.envs"]
    assert import_circles(graph) == []


def test_a_circle_through_a_function_level_import_or_a_parent_package_is_found(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from . import b\n")
    (pkg / "b.py").write_text("def f():\n    from .a import x\n")      # inside a function: still a circle
    (pkg / "sub" / "__init__.py").write_text("from ..c import y\n")
    (pkg / "sub" / "d.py").write_text("")
    (pkg / "c.py").write_text("from .sub.d import z\n")               # c -> sub.d -> sub (its parent) -> c
    assert import_circles(module_graph(pkg)) == [["pkg.a", "pkg.b"], ["pkg.c", "pkg.sub"]]
