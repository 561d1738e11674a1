"""The package's layers import one way: utils <- data/networks/transforms <- handlers <- engines <- metrics
<- bundle/apps <- cli (a module may import its own layer and the layers below, never one above), with no
import cycles between modules and no private name imported across modules."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "medgan_aug"
LAYERS = {
    "utils": 0,
    "data": 1,
    "networks": 1,
    "transforms": 1,
    "handlers": 2,
    "engines": 3,
    "metrics": 4,
    "bundle": 5,
    "apps": 5,
    "cli": 6,
}


def _module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[str, list[str], int]]:
    """(imported module, imported names, line) for every ``medgan_aug`` import in ``path``, at any depth."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("medgan_aug"):
            found.append((node.module, [a.name for a in node.names], node.lineno))
        elif isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.startswith("medgan_aug")]
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def import_violations(package: Path = PACKAGE) -> list[str]:
    """Every import that points up the layers, names a private symbol of another module, or closes a cycle."""
    problems, edges = [], {}
    modules = {_module_name(p, package): p for p in package.rglob("*.py")}
    for name, path in sorted(modules.items()):
        here = _layer(name)
        for target, names, line in _imports(path):
            where = f"{path.relative_to(package.parent)}:{line}"
            there = _layer(target)
            if here is not None and there is not None and there > here:
                problems.append(f"{where}: {name} (layer {here}) imports {target} (layer {there})")
            private = [n for n in names if n.startswith("_")]
            if private and target != name:
                problems.append(f"{where}: imports private {target}.{', '.join(private)}")
            if target in modules and target != name and not name.endswith("__init__"):
                edges.setdefault(name, set()).add(target)
    # cycles between non-package modules (sub-package __init__ files only re-export)
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if modules[nxt].name == "__init__.py":
                continue
            if state.get(nxt) == 1:
                problems.append("cycle: " + " -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    return problems


def test_imports_point_down_the_layers():
    assert import_violations() == []


def test_every_sub_package_has_a_layer():
    subpackages = {p.parent.name for p in PACKAGE.glob("*/__init__.py")}
    assert subpackages == set(LAYERS)


def test_the_check_catches_an_upward_import_a_private_name_and_a_cycle(tmp_path):
    pkg = tmp_path / "medgan_aug"
    for sub in ("utils", "apps"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "utils" / "a.py").write_text("from medgan_aug.apps.b import run\n")
    (pkg / "apps" / "b.py").write_text("from medgan_aug.utils.a import _helper\n")
    problems = import_violations(pkg)
    assert any("utils.a (layer 0) imports medgan_aug.apps.b (layer 5)" in p for p in problems)
    assert any("imports private medgan_aug.utils.a._helper" in p for p in problems)
    assert any(p.startswith("cycle: ") for p in problems)


def test_no_module_is_over_500_lines():
    lengths = {str(p.relative_to(PACKAGE)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    assert {name: n for name, n in lengths.items() if n > 500} == {}


def test_readme_layout_names_every_module():
    readme = (PACKAGE.parent / "README.md").read_text()
    layout = readme[readme.index("## Layout") :]
    missing = sorted(
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if p.name != "__init__.py" and p.name not in layout
    )
    assert missing == []
