"""The core modules import only the standard library (and each other)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

SSE = Path(__file__).resolve().parent.parent / "sse"
# Paths under sse/, without ".py".
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
    # The injection detector: every module of the package.
    *sorted(f"injection/{path.stem}" for path in (SSE / "injection").glob("*.py")),
    "openapi",
    "secretfile",
    "openai_request",
    "uimessage_request",
    "idle",
    # Wire protocols: every module of the package.
    *sorted(f"encoders/{path.stem}" for path in (SSE / "encoders").glob("*.py")),
    # The stdlib parts of the resumable streams' package.
    "resume/framelog",
    "resume/token",
]


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def imported_sse_modules(module: str) -> set[str]:
    """The modules of ``sse`` that ``module`` imports relatively, as paths under sse/."""
    package = module.split("/")[:-1]
    found = set()
    for node in ast.walk(ast.parse((SSE / f"{module}.py").read_text())):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = package[: len(package) - (node.level - 1)]
        if node.module:
            found.add("/".join([*base, *node.module.split(".")]))
        else:  # ``from . import frames``
            found |= {"/".join([*base, alias.name]) for alias in node.names}
    # A package is its __init__.
    return {f"{name}/__init__" if (SSE / name).is_dir() else name for name in found}


def test_every_encoder_is_checked():
    assert "encoders/base" in CORE
    assert "encoders/native" in CORE


@pytest.mark.parametrize("module", CORE)
def test_core_module_imports_only_the_standard_library(module):
    outside = imported_roots(SSE / f"{module}.py") - set(sys.stdlib_module_names) - {"__future__"}
    assert not outside, f"sse/{module}.py imports {sorted(outside)}"


@pytest.mark.parametrize("module", CORE)
def test_core_module_does_not_import_the_edges(module):
    relative = imported_sse_modules(module)
    assert relative <= set(CORE), f"sse/{module}.py imports {sorted(relative - set(CORE))}"
