"""Closing a refund whose workflow Temporal ended before the refund did (the Web UI's
Terminate, a run timeout, a failure): reconciliation's heal, once the payment provider has
said it holds no refund for it (cancelled) or that it paid it (completed).

Nothing runs the refund any more, so its last state is taken from its ended run (the
carry-over query, answered by replaying its history) and the closure is recorded with the
workflow's own code, as a workflow would record it: one audit entry (chained), the status
every channel reads (projection and view), the customer's and subscribers' notice, and
the hold released, in one transaction (`PostgresRefundStore.record_transitions`). So the
list, the status, the tracking page and the audit agree, and the customer is told.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from activities.audit_retries import AuditConflict
from activities.closing_advice import (
    EndedRun,
    cli_target,
    ended_before_its_first_step_was_kept,
    last_action_unkept,
    payment_may_be_on_its_way,
    person_decides,
    reset_command,
    run_it_on_from_the_start,
    utc_words,
)
from activities.pg_store import PostgresRefundStore
from activities.ports import ExternalSystemRefused, Inventory, PaymentProvider
from workflows import names
from workflows.activity_contracts import NO_MONEY, ProviderRefundResult, RestockInput
from workflows.models import RecordTransitionsInput
from workflows.money import format_minor
from workflows.refund import views
from workflows.refund.case import ContinuedRefundInput, RefundCase
from workflows.refund.payment import attempt_key
from workflows.states import TERMINAL_STATES, Awaiting, RefundEvent, RefundState
from workflows.vocabulary import PERSON_DECIDES

ACTOR = "reconciliation"
log = structlog.get_logger("refundflow.reconciliation")


async def close_dead_refund(
    temporal: Client,
    pool: asyncpg.Pool,
    payment: PaymentProvider,
    finding: dict[str, Any],
    inventory: Inventory,
) -> bool:
    """Heal a `workflow_closed_abnormally` finding: a refund whose workflow Temporal ended is
    closed as a workflow would close it. Cancelled, when the provider holds no refund for
    it; completed, when the provider paid it (one refund, succeeded, of the approved amount,
    while the refund was with the provider), its returned lines restocked as the workflow
    would. Otherwise only escalated (False), and `details["not_healed"]` says why: a
    payment still pending is looked at again by the next run. Temporal busy or no worker to
    replay the run: its error, so escalated and tried again."""
    refund_id = finding["refund_id"]
    details = finding["details"]
    # Asked again now, after the ledger snapshot: a late commit must not free the hold.
    found = await payment.find_refunds(refund_id)
    moved = [refund for refund in found if refund.status not in NO_MONEY]
    paid = None
    if moved:
        details["provider_refunds"] = [r.provider_refund_id for r in found]
        if len(moved) > 1 or moved[0].status != "succeeded":
            details["not_healed"] = _why_not_paid(moved)
            return False
        paid = Paid(moved[0], inventory, payment)
    ended = f"{details.get('temporal_status', 'ended')} {utc_words(details.get('closed_at'))}"
    run = EndedRun(refund_id, details.get("run_id"), ended.strip())
    in_flight = None if paid else partial(_payment_on_its_way, details, found)
    try:
        healed = await close_ended_refund(
            temporal, PostgresRefundStore(pool), run, paid, _what_it_holds(found), in_flight
        )
        if paid is not None and paid.not_recorded:
            details["not_healed"] = paid.not_recorded
        return healed
    except RPCError as err:
        if ended_before_its_first_step_was_kept(err):
            details["not_healed"] = run_it_on_from_the_start(run, cli_target(temporal))
            details[PERSON_DECIDES] = True
            return False
        if err.status != RPCStatusCode.NOT_FOUND or paid is not None:
            raise
        # Its history is gone (past retention): at least the list and the hold say what is
        # true; nothing can be told or audited from it.
        log.warning("closing_not_recorded", refund_id=refund_id, error=str(err))
    except AuditConflict as err:  # two runs wrote its trail: a person must look
        details["heal_error"] = str(err)
        return False
    except NotClosedHere as err:
        details["not_healed"] = str(err)
        details[PERSON_DECIDES] = True  # a person decides (not a heal to try again)
        return False
    except StillPaying as err:  # the next run looks again
        details["not_healed"] = str(err)
        return False
    except ClosedByItsRecord as err:  # closed as it should be: nothing left for anyone
        details["closed_by_its_record"] = str(err)
        return True
    return await _close_projection_only(pool, refund_id)


class StillPaying(Exception):
    """A call of the ended run's payment may still be on its way to the provider."""


