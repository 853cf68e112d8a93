"""Which of the provider's refunds carrying a refund's id is its payment
(activities/http_adapters.this_refunds_payment): the one of its amount and currency, wherever
the provider lists it; one of another amount alone is refused, never taken and never paid
beside."""

from __future__ import annotations

import pytest

from activities.http_adapters import _provider_result, this_refunds_payment
from activities.ports import ExternalSystemRefused
from workflows.models import IssueRefundInput, ProviderRefundResult

REQUEST = IssueRefundInput(
    refund_id="rf_1",
    order_id="ord_1",
    payment_reference="pay_1",
    amount=4000,
    currency="USD",
    idempotency_key="rf_1:refund",
)


def listed(provider_refund_id: str, amount: int, status: str = "succeeded") -> ProviderRefundResult:
    return ProviderRefundResult.model_validate(
        {"provider_refund_id": provider_refund_id, "status": status, "amount": amount,
         "currency": "USD"}
    )  # fmt: skip


def test_its_own_payment_is_found_after_a_dashboard_refund_of_another_amount() -> None:
    found = [listed("re_dashboard", 100), listed("re_ours", 4000)]
    payment = this_refunds_payment(found, REQUEST)
    assert payment is not None and payment.provider_refund_id == "re_ours"


def test_one_of_another_amount_alone_is_refused_naming_both_amounts() -> None:
    with pytest.raises(ExternalSystemRefused) as refused:
        this_refunds_payment([listed("re_failed", 4000, "failed"), listed("re_d", 100)], REQUEST)
    assert refused.value.code == "provider_amount_mismatch"
    assert "re_d" in str(refused.value) and "1.00 USD, not 40.00 USD" in str(refused.value)


def test_none_that_moved_money_means_one_may_be_sent() -> None:
    assert this_refunds_payment([listed("re_x", 4000, "canceled")], REQUEST) is None
    assert this_refunds_payment([], REQUEST) is None


def test_a_provider_writing_its_currency_in_lower_case_is_read_as_iso() -> None:
    body = {"id": "re_1", "status": "succeeded", "amount": 4000, "currency": "usd"}
    payment = this_refunds_payment([_provider_result(body)], REQUEST)
    assert payment is not None and payment.currency == "USD"
