"""`refundflow list` as a customer prints their refunds as `track` tells them: no staff
columns (who acts, escalation level), which their rows no longer carry."""

from __future__ import annotations

from datetime import UTC, datetime

from client.render_listing import listing
from workflows.read_models import CustomerListedRefund


def test_a_customers_list_shows_each_refund_in_their_words() -> None:
    row = CustomerListedRefund(
        refund_id="rf_" + "a" * 24,
        order_id="ord_1",
        status="being reviewed",
        amount=150000,
        currency="USD",
        requested_at=datetime(2026, 11, 28, 9, 30, tzinfo=UTC),
    )
    header, line = listing([row]).splitlines()
    assert header.split() == ["REFUND", "ORDER", "REQUESTED", "AMOUNT", "STATUS"]
    assert line.split() == ["rf_" + "a" * 24, "ord_1", "2026-11-28", "1500.00", "USD", "being",
                            "reviewed"]  # fmt: skip
    assert listing([]) == "no refunds match"