def _payment_on_its_way(
    details: dict[str, Any], found: list[ProviderRefundResult], case: RefundCase
) -> str | None:
    """Why the refund is not closed "no money moved" yet: a call of its run's latest
    payment attempt may still be on its way (None: the provider holds that attempt's refund,
    or the run was not paying). An earlier attempt's failed refund is no proof: an
    operator's retry may be the call on its way (a review)."""
    latest = attempt_key(case.inp.refund_id, case.p.payment_attempt)
    if any(refund.idempotency_key == latest for refund in found):
        return None
    paying = case.p.state is RefundState.REFUNDING and case.p.awaiting is Awaiting.PAYMENT_PROVIDER
    return payment_may_be_on_its_way(details, run_paying=paying)


@dataclass
class Paid:
    """The provider's refund that paid a refund whose workflow ended, and the warehouse its
    returned lines go back to."""

    refund: ProviderRefundResult
    inventory: Inventory
    payment: PaymentProvider
    not_recorded: str | None = None
    """Why the payment was not recorded as the refund's end (a person must look)."""


def _what_it_holds(found: list[ProviderRefundResult]) -> str:
    """The provider's refunds of a refund no money moved for, as its audit says them."""
    if not found:
        return "the payment provider holds no refund for it"
    said = ", ".join(f"{r.provider_refund_id} {r.status}" for r in found)
    return f"the payment provider's refunds for it did not pay ({said})"


def _why_not_paid(moved: list[ProviderRefundResult]) -> str:
    if len(moved) > 1:
        return f"the provider holds {len(moved)} refunds for it that may have paid"
    return f"its provider refund is {moved[0].status}: looked at again by the next run"


async def close_ended_refund(
    temporal: Client,
    store: PostgresRefundStore,
    run: EndedRun,
    paid: Paid | None = None,
    provider_holds: str = "the payment provider holds no refund for it",
    in_flight: Callable[[RefundCase], str | None] | None = None,
) -> bool:
    """Record that the refund ended with its workflow run: cancelled (no money moved), or,
    with `paid`, completed by that payment, with whatever that run had not recorded yet.
    False: nothing to record, the payment cannot be the refund's (`paid.not_recorded`), or
    the refund runs again (an operator reset it since). Temporal's errors and AuditConflict
    are the caller's."""
    handle = temporal.get_workflow_handle(run.refund_id, run_id=run.run_id)
    carried: ContinuedRefundInput = await handle.query(
        names.QUERY_CARRY_OVER, result_type=ContinuedRefundInput
    )
    now = datetime.now(UTC)
    case = RefundCase(carried, lambda: now)
    target = cli_target(temporal)
    await check_run_holds_the_record(store, case, target, partial(_runs_of, temporal, run))
    if paid is None and in_flight is not None and (on_its_way := in_flight(case)):
        raise StillPaying(on_its_way)
    if case.p.state not in TERMINAL_STATES:
        if paid is not None:
            if not await _record_payment(case, run, paid):
                return False
        else:
            if _item_asked_for(case) and not await _runs_again(temporal, run):
                raise NotClosedHere(person_decides(case, run, target))
            case.apply(
                RefundEvent.CLOSED_IN_TEMPORAL,
                ACTOR,
                ACTOR,
                f"its workflow was {run.ended} in Temporal, and {provider_holds}: no money moved",
            )
            case.p.escalation = 0  # nobody needs to act (also refunds from before that rule)
    # Also what the ended run decided but had not recorded yet (ended between the two).
    entries, notices = case.unrecorded()
    if not entries or await _runs_again(temporal, run):
        return False
    await store.record_transitions(
        RecordTransitionsInput(
            refund_id=run.refund_id,
            entries=entries,
            projection=views.projection(case),
            notices=notices,
            conflict_is_final=True,
            view=views.status(case),
        )
    )
    return True


