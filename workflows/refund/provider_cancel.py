"""An operator cancels a refund that is still pending with the provider (issue 11, item 4).

`operator cancel` on a refund waiting for the provider asks the provider to cancel its
refund first; only the provider's own "canceled" lets the refund close, so a refund the
provider paid meanwhile (or will not cancel: Stripe cancels only a refund that requires the
customer's action) is refused with the provider's reason and nothing changes. The payment
loop, woken by that settlement, finds the refund closed and stops (`closed_by_operator`).
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.activity_contracts import NO_MONEY, NOT_FINAL
    from workflows.models import (
        CheckRefundInput,
        FindProviderRefundsInput,
        OperatorCancelInput,
        ProviderRefundResult,
        ProviderRefunds,
        ProviderSettlement,
    )
    from workflows.money import format_minor
    from workflows.refund import failures
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import STORE_RETRY
    from workflows.states import Awaiting, RefundEvent, RefundState


def pending_refund(case: RefundCase) -> ProviderRefundResult | None:
    """The provider refund this refund waits on, if an operator may ask to cancel it."""
    pending = case.p.pending_settlement
    waiting = case.p.awaiting is Awaiting.PAYMENT_PROVIDER and case.p.operator_action is None
    if waiting and pending is not None and pending.status in NOT_FINAL:
        return pending
    return None


async def cancel_pending(case: RefundCase, inp: OperatorCancelInput) -> None:
    """Have the provider cancel the pending refund, then close this one (or raise why not)."""
    pending = pending_refund(case)
    assert pending is not None, "the validator lets only a pending refund through"
    await _no_other_live_refund(case, pending.provider_refund_id)
    try:
        answer: ProviderRefundResult = await workflow.execute_activity(
            names.ACTIVITY_CANCEL_PROVIDER_REFUND,
            CheckRefundInput(
                refund_id=case.inp.refund_id, provider_refund_id=pending.provider_refund_id
            ),
            result_type=ProviderRefundResult,
            start_to_close_timeout=timedelta(seconds=30),
            retry_policy=STORE_RETRY,
            summary="cancel provider refund",
        )
    except ActivityError as err:
        raise ApplicationError(
            f"cannot cancel: the provider did not cancel refund {pending.provider_refund_id}"
            f" ({failures.text(err)}); it may still pay, so the refund waits for it"
        ) from None
    if answer.status not in NO_MONEY:
        raise ApplicationError(
            f"cannot cancel: provider refund {pending.provider_refund_id} is {answer.status}"
        )
    if case.p.state is not RefundState.REFUNDING or pending_refund(case) is None:
        raise ApplicationError("cannot cancel: the refund moved on while the provider was asked")
    # The provider's own answer: the waiting payment loop takes it as the settlement.
    case.record_settlement(
        ProviderSettlement(
            provider_refund_id=pending.provider_refund_id,
            status="canceled" if answer.status == "canceled" else "failed",
            failure_code=answer.failure_code or "canceled at an operator's request",
            source="operator",
        )
    )
    reason = f"{inp.reason} (provider refund {pending.provider_refund_id} canceled)"
    case.apply(RefundEvent.OPERATOR_CANCEL, inp.operator, inp.source, reason, inp.issuer)


async def live_provider_refunds(case: RefundCase, summary: str) -> list[ProviderRefundResult]:
    """The provider's refunds for this refund that may still pay (or have): asked now."""
    found: ProviderRefunds = await workflow.execute_activity(
        names.ACTIVITY_FIND_PROVIDER_REFUNDS,
        FindProviderRefundsInput(
            refund_id=case.inp.refund_id, payment_reference=case.inp.order.payment_reference
        ),
        result_type=ProviderRefunds,
        start_to_close_timeout=timedelta(seconds=30),
        retry_policy=STORE_RETRY,
        summary=summary,
    )
    return [r for r in found.refunds if r.status not in NO_MONEY]


async def _no_other_live_refund(case: RefundCase, pending_id: str) -> None:
    found = await live_provider_refunds(case, "prove no other money moved")
    live = [r for r in found if r.provider_refund_id != pending_id]
    if live:
        raise ApplicationError(money_out_refusal(case, "cancel", live[0]))


def money_out_refusal(case: RefundCase, doing: str, live: ProviderRefundResult) -> str:
    """Why an operator may not close or pay another way a refund the provider holds a live
    refund for, and the way out. A trial: one of another amount made at the dashboard was
    refused with "retry instead", and the retry refused with "have the provider reverse it"."""
    said = f"cannot {doing}: provider refund {live.provider_refund_id}"
    if live.status != "succeeded":
        return f"{said} is {live.status}, so money may still move; retry to follow it"
    paid = format_minor(live.amount, live.currency)
    if case.is_its_amount(live):
        return f"{said} has paid {paid}, this refund's amount: retry instead (it takes it)"
    return (
        f"{said} has paid {paid}, not {case.money()} (made outside refundflow?): have the"
        " provider reverse it, then retry"
    )


def closed_by_operator(case: RefundCase) -> bool:
    """The payment loop, about to wait for an operator after the provider's "canceled":
    an operator already closed the refund that way (cancel_pending)."""
    return case.p.state is RefundState.CANCELLED
