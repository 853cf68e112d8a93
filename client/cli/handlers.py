"""What each client command does: take its arguments, call the system, print the result.

HANDLERS maps a command's name to its handler. A handler returns the exit status, or a
coroutine that does (the app runs it in a fresh event loop). Mistakes are raised as
UserError or RefundflowError; the app turns them into one line and an exit status.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from pydantic import ValidationError

from client import render, render_findings, render_listing
from client.cli import acting, operations, sandbox_handlers, subscribers
from client.cli.acting import with_api
from client.cli.arguments import EXIT_FAILURE, EXIT_NEEDS_A_PERSON, EXIT_OK, UserError
from client.cli.output import emit, note
from client.errors import NotAllowed, RefundflowError
from client.review_context import ITEM_BACK, alike_note, as_stopped, escalated_when_ended
from client.settings import Settings
from workflows.models import StatusView
from workflows.states import TERMINAL_STATES, Awaiting, CancelReason, RefundState
from workflows.wording import first_approver, kept_receipt_entry

DECLINED_AT_REQUEST = (CancelReason.INELIGIBLE, CancelReason.EXCEEDS_REFUNDABLE)

Handler = Callable[[argparse.Namespace], int | Coroutine[Any, Any, int]]


def _refund_request(args: argparse.Namespace, **fields: Any) -> Any:
    """The RefundRequest a command line describes (request and eligibility)."""
    from workflows.models import RefundRequest

    try:
        return RefundRequest(
            order_id=args.order,
            amount=args.amount,
            lines=[{"sku": s, "quantity": q} for s, q in args.line] if args.line else None,
            reason_code=args.reason,
            **fields,
        )
    except ValidationError as err:
        raise UserError(render.validation_error(err)) from None


async def _request(args: argparse.Namespace) -> int:
    from client.http_client import ORDER_CUSTOMER
    from client.refund_ids import default_refund_key
    from workflows.read_models import CustomerView

    request = _refund_request(
        args,
        refund_key=args.key or default_refund_key(args.order, args.amount, args.line, args.reason),
        currency=args.currency,
        channel=acting.channel(args),
        requested_by=acting.requester(args, staff_default=ORDER_CUSTOMER),
        locale=args.locale,
    )
    first_step = not args.no_wait
    status, asked_before = await with_api(
        args, lambda c: c.request_again_or_new(request, first_step=first_step)
    )
    if isinstance(status, CustomerView):  # a customer is answered as `track` shows it
        if asked_before:
            # The same key (given, or derived from the same request) answers with the same
            # refund, closed or not: a trial's customer, told "you can ask again", could not.
            # (A customer's view words its state in their language: said either way.)
            note(
                args,
                f"note: this request was already made: refund {status.refund_id}; if it"
                " closed without a refund, ask again with a new --key",
            )
        emit(args, status, _status_or_track)
        return EXIT_OK
    if asked_before:
        # Same key (given, or derived from the same order, amount, lines and reason): the
        # answer is the refund asked for before, whatever became of it. Say so.
        note(args, render.already_requested(status))
    emit(args, status, render.status)
    # Declined by the policy or the order's ledger as its first step: the system said no,
    # so a script checking the exit status does not take it for a refund on its way.
    return EXIT_FAILURE if status.cancel_reason in DECLINED_AT_REQUEST else EXIT_OK


async def _eligibility(args: argparse.Namespace) -> int:
    # The channel does not change the answer; the requester does where the policy has a
    # per-customer auto-approval budget. The key (as `request` would derive it, or --key)
    # only excludes that request's own hold, if already made and still open, from "still
    # refundable": asking again about an open request gives the same answer (a paid one is
    # judged as asked again: client.edge.judge_eligibility).
    from client.refund_ids import default_refund_key

    key = args.key or default_refund_key(args.order, args.amount, args.line, args.reason)
    from client.http_client import ORDER_CUSTOMER

    requested_by = acting.requester(args, staff_default=ORDER_CUSTOMER)
    request = _refund_request(args, refund_key=key, channel="web", requested_by=requested_by)
    answer = await with_api(args, lambda c: c.eligibility(request))
    emit(args, answer, render.eligibility)
    # As a declined `request`: the answer is no, so a script can ask before it requests.
    return EXIT_OK if answer.eligible else EXIT_FAILURE


def _policy(args: argparse.Namespace) -> int:
    from client import policy_view

    policy_dir = Settings.from_env().policy_dir
    if args.policy_command == "list":
        emit(args, policy_view.available(policy_dir), policy_view.list_as_text)
    elif args.policy_command == "diff":
        old = policy_view.load_named(policy_dir, args.old)
        new = policy_view.load_named(policy_dir, args.new)
        emit(args, policy_view.diff(old, new), policy_view.diff_as_text)
    else:
        name = args.name or Settings.from_env().policy
        emit(
            args,
            policy_view.describe(policy_view.load_named(policy_dir, name)),
            policy_view.as_text,
        )
    return EXIT_OK


async def _single_call(args: argparse.Namespace) -> int:
    """Commands that are one call to the API and a rendering.
    Who acts is the token's principal: the API is told no names."""
    cmd = args.command
    actions: dict[str, tuple[Callable[[Any], Awaitable[Any]], Callable[[Any], str]]] = {
        "list": (lambda c: _list(args, c), render_listing.listing),
        "approve": (
            lambda c: c.approve(args.refund_id, amount=args.amount, evidence=args.evidence),
            render.status,
        ),
        "track": (lambda c: c.track(args.refund_id), render.track),
        "events": (lambda c: _events(c, args.refund_id), render.events),
        "reject": (lambda c: c.reject(args.refund_id, reason=args.reason), render.status),
        "cancel": (lambda c: c.cancel(args.refund_id, reason=args.reason), _status_or_track),
        "received": (lambda c: c.item_received(args.refund_id), render.status),
        "audit": (lambda c: c.audit(args.refund_id), render.audit),
        "retry": (lambda c: c.operator_retry(args.refund_id), render.status),
        "op-cancel": (
            lambda c: c.operator_cancel(args.refund_id, reason=args.reason),
            render.status,
        ),
        "op-paid": (
            lambda c: c.operator_paid_elsewhere(
                args.refund_id, proof=args.proof, despite_findings=args.despite_findings
            ),
            render.status,
        ),
    }
    if cmd == "operator":
        cmd = {"retry": "retry", "cancel": "op-cancel"}.get(args.operator_command, "op-paid")
    if cmd == "approve" and args.role:
        acting.warn(
            args, "--role is ignored: the role comes from the staff directory (or your token)"
        )
    action, human = actions[cmd]
    try:
        result = await with_api(args, action)
    except ValidationError as err:
        raise UserError(render.validation_error(err)) from None
    emit(args, result, human)
    if cmd == "retry" and result.awaiting is Awaiting.OPERATOR:
        # A script must not read a retry that was refused again as done (a trial: exit 0).
        note(args, "note: the retry did not pay; the refund still waits for an operator")
        return EXIT_NEEDS_A_PERSON
    if cmd == "approve" and (first := first_approver(result)):
        note(
            args,
            f"note: {first}'s approval is recorded; a second, different person must approve"
            " before any money moves (four eyes)",
        )
    if cmd in ("reject", "cancel", "op-cancel") and (held := _item_held(result)):
        note(args, held)
    return EXIT_OK