class NotClosedHere(Exception):
    """Why reconciliation leaves an ended refund to a person (its words say what to do)."""


def _item_asked_for(case: RefundCase) -> bool:
    """An approved refund whose policy pays once the item is back has asked the customer to
    send it (and the warehouse may have it): closed "no money moved", a customer who sent
    it would have neither (a trial). Not once its return window has passed with nothing
    received: the workflow would have closed it then too."""
    p = case.p
    if not case.policy.refund.awaits_item(case.inp.request.reason_code):
        return False
    if p.state is RefundState.REFUNDING or p.item_received:  # the warehouse has it (kept
        return True  # from before the approval, too)
    _, item_due, _ = views.eta(case)
    return p.state is RefundState.APPROVED and item_due is not None and case.clock() < item_due


class ClosedByItsRecord(Exception):
    """The refund's record closed it after the run's last entry: a worker that went on with
    the run's last step after Temporal ended it (a red-team trial's finding read "reset")."""


class RunBehindRecord(NotClosedHere):
    """The ended run is not the one that wrote the refund's record: a Reset in Temporal to
    before it, which then ended without acting (AUDIT_SUPERSEDED_ERROR). Its state is not
    the refund's, so nothing is recorded from it."""


async def check_run_holds_the_record(
    store: PostgresRefundStore,
    case: RefundCase,
    target: str,
    runs: Callable[[], Awaitable[int]] | None = None,
) -> None:
    """Raise unless the ended run holds the refund's record. `runs`: how many runs of the
    refund Temporal lists that did not continue as new, asked only when the record is past
    the run; one means no reset: the run's last step went unkept."""
    recorded = await store.audit_trail(case.inp.refund_id)
    held = {e.seq: (e.event, e.state.value, e.actor) for e in case.p.timeline}
    # The record's last entry is the run's own, unless another run wrote it (a run that
    # follows another's same-state entries writes its own after them: still its own last).
    last = recorded[-1] if recorded else None
    if last is None or held.get(last.seq) == (last.event, last.to_state.value, last.actor):
        return
    if last.to_state in TERMINAL_STATES:
        raise ClosedByItsRecord(
            f"its record closed it ({last.to_state.value}, entry {last.seq} by {last.actor}):"
            " its worker recorded the end after Temporal ended the run; nothing to do"
        )
    past = [e for e in recorded if e.seq > case.p.seq_base + len(case.p.timeline)]
    if past and runs is not None and await runs() == 1:
        raise RunBehindRecord(last_action_unkept(case.inp.refund_id, past[0], last, target))
    mine = case.p.timeline[-1]
    reset = reset_command(
        case.inp.refund_id, "<that run id>", "LastWorkflowTask", target, "run on from the record"
    )
    raise RunBehindRecord(
        f"its ended run was reset to before the refund's record: it ends with {mine.event}"
        f" by {mine.actor}, the record with {last.event} by {last.actor} (entry {last.seq},"
        f" {last.to_state.value}); nothing recorded from it. To run the refund on from its"
        f" record, reset the run that wrote it: `temporal workflow list --query"
        f" 'WorkflowId=\"{case.inp.refund_id}\"' -o json{target}` lists the runs (`runId`);"
        f" {reset}"
    )


