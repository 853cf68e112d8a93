"""The payment guard's reading of a refund's record against the run asking to pay
(activities/own_record.py): which records past the run stop a payment."""

from __future__ import annotations

import pytest

from activities.own_record import OwnRecord
from workflows.models import IssueRefundInput


def paying(recorded_through: int | None) -> IssueRefundInput:
    return IssueRefundInput(
        refund_id="rf_1", order_id="ord_1", payment_reference="pay_1", amount=2400,
        currency="USD", idempotency_key="rf_1:refund", recorded_through=recorded_through,
    )  # fmt: skip


def record(state: str, awaiting: str, last_seq: int) -> OwnRecord:
    return OwnRecord(
        held=2400, hold_state="held", state=state, awaiting=awaiting, last_seq=last_seq
    )


@pytest.mark.parametrize(
    ("state", "awaiting", "last_seq"),
    [
        # at the run's own last entry, whatever its status says: the run wrote all of it
        ("refunding", "operator", 3),
        # past it, still with the provider: the run's SLA escalations while the call retries
        ("refunding", "payment_provider", 7),
    ],
)
def test_a_record_at_the_run_or_still_with_the_provider_is_paid(
    state: str, awaiting: str, last_seq: int
) -> None:
    assert record(state, awaiting, last_seq).moved_on(paying(3)) is None


@pytest.mark.parametrize(
    ("state", "awaiting", "says"),
    [
        ("refunding", "operator", "is refunding on its record (entry 4, waiting for an operator)"),
        ("cancelled", "nothing", "is cancelled on its record (entry 4)"),
        ("completed", "nothing", "is completed on its record (entry 4)"),
    ],
)
def test_a_record_past_the_run_and_away_from_the_provider_is_not_paid(
    state: str, awaiting: str, says: str
) -> None:
    refused = record(state, awaiting, 4).moved_on(paying(3))
    assert refused is not None and refused.startswith(
        f"not sent to the provider: refund rf_1 {says}, past this run's last entry (3)"
    ), refused


def test_runs_and_refunds_from_before_the_check_compare_nothing() -> None:
    assert record("cancelled", "nothing", 9).moved_on(paying(None)) is None
    no_row = OwnRecord(held=None, hold_state=None, state=None, awaiting=None, last_seq=None)
    assert no_row.moved_on(paying(3)) is None


def test_the_new_field_is_left_out_for_workers_before_it() -> None:
    assert "recorded_through" not in paying(None).model_dump()
    assert paying(3).model_dump()["recorded_through"] == 3