def _item_held(result: Any) -> str | None:
    """Closed unpaid while the warehouse holds the returned item (a trial: nothing said so
    at the reject; reconciliation's finding came later). A customer's view has no entries."""
    if not isinstance(result, StatusView) or result.state is not RefundState.CANCELLED:
        return None
    kept = kept_receipt_entry(result.timeline)
    if kept is None:
        return None
    return (
        f"note: the warehouse holds this refund's returned item (entry {kept}), which the"
        f" refund closed without paying for: {ITEM_BACK}"
    )


async def _list(args: argparse.Namespace, client: Any) -> Any:
    """The refunds asked for; one more is fetched to tell the user when more match."""
    found = await client.list(
        state=args.state,
        order_id=args.order,
        escalated=args.escalated,
        customer=args.customer,
        limit=args.limit + 1,
    )
    if len(found) > args.limit:
        from workflows.read_models import CustomerListedRefund

        staff = not isinstance(found[0], CustomerListedRefund)  # a customer has two filters
        narrow = "--state, --order, --customer or --escalated" if staff else "--state or --order"
        note(args, f"note: the newest {args.limit} shown; more match (--limit, or {narrow})")
    if not found and args.customer and args.customer != args.customer.lower():
        # Ids are exact (CUST_42 is another customer than cust_42): a trial found none.
        lower = args.customer.lower()
        note(args, f"note: customer ids are exact; did you mean --customer {lower}?")
    if not found and args.order and args.order != args.order.lower():
        # Order ids are the order system's and may differ only in case, so the other case
        # is named only where it has refunds (a trial pasted an order id in capitals).
        same = {"state": args.state, "escalated": args.escalated, "customer": args.customer}
        if await client.list(order_id=args.order.lower(), limit=1, **same):
            note(args, f"note: order ids are exact; did you mean --order {args.order.lower()}?")
    return found[: args.limit]


