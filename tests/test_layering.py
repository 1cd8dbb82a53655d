"""The core modules import only the standard library (and each other)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SSE = Path(__file__).resolve().parent.parent / "sse"
CORE = [
    "events",
    "frames",
    "ndjson",
    "eventstream",
    "chat",
    "errors",
    "settings",
    "routing",
    "streamlog",
    "clientip",
    "logs",
    "auth",
    "cors",
    "limits",
    "injection",
    "openapi",
    "framelog",
    "resumetoken",
]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def sources(module: str) -> list[Path]:
    """A core module's file, or every file of a core package."""
    path = SSE / f"{module}.py"
    return [path] if path.exists() else sorted((SSE / module).glob("*.py"))


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_only_the_standard_library(module):
    for path in sources(module):
        outside = imported_roots(path) - set(sys.stdlib_module_names) - {"__future__"}
        assert not outside, f"{path.relative_to(SSE.parent)} imports {sorted(outside)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_the_edges(module):
    for path in sources(module):
        package = path.parent != SSE  # inside a package, "." is the package and ".." is sse/
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                if package and node.level == 1:
                    names = [node.module] if node.module else [alias.name for alias in node.names]
                    assert all((path.parent / f"{name}.py").exists() for name in names), f"{path} imports {names}"
                else:
                    assert node.module in CORE, f"{path.relative_to(SSE.parent)} imports {node.module}"
