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
    "openai_request",
    "uimessage_request",
]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_only_the_standard_library(module):
    outside = imported_roots(SSE / f"{module}.py") - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, f"sse/{module}.py imports {sorted(outside)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_the_edges(module):
    tree = ast.parse((SSE / f"{module}.py").read_text())
    relative = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.level}
    assert relative <= set(CORE), f"sse/{module}.py imports {sorted(relative - set(CORE))}"
