"""The worker runs our `workflows` package directly, not in Temporal's sandbox
(worker/sandbox.py), so calls such as `datetime.now()` are not refused at run time there.
This scan refuses them in the source instead, for every module of the package: the clock,
randomness, the environment, files and the network never reach workflow code."""

from __future__ import annotations

import ast
from pathlib import Path

import workflows

PACKAGE = Path(workflows.__file__).parent
# Modules whose use in workflow code would make a replay decide differently.
FORBIDDEN_MODULES = {
    "random", "secrets", "time", "uuid", "os", "socket", "threading", "subprocess",
    "urllib", "http", "aiohttp", "asyncpg", "requests", "httpx",
}  # fmt: skip
# Attribute calls that read the clock: workflow.now() is the deterministic one.
CLOCK_CALLS = {"now", "utcnow", "today", "fromtimestamp"}


def _problems(source: str, label: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source)):
        where = f"{label}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module.split(".")[0]]
        else:
            names = []
        found += [f"{where} imports {name}" for name in names if name in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            if node.func.attr in CLOCK_CALLS and not (
                isinstance(owner, ast.Name) and owner.id == "workflow"
            ):
                found.append(f"{where} calls .{node.func.attr}()")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id == "open":
                found.append(f"{where} calls open()")
    return found


def test_no_workflow_module_reads_the_clock_randomness_the_environment_or_the_network() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 20  # the whole package, refund/ included
    problems = [
        problem
        for module in modules
        for problem in _problems(module.read_text(), str(module.relative_to(PACKAGE.parent)))
    ]
    assert problems == []


def test_the_scan_finds_what_it_refuses() -> None:
    sample = (
        "import random\nfrom datetime import datetime\nfrom temporalio import workflow\n"
        "x = datetime.now()\ny = workflow.now()\nz = open('f')\n"
    )
    found = sorted(problem.split(" ", 1)[1] for problem in _problems(sample, "sample"))
    assert found == ["calls .now()", "calls open()", "imports random"]
