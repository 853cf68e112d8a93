"""The worker runs our `workflows` package directly, not in Temporal's sandbox
(worker/sandbox.py), so calls such as `datetime.now()` are not refused at run time there;
and even Temporal's default sandbox, which the workflow tests and the replays use, checks
only the few modules it re-imports per run (most of the package is imported inside
`imports_passed_through()`). This scan is the check for every module of the package: the
clock, randomness, the environment, files, the network and imports by name never reach
workflow code. A script's `if __name__ == "__main__":` block is not workflow code."""

from __future__ import annotations

import ast
from pathlib import Path

import workflows

PACKAGE = Path(workflows.__file__).parent
# Modules whose use in workflow code would make a replay decide differently.
FORBIDDEN_MODULES = {
    "random", "secrets", "time", "uuid", "os", "sys", "socket", "threading", "subprocess",
    "urllib", "http", "aiohttp", "asyncpg", "requests", "httpx",
    "io", "pathlib", "tempfile", "shutil", "glob", "importlib",
}  # fmt: skip
# Attributes that read the clock, called or handed on (`default_factory=datetime.now`):
# workflow.now is the deterministic one, and an injected clock is read as `self.clock()`.
CLOCK_ATTRIBUTES = {"now", "utcnow", "today", "fromtimestamp"}
# Builtins that reach files or import modules by name.
FORBIDDEN_BUILTINS = {"open", "__import__", "exec", "eval"}


def _script_blocks(tree: ast.AST) -> set[ast.AST]:
    """Every node inside an `if __name__ == "__main__":` block."""
    skipped: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            skipped.update(child for part in node.body for child in ast.walk(part))
    return skipped


def _imported(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
        return [node.module.split(".")[0]]
    return []


def _problems(source: str, label: str) -> list[str]:
    tree = ast.parse(source)
    skipped = _script_blocks(tree)
    found = []
    for node in ast.walk(tree):
        if node in skipped:
            continue
        where = f"{label}:{getattr(node, 'lineno', 0)}"
        forbidden = [name for name in _imported(node) if name in FORBIDDEN_MODULES]
        found += [f"{where} imports {name}" for name in forbidden]
        if isinstance(node, ast.Attribute) and node.attr in CLOCK_ATTRIBUTES:
            owner = node.value
            if not (isinstance(owner, ast.Name) and owner.id == "workflow"):
                found.append(f"{where} reads .{node.attr}")
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            if node.id in FORBIDDEN_BUILTINS:
                found.append(f"{where} uses {node.id}")
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
        "import random\nimport pathlib\nfrom datetime import datetime\n"
        "from temporalio import workflow\nfrom pydantic import Field\n"
        "x = datetime.now()\ny = workflow.now()\nz = open('f')\n"
        "stamp = Field(default_factory=datetime.now)\nt = __import__('time')\n"
        "if __name__ == '__main__':\n    import sys\n    print(datetime.now())\n"
    )
    found = sorted(problem.split(" ", 1)[1] for problem in _problems(sample, "sample"))
    assert found == [
        "imports pathlib", "imports random", "reads .now", "reads .now", "uses __import__",
        "uses open",
    ]  # fmt: skip