def _status_or_track(view: Any) -> str:
    """An action's answer: the status for staff, what `track` shows for a customer."""
    from workflows.read_models import CustomerView

    if isinstance(view, CustomerView):
        return render.track(view.model_dump(mode="json"))
    return render.status(view)


async def _status(args: argparse.Namespace) -> int:
    """The refund's status; for staff, with the requester's other recent refunds, its
    order's ledger and the order's requests that closed without paying. The --json output
    is the status object with `customer_history` (null when the API does not show it to
    this caller), `ended_in_temporal`, `earlier_closed_requests`, `alike_requests` and
    `open_findings`."""

    async def review_context(client: Any) -> Any:
        try:
            return await client.review_context(args.refund_id)
        except NotAllowed:
            return None  # what a reviewer weighs is not for every caller

    async def gather(client: Any) -> tuple[Any, Any]:
        # Both at once: each asks the API (and it Temporal) on its own.
        answer: tuple[Any, Any] = await asyncio.gather(
            client.status(args.refund_id, live=args.live),
            review_context(client),
            return_exceptions=True,
        )
        for failed in answer:  # the status's own error first (an unknown refund)
            if isinstance(failed, BaseException):
                raise failed
        status, weighed = answer
        if weighed is None:
            return status, None
        if ended := weighed.ended_in_temporal:
            told = render.ended_in_temporal(args.refund_id, ended, escalated_when_ended(weighed))
            note(args, told)
        if weighed.alike_requests and status.state not in TERMINAL_STATES:
            note(args, alike_note(weighed.alike_requests))
        # One line per kind of finding (a trial read one three times); anomalies lists each.
        for said in dict.fromkeys(render_findings.open_finding(f) for f in weighed.open_findings):
            note(args, said)
        return status, weighed

    view, context = await with_api(args, gather)
    if context and context.ended_in_temporal and view.state not in TERMINAL_STATES:
        view = as_stopped(view, escalated_when_ended(context))  # no ETA that cannot come
    ledger = context.order_ledger if context else None
    history = context.customer_history if context else None
    closed = context.closed_requests if context else []
    data = {
        **view.model_dump(mode="json"),
        "customer_history": history.model_dump(mode="json") if history else None,
        "order_ledger": ledger.model_dump(mode="json") if ledger else None,  # as the text shows
        # A script reading the JSON sees what the note on stderr says, and what a reviewer
        # weighs: the order's requests that closed without paying.
        "ended_in_temporal": context.ended_in_temporal if context else None,
        "earlier_closed_requests": [c.model_dump(mode="json") for c in closed],
        "alike_requests": context.alike_requests if context else [],
        "open_findings": [f.model_dump(mode="json") for f in context.open_findings]
        if context
        else [],
    }
    emit(args, data, lambda _: render.status(view, ledger, history, closed))
    return EXIT_OK


def _audit_command(args: argparse.Namespace) -> int | Coroutine[Any, Any, int]:
    """`audit REFUND_ID` lists a trail; `audit --verify [REFUND_ID]` checks the chains."""
    if args.verify:
        from client.cli.audit import verify

        return verify(args)
    if args.refund_id is None:
        raise UserError("give a REFUND_ID, or --verify to check every refund's audit chain")
    return _single_call(args)


async def _events(client: Any, refund_id: str) -> Any:
    events = await client.events(refund_id)
    if not events:
        raise RefundflowError(f"no events for refund {refund_id}")
    return events


HANDLERS: dict[str, Handler] = {
    "sandbox": sandbox_handlers.handle,
    "request": _request,
    "eligibility": _eligibility,
    "policy": _policy,
    "subscribers": subscribers.handle,
    "reconcile": operations.reconcile,
    "anomalies": operations.anomalies,
    "acknowledge": operations.acknowledge,
    "report": operations.report,
    "status": _status,
    "audit": _audit_command,
    **dict.fromkeys(
        (
            "operator",
            "track",
            "events",
            "list",
            "approve",
            "reject",
            "cancel",
            "received",
        ),
        _single_call,
    ),
}
