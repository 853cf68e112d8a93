"""`refundflow sandbox fast-forward`: on the dev stack, a refund's own clock moves on and its
timers do what they do after hours or days (a trial could not rehearse a stalled refund)."""

from __future__ import annotations

import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import run_cli, wait_for_state
from tests.integration.test_cli import cli, cli_json
from tests.integration.test_reconciliation import awaiting_operator, findings_for, reconcile_cli
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


def test_a_review_left_for_25_hours_is_escalated_now(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "20000")
    ask = ["request", "--order", order["order_id"], "--amount", "20000", "--reason", "damaged"]
    refund_id = cli_json(stack, *ask)["refund_id"]  # above the auto-approve limit: review

    moved = cli(stack, "sandbox", "fast-forward", refund_id, "25h")
    assert moved.returncode == 0, moved.stderr
    assert moved.stdout.startswith(
        f"{refund_id}: 25h of its time skipped: pending_review, escalation 0 ->"
        " pending_review, escalation 1"
    ), moved.stdout
    status = cli_json(stack, "status", refund_id)
    assert status["escalation_level"] == 1 and status["timeline"][-1]["event"] == "escalated"
    again = cli_json(stack, "sandbox", "fast-forward", refund_id, "15d")
    assert again["after"]["state"] == "cancelled" and again["ended"], again  # expired in review


def test_fast_forward_mistakes_are_one_line(stack: DevStack) -> None:
    unknown = cli(stack, "sandbox", "fast-forward", "rf_" + "0" * 24, "1h")
    assert unknown.returncode == 1 and unknown.stderr.startswith(
        f"error: no refund rf_{'0' * 24}"
    ), unknown
    for wrong in ("25", "0h", "1w", "999999d"):
        said = cli(stack, "sandbox", "fast-forward", "rf_" + "0" * 24, wrong)
        assert said.returncode == 2, said
        assert "error: argument DURATION: " in said.stderr, said.stderr
        assert "Traceback" not in said.stderr


async def test_a_refund_moved_on_is_still_reconciled(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    """A trial: after a fast-forward, the refund's status row read as changed tomorrow, and
    reconciliation (refunds changed before now less its grace) skipped it: paid by the
    provider, it still asked an operator to pay."""
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    moved = await run_cli(stack.env(), "sandbox", "fast-forward", stuck.refund_id, "25h")
    assert moved[0] == 0, moved
    # Said before the wait, which a long skip makes (a trial waited 34 s with nothing said).
    assert moved[2].startswith(f"note: moving {stuck.refund_id}'s clock on by 25h;"), moved
    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    report = await reconcile_cli(stack)
    assert ("provider_refunded_not_completed", "healed") in findings_for(report, stuck.refund_id)
    await wait_for_state(refunds, stuck.refund_id, "completed")