async def _record_payment(case: RefundCase, run: EndedRun, paid: Paid) -> bool:
    """The provider's payment recorded as the refund's completion, as the workflow records
    it (restock first, then confirmed), if it can be this refund's: taken while the refund
    was with the provider, of the amount approved, in its currency."""
    money = paid.refund
    if case.p.state is not RefundState.REFUNDING:
        paid.not_recorded = f"it was {case.p.state.value}, not with the payment provider"
    elif (money.amount, money.currency) != (case.p.amount, case.currency):
        paid.not_recorded = (
            f"the provider paid {format_minor(money.amount, money.currency)}, not the"
            f" {format_minor(case.p.amount, case.currency)} approved"
        )
    elif not await _on_its_payment(case, paid):
        paid.not_recorded = (
            f"provider refund {money.provider_refund_id} carries its id but is not on the"
            " order's payment (made outside refundflow?)"
        )
    if paid.not_recorded:
        return False
    case.p.provider_refund_id = money.provider_refund_id
    case.p.escalation = 0  # nobody needs to act, unless the warehouse refuses below
    if case.p.item_received:
        await _restock(case, paid.inventory)
    case.apply(
        RefundEvent.PROVIDER_CONFIRMED,
        ACTOR,
        ACTOR,
        f"provider refund {money.provider_refund_id} succeeded (its workflow was {run.ended}"
        " in Temporal; recorded by reconciliation)",
    )
    return True


async def _on_its_payment(case: RefundCase, paid: Paid) -> bool:
    """Whether the provider lists the payment on the order's own payment: one made at its
    dashboard on another payment, this refund's id typed in, is not its (a review; as the
    workflow's own look-ups keep to its payment)."""
    reference = case.inp.order.payment_reference
    found = await paid.payment.find_refunds(case.inp.refund_id, reference)
    return any(r.provider_refund_id == paid.refund.provider_refund_id for r in found)


async def _restock(case: RefundCase, inventory: Inventory) -> None:
    """Each returned line back to stock under the workflow's own keys, so a line its run
    restocked already is not restocked twice; a refusal is escalated, as there."""
    for line in case.inp.resolved.lines:
        request = RestockInput(
            refund_id=case.inp.refund_id,
            sku=line.sku,
            quantity=line.quantity,
            idempotency_key=f"{case.inp.refund_id}:restock:{line.sku}",
        )
        try:
            await inventory.restock(request)
        except ExternalSystemRefused as err:
            case.escalate("inventory", f"restock of {line.sku} refused: {err}", "inventory")


async def _runs_of(temporal: Client, run: EndedRun) -> int:
    """Its runs but those that continued as new (a long wait's chain is no reset, a review)."""
    query = f"WorkflowId = '{run.refund_id}' AND ExecutionStatus != 'ContinuedAsNew'"
    return sum([1 async for _ in temporal.list_workflows(query)])


async def _runs_again(temporal: Client, run: EndedRun) -> bool:
    """Whether a later run than the ended one exists now (a Reset, a reopening): that run
    writes the refund's trail itself. Asked last, so a race has only the write's window."""
    latest = await temporal.get_workflow_handle(run.refund_id).describe()
    return run.run_id is not None and latest.run_id != run.run_id


async def _close_projection_only(pool: asyncpg.Pool, refund_id: str) -> bool:
    async with pool.acquire() as conn, conn.transaction():
        closed = await conn.execute(
            "UPDATE refundflow.refund_status SET state = 'cancelled', awaiting = 'nothing',"
            " escalation_level = 0, updated_at = now()"
            " WHERE refund_id = $1 AND state NOT IN ('completed', 'cancelled')",
            refund_id,
        )
        await conn.execute(
            "UPDATE refundflow.reservations SET state = 'released', updated_at = now()"
            " WHERE refund_id = $1 AND state = 'held'",
            refund_id,
        )
    return bool(closed == "UPDATE 1")
