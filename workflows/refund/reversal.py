"""A refund the provider reversed after paying it: the case reopens in a new run.

Providers take back refunds they reported paid (a bank returns the money: Stripe's refund
turning `failed` after `succeeded`, Adyen's REFUND_FAILED or REFUNDED_REVERSED). The refund's
workflow has completed by then, so the reversal starts a new run of the same workflow id
(activities/reversals.py, from a webhook or reconciliation, after confirming the reversal with
the provider), carrying the whole state as continue-as-new does. Queries, updates, the audit
trail and the idempotency keys stay the refund's own; the reopened run records the reversal
(completed -> refunding), tells the customer and subscribers (`refund.reversed`) and waits
for an operator: retry (a new provider refund, under a new key), mark paid elsewhere with
proof, or cancel. No money moves again without that decision.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.models import ProviderSettlement
    from workflows.refund import patches
    from workflows.refund.case import MAX_ESCALATION, RefundCase
    from workflows.refund.journal import Journal
    from workflows.refund.payment import Payment
    from workflows.states import Awaiting, RefundEvent, TimelineEvent


def reopen(case: RefundCase, reversal: ProviderSettlement) -> None:
    """Record the confirmed reversal and hand the refund to an operator."""
    p = case.p
    reversed_id = reversal.provider_refund_id
    code = reversal.failure_code or "no reason given"
    p.reversals.append(reversed_id)
    p.reversal_open = True
    # The provider's earlier "succeeded" no longer holds: a late repeat of it is ignored,
    # and it can never count as payment again.
    p.settlements[reversed_id] = reversal
    p.hints.pop(reversed_id, None)
    p.provider_refund_id = None
    p.pending_settlement = p.waits_on = None
    p.operator_action = None
    p.refunding_since = workflow.now()
    p.operator_note = f"refund {reversed_id} reversed by the provider after it was paid: {code}"
    p.refused_by = "payment-provider"
    case.set_awaiting(Awaiting.OPERATOR)
    case.apply(
        RefundEvent.PROVIDER_REVERSED,
        "payment-provider",
        reversal.source,
        f"provider refund {reversed_id} reversed after it was paid ({code}); confirmed with"
        " the provider",
    )
    p.escalation = MAX_ESCALATION
    case.append(
        TimelineEvent.ESCALATED,
        p.state,
        "payment-provider",
        "payment",
        f"level {p.escalation}: payment reversed: an operator decides (retry, paid elsewhere"
        " or cancel)",
    )


async def reopened(case: RefundCase, journal: Journal, payment: Payment) -> None:
    """The reopened run: record the reversal, then wait for the operator's decision and
    carry it out (the payment loop's operator wait)."""
    reversal = getattr(case.inp, "reversal", None)
    assert reversal is not None, "only a run started to reopen a reversed refund"
    # Asked before the first activity, as _lifecycle asks its own: asked after a local
    # activity whose result came in a later workflow task, patched() answers differently
    # on replay (measured: the reopened run's replay failed on operator-paid-exit).
    if not case.p.all_above:  # a refund started on ALL_ABOVE asks none of them
        workflow.patched(patches.OPERATOR_PAID_EXIT)
        workflow.patched(patches.WATCH_PROVIDER_CALL)
        workflow.patched(patches.RECORD_PAYMENT_BEFORE_RESTOCK)
    reopen(case, reversal)
    await journal.flush()
    await payment.pay(resume=True)
