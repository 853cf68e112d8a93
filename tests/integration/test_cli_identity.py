"""The CLI as an API client: who it acts as (`--as`, the directory's default member, the
old --reviewer), what the API refuses them (one line, exit 1, nothing changed), and a token
from elsewhere (REFUNDFLOW_API_URL and REFUNDFLOW_TOKEN) with no stack in sight."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.integration.api_support import Api
from tests.integration.test_cli import cli, cli_json
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


def customer_refund(stack: DevStack, customer: str, amount: int = 30000) -> str:
    """A refund CUSTOMER asked for in their own name, waiting for a reviewer."""
    order = cli_json(stack, "sandbox", "order", "--amount", str(amount), "--customer", customer)
    requested = cli_json(
        stack, "--as", customer, "request", "--order", order["order_id"],
        "--amount", str(amount), "--reason", "damaged", "--channel", "web",
    )  # fmt: skip
    assert requested["status"] == "requested", requested  # the customer's own view
    refund_id = str(requested["refund_id"])
    assert cli_json(stack, "audit", refund_id)[0]["actor"] == customer
    return refund_id


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stdout == "" and "Traceback" not in result.stderr, result
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_who_may_approve_is_whom_the_cli_acts_as(stack: DevStack) -> None:
    refund_id = customer_refund(stack, "cust_1")

    own = cli(stack, "--as", "cust_1", "approve", refund_id)
    assert own.returncode == 1
    assert one_line(own) == "error: refused: a customer may not approve refunds"
    above = cli(stack, "--as", "alice", "approve", refund_id)
    assert above.returncode == 1
    assert one_line(above) == (
        "error: refused: alice (support) may approve up to 200.00 USD; approving 300.00 USD"
        " needs the lead role"
    )
    other = cli(stack, "--as", "cust_7", "track", refund_id)
    assert other.returncode == 1
    assert one_line(other) == f"error: no refund {refund_id}"  # as if there were none
    # An amount of 0 is refused as the bad input it is, never read as "the whole amount".
    nothing = cli(stack, "--as", "li", "approve", refund_id, "--amount", "0")
    assert nothing.returncode == 2 and "amount must be more than 0" in one_line(nothing)
    assert cli_json(stack, "status", refund_id)["state"] == "pending_review"

    allowed = cli_json(stack, "--as", "li", "approve", refund_id)
    assert allowed["state"] in ("approved", "refunding", "completed")
    approval = next(e for e in allowed["timeline"] if e["event"] == "approve")
    assert (approval["actor"], approval["source"]) == ("li", "api")


def test_reviewer_is_as_and_role_is_ignored_with_a_warning(stack: DevStack) -> None:
    refund_id = customer_refund(stack, "cust_2")
    # The role claimed is not believed: li approves as the lead the directory says he is.
    approved = cli(stack, "approve", refund_id, "--reviewer", "li", "--role", "finance")
    assert approved.returncode == 0, approved.stderr
    assert approved.stderr.strip() == (
        "warning: --role is ignored: the role comes from the staff directory (or your token)"
    )
    audit = cli_json(stack, "audit", refund_id)
    assert next(r for r in audit if r["event"] == "approve")["actor"] == "li"

    both = cli(stack, "--as", "bob", "reject", refund_id, "--reviewer", "li", "--reason", "x")
    assert both.returncode == 2
    assert one_line(both) == "error: --reviewer li and --as bob name different people: give one"


def test_the_json_errors_are_json(stack: DevStack) -> None:
    refund_id = customer_refund(stack, "cust_3")
    refused = cli(stack, "--as", "cust_3", "approve", refund_id, "--json")
    assert refused.returncode == 1 and refused.stdout == ""
    assert json.loads(refused.stderr) == {
        "error": "refused: a customer may not approve refunds",
        "exit_status": 1,
    }
    warned = cli(stack, "--as", "li", "approve", refund_id, "--role", "lead", "--json")
    assert warned.returncode == 0, warned.stderr
    assert json.loads(warned.stderr)["warning"].startswith("--role is ignored")
    assert json.loads(warned.stdout)["refund_id"] == refund_id


def outside(stack: DevStack, home: Path, token: str) -> dict[str, str]:
    """A shell with no stack of its own: the API's URL and a token, nothing else (no
    Temporal address, no database)."""
    return {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "REFUNDFLOW_HOME": str(home),
        "REFUNDFLOW_API_URL": stack.describe()["api_url"],
        "REFUNDFLOW_TOKEN": token,
    }


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_a_token_from_elsewhere_is_all_the_cli_needs(
    stack: DevStack, api: Api, tmp_path: Path
) -> None:
    refund_id = customer_refund(stack, "cust_4", amount=25000)
    env = outside(stack, tmp_path, api.token("li"))
    shown = run(env, "status", refund_id, "--json")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["state"] == "pending_review"
    listed = run(env, "list", "--state", "pending_review", "--json")
    assert refund_id in {r["refund_id"] for r in json.loads(listed.stdout)}
    approved = run(env, "approve", refund_id, "--json")
    assert approved.returncode == 0, approved.stderr
    timeline = json.loads(approved.stdout)["timeline"]
    assert next(e for e in timeline if e["event"] == "approve")["actor"] == "li"

    # The token says who acts: naming someone else is a usage mistake.
    named = run(env, "--as", "fang", "approve", refund_id)
    assert named.returncode == 2
    assert one_line(named).startswith("error: REFUNDFLOW_TOKEN says who you are")


@pytest.mark.parametrize("how", ["expired", "wrong audience", "wrong signature", "garbage"])
def test_a_wrong_or_expired_token_is_one_line_and_exit_1(
    stack: DevStack, api: Api, tmp_path: Path, how: str
) -> None:
    token = api.forged("li")[how]
    result = run(outside(stack, tmp_path, token), "list")
    assert result.returncode == 1
    said = one_line(result)
    assert said.startswith("error: the token") and token not in said, said


def test_an_api_that_does_not_answer_is_one_line(api: Api, tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "REFUNDFLOW_HOME": str(tmp_path),
        "REFUNDFLOW_API_URL": "http://127.0.0.1:9",
        "REFUNDFLOW_TOKEN": api.token("li"),
    }
    result = run(env, "status", "rf_" + "0" * 24)
    assert result.returncode == 1
    assert one_line(result) == (  # the hint names the REFUNDFLOW_HOME set, not this folder
        "error: cannot reach the API at http://127.0.0.1:9: nothing answers there (is"
        f" `refundflow dev` running with REFUNDFLOW_HOME={tmp_path}, or REFUNDFLOW_API_URL"
        " right?)"
    )


def test_without_an_api_the_cli_says_how_to_get_one(tmp_path: Path) -> None:
    started = time.monotonic()
    result = run({"PATH": "/usr/bin:/bin", "REFUNDFLOW_HOME": str(tmp_path)}, "list")
    assert result.returncode == 1 and time.monotonic() - started < 30
    said = one_line(result)
    assert "refundflow dev" in said and "REFUNDFLOW_TOKEN" in said, said


def test_a_customer_who_withdraws_sees_what_tracking_shows(stack: DevStack) -> None:
    refund_id = customer_refund(stack, "cust_3")
    answer = cli(stack, "--as", "cust_3", "cancel", refund_id, "--reason", "found it")
    assert answer.returncode == 0, answer.stderr
    tracked = cli(stack, "--as", "cust_3", "track", refund_id)
    assert answer.stdout == tracked.stdout and "was withdrawn" in answer.stdout
    # Not the staff's status: no reply to paste, no policy notes, no timeline of actors.
    staff = cli(stack, "status", refund_id)
    assert "reply" in staff.stdout.lower() and "reply" not in answer.stdout.lower()
