"""`refundflow acknowledge`: a finding reconciliation cannot heal (a customer paid twice) is
said to be dealt with outside refundflow, so `reconcile --check` stops alerting on every run
while the money stays as acknowledged (a trial's cron job alerted forever); a change is news
again, and every channel still shows the finding with who acknowledged it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, run_cli
from tests.integration.test_reconciliation import reconcile_cli
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack

pytestmark = pytest.mark.stack

KIND = "paid_elsewhere_and_by_provider"


async def test_an_acknowledged_double_payment_stops_alerting_until_it_changes(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin, stack: DevStack
) -> None:
    # 40.00 of an 80.00 order, refused by the provider, paid elsewhere by an operator, then
    # paid by the provider too (from its dashboard): the customer has it twice.
    order = await sandbox.order(amount=8000)
    await faults.set_faults({"payment.refuse": "expired_card"})
    made = await refunds.request(make_request(order, amount=4000))
    stuck = await eventually(
        lambda: refunds.status(made.refund_id), lambda s: s.awaiting.value == "operator"
    )
    await faults.clear_faults()
    await refunds.operator_paid_elsewhere(stuck.refund_id, "omar", "SEPA TX-4411")
    await sandbox.provider_refund(order, stuck.refund_id, 4000)
    await reconcile_cli(stack, "--check", exit_status=3)
    env, rf = stack.env(), stuck.refund_id

    early = await run_cli(env, "acknowledge", "provider_money_above_ledger", "--refund", rf,
                          "--by", "omar", "--reason", "x")  # fmt: skip
    assert early[0] == 1 and early[2].startswith(
        f"error: nothing to acknowledge: no open provider_money_above_ledger finding for {rf}"
    ), early
    # Named by its order, the refund's finding is pointed at (a trial: "no open finding").
    by_order = await run_cli(env, "acknowledge", KIND, "--order", order["order_id"], "--by",
                             "omar", "--reason", "x")  # fmt: skip
    assert (
        by_order[0] == 1 and f"it is on its refund {rf}; name it with --refund" in (by_order[2])
    ), by_order
    code, out, err = await run_cli(
        env, "acknowledge", KIND, "--refund", rf, "--by", "omar",
        "--reason", "customer repaid 40.00 by bank transfer",
    )  # fmt: skip
    assert code == 0, err
    assert "(acknowledged by omar" in out and "customer repaid 40.00" in out, out

    twice = await run_cli(env, "acknowledge", KIND, "--refund", rf, "--by", "omar",
                          "--reason", "customer repaid 40.00 by bank transfer")  # fmt: skip
    assert twice[0] == 0 and twice[2].strip() == (
        "note: replaces the acknowledgement by omar: customer repaid 40.00 by bank transfer"
    ), twice
    mine = await checked(stack, rf, order["order_id"])
    assert [(f["kind"], f["action"], f.get("acknowledged_by")) for f in mine] == [
        (KIND, "escalated", "omar")
    ]
    # Still shown where staff look, with who acknowledged it.
    status = await run_cli(env, "status", rf)
    assert f"escalated {KIND} for {rf}" in status[2] and "acknowledged by omar" in status[2]

    # Paid more again: the money is not as acknowledged, so it is news again.
    await sandbox.provider_refund(order, rf, 1000)
    again = await checked(stack, rf, order["order_id"])
    assert KIND in {f["kind"] for f in again if not f.get("acknowledged_by")}, again


async def checked(stack: DevStack, refund_id: str, order_id: str) -> list[dict[str, Any]]:
    """`reconcile --check`'s findings on the refund and its order, once its exit status is
    seen to be what the whole run's findings make it: 3 while any (on this shared stack,
    others' too) is neither healed nor acknowledged."""
    code, out, err = await run_cli(stack.env(), "reconcile", "--grace", "0", "--json", "--check")
    found = json.loads(out)["details"]
    waiting = [f for f in found if f["action"] != "healed" and not f.get("acknowledged_by")]
    assert code == (3 if waiting else 0), (code, err)
    return [f for f in found if f["refund_id"] == refund_id or f["order_id"] == order_id]


async def test_acknowledge_is_refused_where_it_cannot_apply(stack: DevStack) -> None:
    env = stack.env()
    refused = await run_cli(env, "--as", "omar", "acknowledge", KIND, "--order", "ord_1",
                            "--by", "omar", "--reason", "x")  # fmt: skip
    assert refused[0] == 2 and "--as has no effect on `acknowledge`" in refused[2], refused
    unnamed = await run_cli(env, "acknowledge", KIND, "--order", "ord_1", "--reason", "x")
    assert unnamed[0] == 2 and "--by" in unnamed[2], unnamed
    # A refund that still needs its workflow is run on, not acknowledged away (a review).
    ended = await run_cli(env, "acknowledge", "workflow_closed_abnormally", "--refund",
                          "rf_" + "0" * 24, "--by", "omar", "--reason", "x")  # fmt: skip
    assert ended[0] == 1 and "is not acknowledged: run it on" in ended[2], ended
    stranger = await run_cli(env, "acknowledge", KIND, "--order", "ord_1", "--by", "omr",
                             "--reason", "x")  # fmt: skip
    assert stranger[0] == 2 and "did you mean omar?" in stranger[2], stranger
    # Not --as's words (a trial was told how customers are named, then refused one).
    assert "--by omr: not in the dev stack's staff directory" in stranger[2], stranger
    assert "a customer is named" not in stranger[2], stranger
    customer = await run_cli(env, "acknowledge", KIND, "--order", "ord_1", "--by", "cust_42",
                             "--reason", "x")  # fmt: skip
    assert customer[0] == 2 and "a member of staff acknowledges" in customer[2], customer
    nothing = await run_cli(env, "acknowledge", KIND, "--order", "ord_1", "--by", "omar",
                            "--reason", "x")  # fmt: skip
    assert (
        nothing[0] == 1
        and "no open paid_elsewhere_and_by_provider finding for ord_1" in (nothing[2])
    ), nothing
