"""The CLI's shape: one module per command, each importing only the shared
helpers (app, common, flags) and library code, never another command module."""

from __future__ import annotations

import ast
from pathlib import Path

import sparsescale.cli

CLI = Path(sparsescale.cli.__file__).parent
SHARED = {"app", "common", "flags"}


def _cli_imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            continue
        names |= {m.split(".")[2] for m in mods if m.startswith("sparsescale.cli.")}
    return names


def test_command_modules_import_only_the_shared_helpers():
    for path in CLI.glob("*.py"):
        if path.stem == "__init__":
            continue
        allowed = {"app", "flags"} if path.stem in SHARED else SHARED
        assert _cli_imports(path) <= allowed, f"{path.name} imports {_cli_imports(path) - allowed}"


def test_every_registered_command_has_its_module():
    from typer.main import get_command

    commands = set(get_command(sparsescale.cli.app).commands)
    modules = {p.stem for p in CLI.glob("*.py")} - SHARED - {"__init__"}
    assert len(commands) == len(modules), (commands, modules)
    assert {c.replace("-", "_") for c in commands} - {"next"} <= modules
