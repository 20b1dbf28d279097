"""No two modules of the package import each other, directly or through others.

The layering in the design (cli -> recipes -> sweep/report -> train -> models/data/
sparsity -> laws) only holds if the import graph has no cycle: a cycle means two
modules share something that belongs in a third module below both. The graph is
read from the source with `ast`, so imports inside functions count too (a lazy
import hides a cycle from Python's loader, not from a reader).
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"


def module_files(src: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under `src` (a package is its __init__)."""
    mods = {}
    for path in sorted(src.rglob("*.py")):
        parts = path.relative_to(src).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = path
    return mods


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name an import statement in `path` reaches, relative imports resolved."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                # level 1 is the current package, each further dot one package up
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            # `from pkg import mod` imports the submodule when one of that name exists
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(src: Path) -> dict[str, set[str]]:
    mods = module_files(src)
    graph: dict[str, set[str]] = {}
    for module, path in mods.items():
        edges = set()
        for name in imported_names(path, module):
            # the longest prefix that is one of our modules ("a.b.func" -> "a.b")
            while name and name not in mods:
                name = name.rpartition(".")[0]
            # A submodule importing its own package's __init__ is not a circle of
            # modules: Python runs the parent first by construction.
            if name and name != module and not module.startswith(name + "."):
                edges.add(name)
        graph[module] = edges
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_checker_finds_a_planted_circle(tmp_path):
    # Three modules in a ring, one bystander, and a child importing its parent
    # package (allowed): exactly the ring is reported.
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg import b\n")
    (pkg / "b.py").write_text("def f():\n    from .sub import c\n")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "sub" / "c.py").write_text("import pkg.a.thing\nfrom .. import d\n")
    (pkg / "d.py").write_text("import pkg\n")
    assert circles(import_graph(tmp_path)) == [["pkg.a", "pkg.b", "pkg.sub.c"]]


def test_no_import_circles_in_src():
    found = circles(import_graph(SRC))
    assert not found, "modules that import each other:\n" + "\n".join(
        " <-> ".join(c) for c in found
    )
