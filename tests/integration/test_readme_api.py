"""The README's curl walkthrough of the HTTP API, run as written (in bash, with `refundflow
token` for the tokens) against the test stack's API, so the README cannot drift: the
customer's request (and the same again), support refused above its authority with the very
detail the README quotes, the lead's approval, another customer refused."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from client.settings import PROJECT_ROOT
from tests.conftest import Sandbox
from worker.devstack import DevStack

pytestmark = pytest.mark.stack
README_API = "http://127.0.0.1:8080"


def readme_commands() -> tuple[str, list[str], str]:
    """(the block's variable line, its curl commands, the block itself)."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("### Over HTTP: the API", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.S)
    assert found, "the README lost its curl walkthrough"
    block = found.group(1)
    joined = block.replace("\\\n", " ")
    lines = [line for line in joined.splitlines() if line and not line.startswith("#")]
    preamble = [line for line in lines if not line.startswith("curl")]
    assert len(preamble) == 1 and preamble[0].startswith("API="), preamble
    return preamble[0], [line for line in lines if line.startswith("curl")], block


def run(stack: DevStack, preamble: str, command: str) -> Any:
    env = {**stack.env(), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    script = f"{preamble.replace(README_API, stack.describe()['api_url'])}\n{command}"
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        env=env, capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, (command, done.stderr)
    return json.loads(done.stdout)


async def test_the_readme_curl_walkthrough_works_as_written(
    stack: DevStack, sandbox: Sandbox
) -> None:
    preamble, commands, block = readme_commands()
    assert len(commands) == 4, commands
    order = await sandbox.order(
        lines=[
            {"sku": "TV-55", "quantity": 1, "unit_price": 30000, "category": "electronics"},
            {"sku": "CABLE", "quantity": 2, "unit_price": 1500, "category": "general"},
        ],
        customer_id="cust_42",  # the walkthrough's order is hers (`sandbox order --customer`)
    )
    request = commands[0].replace("ord_…", order["order_id"])
    made = run(stack, preamble, request)
    # The customer's own view, as /track shows it: no staff, no actors.
    assert (made["status"], made["amount"]) == ("requested", 25500), made
    assert "state" not in made and "actor" not in made["timeline"][0]
    assert run(stack, preamble, request)["refund_id"] == made["refund_id"]  # the same refund

    def with_refund(command: str) -> str:
        return command.replace("rf_…", made["refund_id"])

    refused = run(stack, preamble, with_refund(commands[1]))
    assert refused["type"] == "urn:refundflow:problem:forbidden" and refused["status"] == 403
    assert f'"detail": "{refused["detail"]}"' in block.replace("\n#    ", " ")

    approved = run(stack, preamble, with_refund(commands[2]))
    assert approved["state"] in ("approved", "refunding", "completed"), approved
    other = run(stack, preamble, with_refund(commands[3]))
    # Told as a refund that does not exist: the same answer as for an unknown id.
    assert (other["status"], other["type"]) == (404, "urn:refundflow:problem:not-found")
    assert other["detail"] == f"no refund {made['refund_id']}"
    assert "404: no refund rf_…" in block
