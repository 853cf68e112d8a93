"""Before a refund waits for anyone: the start is verified with the sources of its money
facts, and the amount and units are held against the order (invariants 2, 9 and 11)."""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows import names
    from workflows.budgets import withhold_auto_approval
    from workflows.eligibility import ledger_request
    from workflows.models import ReserveInput, ReserveResult
    from workflows.refund import patches
    from workflows.refund.case import RefundCase
    from workflows.refund.journal import Journal
    from workflows.states import RefundEvent, RefundState, TimelineEvent
    from workflows.verification import (
        AdmitInput,
        AdmitResult,
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


@dataclass(frozen=True)
class Paths:
    """Which admission a refund takes (ask_patches)."""

    reserve_first: bool
    """Hold the money before any approval (else: the refund counts as reserved)."""
    verify: bool
    """Check the start with the sources of its money facts."""
    in_one_call: bool
    """Both in one store call (ADMIT_IN_ONE_CALL)."""


async def admit(case: RefundCase, journal: Journal) -> bool:
    """Everything before a refund waits for anyone: the start verified, the policy's
    verdict, the money held. True when the refund goes on to approval; otherwise it has
    been declined (or was withdrawn meanwhile)."""
    paths = ask_patches(case, journal)
    if paths.in_one_call:
        admitted = await _admitted_in_one_call(case, journal)
    else:
        admitted = await _admitted_step_by_step(case, journal, paths)
    return admitted and case.p.state is RefundState.PENDING_REVIEW


def ask_patches(case: RefundCase, journal: Journal) -> Paths:
    """Which paths this refund takes.

    Every patch is asked here, before the first activity: asked after a local activity
    whose result arrived in a later workflow task, patched() answers False on replay
    where the run took the new path (measured). A replay of an older refund finds no
    ALL_ABOVE marker, so that ask writes nothing and the old asks follow unchanged.

    A refund whose start input says it started on RECORD_WITH_PAYMENT (RefundClient's, since
    2026-11-28), ADMIT_IN_ONE_CALL or ALL_ABOVE (before) takes that roll-up without asking:
    the input is in its history, so every replay decides the same, and it costs no marker and no
    TemporalChangeVersion upsert (a billable action). ADMIT_IN_ONE_CALL is asked of every
    other refund that takes ALL_ABOVE's paths, and RECORD_WITH_PAYMENT of every one that
    takes ADMIT_IN_ONE_CALL; a refund started before either finds no marker.
    Workers must understand a `started_on` value before any client sends it (deploy them
    first: a worker refuses a value it does not know, `patches.StartedOn`, so the refund
    waits for a newer one)."""
    if case.inp.started_on in (patches.RECORD_WITH_PAYMENT, patches.ADMIT_IN_ONE_CALL):
        _take_all_above(case, journal)
        case.p.record_with_payment = case.inp.started_on == patches.RECORD_WITH_PAYMENT
        return Paths(reserve_first=True, verify=True, in_one_call=True)
    if case.inp.started_on == patches.ALL_ABOVE or workflow.patched(patches.ALL_ABOVE):
        _take_all_above(case, journal)
        one_call = workflow.patched(patches.ADMIT_IN_ONE_CALL)
        # Asked only where the one above was taken: the roll-ups build on each other.
        case.p.record_with_payment = one_call and workflow.patched(patches.RECORD_WITH_PAYMENT)
        return Paths(reserve_first=True, verify=True, in_one_call=one_call)
    journal.local_fast_path = workflow.patched(patches.LOCAL_FAST_PATH)
    # Older refunds asked this one right after the one above, with nothing between.
    reserve_first = workflow.patched(patches.RESERVE_BEFORE_APPROVAL)
    case.p.confirm_hints = workflow.patched(patches.CONFIRM_SETTLEMENT_HINTS)
    verify = workflow.patched(patches.VERIFY_REQUEST)
    # New patches went last: a replay checks the markers in the order they were written.
    case.p.clear_escalation_on_close = workflow.patched(patches.ESCALATION_ENDS_WITH_REFUND)
    case.p.long_lived = workflow.patched(patches.LONG_LIVED_REFUND)
    case.p.local_fast_path = journal.local_fast_path
    return Paths(reserve_first=reserve_first, verify=verify, in_one_call=False)


def _take_all_above(case: RefundCase, journal: Journal) -> None:
    case.p.all_above = True
    case.p.confirm_hints = case.p.clear_escalation_on_close = True
    case.p.long_lived = case.p.local_fast_path = True
    journal.local_fast_path = True


async def _admitted_step_by_step(case: RefundCase, journal: Journal, paths: Paths) -> bool:
    """Refunds started before ADMIT_IN_ONE_CALL: verified, then held, in two store calls."""
    if paths.verify and not await verified(case, journal):
        return False
    if not case.decision.eligible:
        _decline_ineligible(case)
        return False
    return await reserved(case, journal, paths.reserve_first)


async def _admitted_in_one_call(case: RefundCase, journal: Journal) -> bool:
    """As `_admitted_step_by_step`, with the start's check and the hold in one store call;
    nothing is held for a start that does not hold up, or that the policy refuses."""
    problem = policy_text_problem(case.inp.policy)
    if problem:
        _decline_unverified(case, [problem])
        return False
    eligible = case.decision.eligible
    result = await journal.store_call(
        names.ACTIVITY_ADMIT_REFUND,
        AdmitInput(verify=_verify_input(case), reserve=_reserve_input(case) if eligible else None),
        AdmitResult,
        "verify and reserve",
    )
    if result.problems:
        _decline_unverified(case, result.problems)
        return False
    if result.reservation is None:
        _decline_ineligible(case)
        return False
    return _held(case, result.reservation)


async def verified(case: RefundCase, journal: Journal) -> bool:
    """Money facts in the start are checked with their sources; a start that does not
    hold up is declined before anything is held or paid."""
    problem = policy_text_problem(case.inp.policy)
    problems = [problem] if problem else []
    if not problems:
        result = await journal.store_call(
            names.ACTIVITY_VERIFY_REQUEST,
            _verify_input(case),
            VerifyRequestResult,
            "verify the request",
        )
        problems = result.problems
    if problems:
        _decline_unverified(case, problems)
    return not problems


async def reserved(case: RefundCase, journal: Journal, reserve_first: bool) -> bool:
    """Hold the amount against the order's capture and its units against the order's
    lines (invariants 2 and 9) before any approval. The edge usually holds them first;
    this finds that hold, and makes a start that bypassed the edge face the same rule."""
    if not reserve_first:
        case.p.reserved = True  # refunds started before reservations existed
        return True
    result = await journal.store_call(
        names.ACTIVITY_RESERVE_REFUND, _reserve_input(case), ReserveResult, "reserve"
    )
    return _held(case, result)


def _verify_input(case: RefundCase) -> VerifyRequestInput:
    return VerifyRequestInput(
        refund_id=case.inp.refund_id,
        policy_hash=case.inp.policy.content_hash,
        order=case.inp.order,
    )


def _reserve_input(case: RefundCase) -> ReserveInput:
    inp = case.inp
    return ledger_request(
        case.policy,
        inp.request,
        inp.order,
        inp.resolved,
        inp.refund_id,
        case.p.amount,
        auto_approve=case.decision.auto_approve,
    )


def _decline_unverified(case: RefundCase, problems: list[str]) -> None:
    if case.p.state is not RefundState.PENDING_REVIEW:
        return  # withdrawn while it was checked: nothing left to decline
    reason = "the request could not be verified: " + "; ".join(problems)
    case.apply(RefundEvent.DECLINE_INELIGIBLE, "refundflow", "refundflow", reason)


def _decline_ineligible(case: RefundCase) -> None:
    if case.p.state is not RefundState.PENDING_REVIEW:
        return  # withdrawn while it was checked: nothing left to decline
    reasons = "; ".join(o.message for o in case.decision.failed)
    case.apply(RefundEvent.DECLINE_INELIGIBLE, "policy", "policy", reasons)


def _held(case: RefundCase, result: ReserveResult) -> bool:
    """What the store's answer to the hold means for the refund: held (perhaps withheld
    from auto-approval by a spent budget), or declined for want of money left."""
    case.p.reserved = result.reserved
    if result.reserved and result.auto_approve_refused_because:
        # The order's or the customer's auto-approval budget is spent (policy v3 on):
        # the store said so under its locks; a reviewer decides this one.
        case.decision = withhold_auto_approval(
            case.policy, case.decision, result.auto_approve_refused_because, case.currency
        )
        case.p.withheld_because = result.auto_approve_refused_because
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
