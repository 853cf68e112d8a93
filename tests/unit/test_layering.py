"""Dependencies point inward: workflows <- activities <- client <- worker.

Every import statement of every module in workflows/, activities/ and client/ is read (with
ast, so imports inside functions count too, and nothing is executed) and checked against
what its layer may not import. A new import that breaks the layering fails here, naming the
file and line.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from client.settings import PROJECT_ROOT

# What each layer must never import (top-level package names).
FORBIDDEN: dict[str, frozenset[str]] = {
    # The deterministic core: no I/O, and nothing from the layers built on it.
    "workflows": frozenset(
        {"activities", "client", "worker", "sandbox", "bench", "asyncpg", "aiohttp"}
    ),
    # Adapters serve the client and the worker; the sandbox is a stand-in for tests and demos.
    "activities": frozenset({"client", "worker", "sandbox", "bench"}),
    # The worker is the composition root that uses the client, never the other way round;
    # bench runs its own dev stack, so it is on the worker's side too.
    "client": frozenset({"worker", "bench"}),
    # The HTTP API is built on the client (RefundClient); the worker starts it, not the
    # other way round, and the sandbox is nothing it may know of.
    "api": frozenset({"worker", "bench", "sandbox"}),
}


def imported_packages(source: str, package: str) -> list[tuple[int, str]]:
    """(line, top-level package) of every import in `source`, a module of `package`.

    A relative import stays inside `package` (its own top-level package)."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            top = package if node.level else (node.module or "").split(".")[0]
            found.append((node.lineno, top))
    return found


def violations(package: str, path: Path, source: str) -> list[str]:
    return [
        f"{path.relative_to(PROJECT_ROOT)}:{line} imports {name}"
        for line, name in imported_packages(source, package)
        if name in FORBIDDEN[package]
    ]


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_module_imports_an_outer_layer(package: str) -> None:
    modules = sorted((PROJECT_ROOT / package).rglob("*.py"))
    assert modules, f"no modules found in {package}/"
    found = [v for path in modules for v in violations(package, path, path.read_text())]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    ("package", "source"),
    [
        ("client", "from worker.settings import Settings"),
        ("client", "def f():\n    import worker.devstack\n"),
        ("activities", "from client import RefundClient"),
        ("workflows", "import asyncpg"),
        ("workflows", "from activities.ports import OrderSystem"),
    ],
)
def test_a_forbidden_import_is_caught_wherever_it_stands(package: str, source: str) -> None:
    assert violations(package, PROJECT_ROOT / package / "example.py", source)


def test_allowed_imports_pass() -> None:
    source = "from workflows.models import RefundRequest\nfrom . import render\nimport json\n"
    assert not violations("client", PROJECT_ROOT / "client" / "example.py", source)
