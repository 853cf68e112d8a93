"""Before a refund waits for anyone: the start is verified with the sources of its money
facts, and the amount and units are held against the order (invariants 2, 9 and 11)."""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.budgets import withhold_auto_approval
    from workflows.eligibility import ledger_request
    from workflows.models import ReserveResult
    from workflows.refund import patches
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import Journal
    from workflows.states import RefundEvent, RefundState, TimelineEvent
    from workflows.verification import (
        VerifyRequestInput,
        VerifyRequestResult,
        policy_text_problem,
    )


def record_request(case: RefundCase) -> None:
    """The refund's first entry, and its notice: who asked, for how much and why. Also
    what a caller answered at once is shown (client.starting), from the same code."""
    request = case.inp.request
    case.append(
        TimelineEvent.REQUESTED,
        None,
        request.requested_by,
        request.channel,
        f"{request.reason_code}: refund of {case.money()} requested"
        + (f", submitted by {request.submitted_by}" if request.submitted_by else ""),
        # Data, not a new path: requests made before there was an issuer record None.
        request.issuer,
    )
    case.notice(TimelineEvent.REQUESTED)


def ask_patches(case: RefundCase, journal: Journal) -> tuple[bool, bool]:
    """Which paths this refund takes: (reserve before approval, verify the request).

    Every patch is asked here, before the first activity: asked after a local activity
    whose result arrived in a later workflow task, patched() answers False on replay
    where the run took the new path (measured). A replay of an older refund finds no
    ALL_ABOVE marker, so that ask writes nothing and the old asks follow unchanged.

    A refund whose start input says it started on ALL_ABOVE (RefundClient's, since
    2026-11-26) asks nothing: the input is in its history, so every replay decides the
    same, and it costs no marker and no TemporalChangeVersion upsert (a billable action).
    Workers must understand a `started_on` value before any client sends it (deploy them
    first: a worker refuses a value it does not know, `patches.StartedOn`, so the refund
    waits for a newer one)."""
    if case.inp.started_on == patches.ALL_ABOVE or workflow.patched(patches.ALL_ABOVE):
        case.p.all_above = True
        case.p.confirm_hints = case.p.clear_escalation_on_close = True
        case.p.long_lived = case.p.local_fast_path = True
        journal.local_fast_path = True
        return True, True
    journal.local_fast_path = workflow.patched(patches.LOCAL_FAST_PATH)
    # Older refunds asked this one right after the one above, with nothing between.
    reserve_first = workflow.patched(patches.RESERVE_BEFORE_APPROVAL)
    case.p.confirm_hints = workflow.patched(patches.CONFIRM_SETTLEMENT_HINTS)
    verify = workflow.patched(patches.VERIFY_REQUEST)
    # New patches went last: a replay checks the markers in the order they were written.
    case.p.clear_escalation_on_close = workflow.patched(patches.ESCALATION_ENDS_WITH_REFUND)
    case.p.long_lived = workflow.patched(patches.LONG_LIVED_REFUND)
    case.p.local_fast_path = journal.local_fast_path
    return reserve_first, verify


async def verified(case: RefundCase, journal: Journal) -> bool:
    """Money facts in the start are checked with their sources; a start that does not
    hold up is declined before anything is held or paid."""
    problem = policy_text_problem(case.inp.policy)
    problems = [problem] if problem else []
    if not problems:
        result = await journal.store_call(
            names.ACTIVITY_VERIFY_REQUEST,
            VerifyRequestInput(
                refund_id=case.inp.refund_id,
                policy_hash=case.inp.policy.content_hash,
                order=case.inp.order,
            ),
            VerifyRequestResult,
            "verify the request",
        )
        problems = result.problems
    if problems:
        reason = "the request could not be verified: " + "; ".join(problems)
        case.apply(RefundEvent.DECLINE_INELIGIBLE, "refundflow", "refundflow", reason)
    return not problems


async def reserved(case: RefundCase, journal: Journal, reserve_first: bool) -> bool:
    """Hold the amount against the order's capture and its units against the order's
    lines (invariants 2 and 9) before any approval. The edge usually holds them first;
    this finds that hold, and makes a start that bypassed the edge face the same rule."""
    if not reserve_first:
        case.p.reserved = True  # refunds started before reservations existed
        return True
    inp = case.inp
    result = await journal.store_call(
        names.ACTIVITY_RESERVE_REFUND,
        ledger_request(
            case.policy,
            inp.request,
            inp.order,
            inp.resolved,
            inp.refund_id,
            case.p.amount,
            auto_approve=case.decision.auto_approve,
        ),
        ReserveResult,
        "reserve",
    )
    case.p.reserved = result.reserved
    if result.reserved and result.auto_approve_refused_because:
        # The order's or the customer's auto-approval budget is spent (policy v3 on):
        # the store said so under its locks; a reviewer decides this one.
        case.decision = withhold_auto_approval(
            case.policy, case.decision, result.auto_approve_refused_because, case.currency
        )
    if result.reserved or case.p.state is not RefundState.PENDING_REVIEW:
        return result.reserved
    case.apply(
        RefundEvent.DECLINE_OVER_REFUND,
        "refundflow",
        "refundflow",
        result.refused_because
        or f"only {case.money(max(result.remaining, 0))} of order"
        f" {case.inp.order.order_id} is still refundable",
    )
    return False
