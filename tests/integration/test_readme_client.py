"""The README's RefundClient example, run as written against the test stack, so that the
code a service developer copies cannot drift from the product."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

from client.settings import PROJECT_ROOT
from tests.conftest import Sandbox
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


def readme_example() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### From a service: RefundClient", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found, "the README lost its RefundClient example"
    return found.group(1)


async def test_the_readme_example_requests_and_approves_a_refund(
    stack: DevStack, sandbox: Sandbox, tmp_path: Path
) -> None:
    order = await sandbox.order(amount=12000)
    script = tmp_path / "refund_demo.py"
    script.write_text(readme_example())
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(script),
        order["order_id"],
        env={**stack.env(), "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    first, second = out.decode().splitlines()[:2]
    assert first.startswith("pending_review Your refund of 120.00 USD is waiting for review")
    assert second in ("approved", "refunding", "completed")
