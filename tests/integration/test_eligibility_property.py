"""Property: what `eligibility` answers is what the refund then does, for random orders and
requests (amounts and lines, every reason, fees, closed windows, final sale, other refunds
already holding part of the order).

Deterministic in the test command: a fixed seed (FIXED_SEED), whose mix is known to exercise
every kind of answer. The seed in use is printed and is in every failure message.
`ELIGIBILITY_SEED=<n>` replays seed n; `ELIGIBILITY_SEED=random` draws a fresh one, for a
separate long run (about 3 % of seeds produce no auto-approved case and fail the mix check;
retry such a run with another seed, it proves nothing about the code)."""

from __future__ import annotations

import os
import random
from functools import partial
from typing import Any

import pytest

from client.errors import InvalidRefundRequest
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually
from workflows.models import REASON_CODES, RefundRequest, StatusView
from workflows.states import Awaiting, CancelReason, RefundState

pytestmark = pytest.mark.stack
CASES = 30
CATEGORIES = ("general", "electronics", "final_sale")
FIXED_SEED = 20261126


def chosen_seed() -> int:
    """FIXED_SEED, unless ELIGIBILITY_SEED names one or asks for a `random` one."""
    wanted = os.environ.get("ELIGIBILITY_SEED", "").strip()
    if wanted == "random":
        return random.randrange(2**32)
    return int(wanted) if wanted else FIXED_SEED


def random_order(rng: random.Random) -> dict[str, Any]:
    lines = [
        {
            "sku": f"SKU-{n}",
            "quantity": rng.randint(1, 3),
            "unit_price": rng.choice([300, 1500, 4000, 9000, 26000]),
            "category": rng.choice(CATEGORIES),
        }
        for n in range(rng.randint(1, 3))
    ]
    return {
        "lines": lines,
        "delivered_days_ago": rng.choice([None, 1, 12, 29, 31, 90]),
        "payment_rail": rng.choice(["card", "wallet", "bank_transfer"]),
    }


def random_request(rng: random.Random, order: dict[str, Any]) -> RefundRequest:
    fields: dict[str, Any] = {}
    if rng.random() < 0.4:
        fields["amount"] = rng.randint(1, order["captured_amount"] + 2000)
    else:
        chosen = rng.sample(order["lines"], rng.randint(1, len(order["lines"])))
        fields["lines"] = [
            {"sku": line["sku"], "quantity": rng.randint(1, line["quantity"] + 1)}
            for line in chosen
        ]
    return RefundRequest(
        refund_key=unique_key("prop"),
        order_id=order["order_id"],
        reason_code=rng.choice(REASON_CODES),
        channel="web",
        requested_by=order["customer_id"],
        **fields,
    )


def settled(status: StatusView) -> bool:
    if status.state in (RefundState.COMPLETED, RefundState.CANCELLED):
        return True
    return status.state is RefundState.PENDING_REVIEW and status.awaiting is Awaiting.REVIEWER


async def test_eligibility_answers_what_the_workflow_then_does(
    refunds_v2: RefundClient, sandbox: Sandbox
) -> None:
    seed = chosen_seed()
    print(f"eligibility property: ELIGIBILITY_SEED={seed}")  # shown with a failure's output
    rng = random.Random(seed)
    seen: dict[str, int] = {}
    for case in range(CASES):
        order = await sandbox.order(**random_order(rng))
        if rng.random() < 0.25:  # another refund already holds part of the order
            await refunds_v2.request(
                RefundRequest(
                    refund_key=unique_key("prior"),
                    order_id=order["order_id"],
                    amount=rng.randint(1, order["captured_amount"]),
                    reason_code="damaged",
                    channel="support",
                    requested_by=order["customer_id"],
                )
            )
        request = random_request(rng, order)
        answer = await refunds_v2.eligibility(request)
        where = f"seed {seed}, case {case}: {request!r} -> {answer.summary}"
        try:
            status = await refunds_v2.request(request)
        except InvalidRefundRequest as refused:
            assert answer.refused_at_request, f"{where}; refused: {refused}"
            seen["refused"] = seen.get("refused", 0) + 1
            continue
        assert not answer.refused_at_request, where
        final = await eventually(partial(refunds_v2.status, status.refund_id), settled)
        assert final.fee == answer.fee, where
        if answer.outcome == "auto_approved":
            assert final.state is RefundState.COMPLETED, where
            assert final.amount == answer.refund_amount, where
            paid = [r for r in await sandbox.refunds(order["order_id"]) if r["metadata"].get(
                "refund_id") == final.refund_id]  # fmt: skip
            assert [r["amount"] for r in paid] == [answer.refund_amount], where
        elif answer.outcome == "needs_review":
            assert final.state is RefundState.PENDING_REVIEW, where
            assert final.amount == answer.refund_amount, where
            assert final.approval_by == answer.approval_by, where
            assert final.evidence_required == answer.evidence_required, where
        else:
            assert final.state is RefundState.CANCELLED, where
            assert final.cancel_reason is CancelReason.INELIGIBLE, where
        seen[answer.outcome] = seen.get(answer.outcome, 0) + 1
    # The random mix must have exercised every kind of answer, or the property proves little.
    assert set(seen) == {"refused", "auto_approved", "needs_review", "not_eligible"}, (seed, seen)
