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
from tests.integration.api_support import Api
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


def readme_example(which: int = 0) -> str:
    """The section's first (RefundClient) or second (HttpRefundClient) Python block."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### From a service: RefundClient", 1)[1].split("\n### ", 1)[0]
    found = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(found) > which, "the README lost an example of its RefundClient section"
    return str(found[which])


async def test_the_readme_example_requests_and_approves_a_refund(
    stack: DevStack, sandbox: Sandbox, tmp_path: Path
) -> None:
    order = await sandbox.order(amount=12000, customer_id="cust_42")  # as the demo's orders
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


async def test_the_readme_http_example_reads_a_refund_with_a_token_alone(
    stack: DevStack, sandbox: Sandbox, api: Api, tmp_path: Path
) -> None:
    order = await sandbox.order(amount=12000, customer_id="cust_5")
    made = await api.request_refund("cust_5", {"order_id": order["order_id"], "amount": 12000,
                                               "reason_code": "damaged"})  # fmt: skip
    assert made.status == 201, made.body
    script = tmp_path / "refund_status.py"
    script.write_text(readme_example(1))
    env = {  # no Temporal address, no database: the API's URL and a token
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(PROJECT_ROOT),
        "REFUNDFLOW_HOME": str(tmp_path),
        "REFUNDFLOW_API_URL": api.base,
        "REFUNDFLOW_TOKEN": api.token("reporting"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(script), made.body["refund_id"], env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    assert out.decode().startswith("pending_review Your refund of 120.00 USD is waiting")
