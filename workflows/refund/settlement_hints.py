"""Settlement signals (a webhook, reconciliation's heal) are hints: one counts only if the
provider itself lists that refund, created for this refund, with that status, and, when it
says the money went out, of this refund's amount and currency."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.models import (
        FindProviderRefundsInput,
        ProviderRefundResult,
        ProviderRefunds,
        ProviderSettlement,
    )
    from workflows.money import format_minor
    from workflows.refund import patches
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import STORE_RETRY, Journal
    from workflows.states import TimelineEvent


async def confirm_hints(case: RefundCase, journal: Journal) -> None:
    """Check the pending hints with the provider; record the ones it bears out as
    settlements, the rest as ignored, on the refund's record."""
    if not case.p.hints:
        return
    hints, case.p.hints = case.p.hints, {}
    found = await workflow.execute_activity(
        names.ACTIVITY_FIND_PROVIDER_REFUNDS,
        FindProviderRefundsInput(
            refund_id=case.inp.refund_id, payment_reference=case.inp.order.payment_reference
        ),
        result_type=ProviderRefunds,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=STORE_RETRY,
        summary="confirm settlement with the provider",
    )
    listed = {refund.provider_refund_id: refund for refund in found.refunds}
    for hint in hints.values():
        refund = listed.get(hint.provider_refund_id)
        says = refund.status if refund else "it made no such refund for this refund"
        if refund is not None and refund.status == hint.status:
            why_not = not_its_payment(case, hint, refund)
            if why_not is None:
                case.record_settlement(hint)
                continue
            says = why_not
        case.append(
            TimelineEvent.SETTLEMENT_UNCONFIRMED,
            case.p.state,
            UNVERIFIED,
            "signal",
            f"{_claimed(hint.source)} said provider refund {hint.provider_refund_id}"
            f" {hint.status}; the provider says {says}: ignored",
        )
    await journal.flush()


UNVERIFIED = "unverified sender"
"""Who a settlement the provider did not bear out came from, as its record says: a signal
names its own sender, and anyone who can reach Temporal can send one, so a forged one read
"by payment-provider via webhook" or "by reconciliation" (a red-team trial). Its claim is
in the words; what the provider says decides."""


def _claimed(source: str) -> str:
    if source == "signal":
        return "a signal"
    if source not in ("webhook", "poll", "reconciliation"):
        return "a signal from a sender refundflow does not know"
    return f"a signal that names {source} as its sender"


def not_its_payment(
    case: RefundCase, hint: ProviderSettlement, refund: ProviderRefundResult
) -> str | None:
    """Why a provider refund that did pay, under this refund's id, is not its payment (None:
    it is). One of another amount was made outside refundflow (someone at the provider's
    dashboard linked it by hand): taken, the refund would complete as paid in full and the
    customer be told so, with 1.00 of 42.00 paid (a review). The operator's retry refuses
    the same (activities/http_adapters.this_refunds_payment)."""
    if hint.status != "succeeded":
        return None  # a refund that moved no money pays nothing either way
    # ISO codes in any case: a result recorded before the adapter upper-cased them, or an
    # adapter that does not, is still the refund's own payment (a review).
    if case.is_its_amount(refund):
        return None
    # Asked only here, so refunds whose every hint is of their amount record no marker.
    if not workflow.patched(patches.SETTLEMENT_OF_ITS_AMOUNT):
        return None
    return (
        f"it succeeded for {format_minor(refund.amount, refund.currency.upper())}, not"
        f" {format_minor(case.p.amount, case.currency)} (made outside refundflow?), so it is"
        " not this refund's payment"
    )
