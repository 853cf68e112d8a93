"""The edge: what RefundClient checks before a refund starts (invariants 9 and 11), and the
keys that make the same request one refund. No Temporal here; the order system and the store
come in as arguments.

Every refusal is InvalidRefundRequest (nothing was started) or RefundConflict (the key was
used for another request).

Units already held or refunded by another refund of the order (a different key, channel or
reason) are refused here, with the order ledger's message naming that refund, whether it is
still open or already paid; the request is not answered with the other refund. Why: that
refund is a different request (its own key, reason, amount, requester), and handing it back
as the answer would tell the caller "this is your refund" about a refund they did not ask
for, whose later actions (approve, cancel) are not theirs to take. The same request again
(same key, or the same content without a key) is answered with its refund, as always
(invariant 3). A refusal names the refund, so support can look at it (`refundflow status
rf_…`) and, if that refund is cancelled, ask again: a cancelled refund's units are free.

An amount holds no units, so the same amount for the same reason under another key is not
refused: two items may be worth the same. It is not paid by the policy alone either: the
store, under the order's lock, withholds its auto-approval naming the refund that asked
first (workflows.second_asks.asked_again), and a reviewer decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from activities.pg_store import PostgresRefundStore
from activities.ports import ExternalSystemRefused, ExternalSystemUnavailable, OrderSystem
from activities.reserving import HeldForAnotherRequest
from client.errors import InvalidRefundRequest, RefundConflict, RefundflowError
from client.refund_ids import refund_id_for
from client.timings import step
from workflows.allocation import allocated
from workflows.budgets import BudgetUse
from workflows.eligibility import (
    LEDGER_RULE,
    REFUNDABLE_RULE,
    EligibilityAnswer,
    answer_for_resolved,
    check_eligibility,
    ledger_request,
)
from workflows.ledger import Hold, told_with_holds
from workflows.models import (
    OrderSnapshot,
    PinnedPolicy,
    RefundRequest,
    RefundWorkflowInput,
    ResolvedRefund,
    StatusView,
)
from workflows.money import format_minor
from workflows.policy import evaluate, parse_policy, policy_for
from workflows.read_models import CustomerHistory
from workflows.states import RefundState
from workflows.validation import RefundInputError, resolve_request
from workflows.verification import repeated_skus


async def fetch_order(orders: OrderSystem, order_id: str) -> OrderSnapshot:
    """The order as the order system has it now; unknown or refused orders are the caller's
    mistake, an unreachable order system is not."""
    try:
        with step("order"):
            order = await orders.get_order(order_id)
    except ExternalSystemUnavailable as err:
        raise RefundflowError(str(err)) from None
    except ExternalSystemRefused as err:
        raise InvalidRefundRequest(str(err)) from None
    if order is None:
        raise InvalidRefundRequest(f"unknown order {order_id}")
    return order


def takes_the_request(request: RefundRequest, order: OrderSnapshot) -> None:
    """Whose the order is, then whether refundflow refunds it at all: what RefundClient
    checks of every request and eligibility question before anything else."""
    for_its_customer(request, order)
    refundable_here(order)


def refundable_here(order: OrderSnapshot) -> None:
    """An order that lists a SKU on two lines is refused in words (the ledger holds and
    refunds units by SKU: held, it failed with a 503, a trial). Asked only once whose the
    order is has been checked (`for_its_customer`, the API's authorization): said to a
    stranger, it would tell that the order exists and what it holds (a review)."""
    if repeated := repeated_skus(order):
        raise InvalidRefundRequest(
            f"order {order.order_id} lists {', '.join(repeated)} on more than one line:"
            " refundflow holds and refunds an order's units by SKU, one line each (refund"
            " this order outside refundflow, or have the order system merge its lines)"
        )


def for_its_customer(request: RefundRequest, order: OrderSnapshot) -> None:
    """A refund is the order's customer's, whoever submits it: the budgets, the history a
    reviewer weighs and who may track it go by `requested_by`. The API refuses anyone else
    before this (api/authz.py, by the token's principal); code inside the boundary calling
    RefundClient is refused here (a trial's service paid another customer's order to
    cust_7, who could then track it, charged to cust_7's budget). An order that names no
    customer: the caller names them."""
    if order.customer_id is not None and request.requested_by != order.customer_id:
        raise InvalidRefundRequest(
            f"order {order.order_id} is {order.customer_id}'s: a refund on it is for that"
            f" customer, not {request.requested_by} (requested_by names the customer; who"
            " submits it for them is submitted_by)"
        )


def resolve(
    request: RefundRequest,
    order: OrderSnapshot,
    policy: PinnedPolicy | None = None,
    holds: Sequence[Hold] = (),
) -> ResolvedRefund:
    """Lines, amount and currency of `request` checked against its order; with `policy` (a
    client without a ledger), an amount-only request split over the whole order, as its
    eligibility splits it. With a ledger, `hold_at_the_edge` splits it on the holds; a line
    asked for in more units than the order has is told what the other `holds` left of it."""
    try:
        resolved = resolve_request(request, order)
    except RefundInputError as err:
        raise InvalidRefundRequest(told_with_holds(err, holds)) from None
    if policy is None:
        return resolved
    return allocated(policy_for(policy.document, order.currency), request, order, resolved, ())


def check_still_refundable(
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    remaining: int,
    asked_at: datetime,
    holds: Sequence[Hold] = (),
) -> EligibilityAnswer:
    """Refuse a request for units other refunds hold or have refunded (naming them), or for
    more than the order still has; else the answer the refund will reach."""
    answer = answer_for_resolved(policy, request, order, resolved, remaining, asked_at, holds)
    failed = {r.rule_id: r for r in answer.rules if not r.passed}
    if LEDGER_RULE in failed:
        # The ledger's own words (the store says the same under the lock).
        raise InvalidRefundRequest(_unsentence(failed[LEDGER_RULE].message))
    if REFUNDABLE_RULE in failed:
        raise InvalidRefundRequest(_only_left(remaining, order))
    return answer


def _only_left(remaining: int, order: OrderSnapshot) -> str:
    """The refusal of a request for more than the order still has, said once for both the
    check on holds read a moment ago and the store's under the order's lock."""
    return (
        f"only {format_minor(max(remaining, 0), order.currency)} of order"
        f" {order.order_id} is still refundable; other refunds hold or have refunded the rest"
    )


def _unsentence(message: str) -> str:
    """An error is one line starting in lower case, without a full stop."""
    return (message[:1].lower() + message[1:]).removesuffix(".")


def same_request_or_conflict(
    status: StatusView, request: RefundRequest, order: OrderSnapshot, resolved: ResolvedRefund
) -> StatusView:
    """`status` when it is the refund `request` asks for; RefundConflict when its key was
    already used for a different request."""
    if (status.order_id, status.requested_amount, status.reason_code) != (
        order.order_id,
        resolved.amount,
        request.reason_code,
    ):
        raise RefundConflict(
            f"refund key {request.refund_key!r} was already used for a different request"
            f" on order {order.order_id} (refund {status.refund_id})"
        )
    return status


async def same_hold_or_conflict(
    store: PostgresRefundStore,
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
) -> None:
    """RefundConflict when the refund recorded under the request's key holds another
    request. Why: `same_request_or_conflict` compares the order, the value and the reason,
    so another line of the same price was answered with the first refund (a trial: the
    toaster asked under the kettle's key, told "Your refund of 40.00 USD has been issued")."""
    refund_id = refund_id_for(request.order_id, request.refund_key)
    money_rules = policy_for(policy.document, order.currency)
    asked = ledger_request(money_rules, request, order, resolved, refund_id, resolved.amount)
    try:
        await store.check_held_for(asked)
    except HeldForAnotherRequest:
        raise _key_conflict(request, order, refund_id) from None


def _key_conflict(request: RefundRequest, order: OrderSnapshot, refund_id: str) -> RefundConflict:
    return RefundConflict(
        f"refund key {request.refund_key!r} was already used for a different request"
        f" on order {order.order_id} (refund {refund_id})"
    )


async def hold_at_the_edge(
    store: PostgresRefundStore,
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    resolved: ResolvedRefund,
    asked_at: datetime,
    holds: Sequence[Hold],
) -> tuple[bool, ResolvedRefund]:
    """Check the request against the order's ledger (`holds`: what every other refund of
    the order holds, as the store read it a moment ago), then reserve it under the order's lock
    before its refund starts (the store's `hold`, the ledger's final word). True: the refund
    held before this call (a retry, or a request racing this one); False: this call holds
    it, or the policy declines the request (nothing held). The store judges the
    auto-approval budgets under the lock, so this check leaves them out. With it, the
    request as its refund is started: an amount-only one split over the lines by what each
    still has (workflows.allocation), its fees taken on that split.

    Why reserve here and not only in the workflow: concurrent requests for the same units
    (three channels at once) then get one refund and clear refusals naming it, instead of
    three refunds of which two are declined later; and the ledger knows what a refund holds
    from the moment it exists. The workflow's own reservation finds this one (the first
    answer stands). A request the policy declines reserves nothing: its workflow declines
    it. A reservation whose workflow never started (the start failed and the request was
    not retried) is released by reconciliation (`reservation_without_refund`).
    """
    refund_id = refund_id_for(request.order_id, request.refund_key)
    remaining = order.captured_amount - sum(h.amount for h in holds)
    money_rules = policy_for(policy.document, order.currency)
    resolved = allocated(money_rules, request, order, resolved, holds)
    answer = check_still_refundable(policy, request, order, resolved, remaining, asked_at, holds)
    if not answer.eligible:
        return False, resolved
    reservation = ledger_request(
        money_rules,
        request,
        order,
        resolved,
        refund_id,
        answer.refund_amount,
        auto_approve=answer.auto_approve,  # the policy's alone: no budget use was given
    )
    try:
        result, held_before = await store.hold(reservation)
    except HeldForAnotherRequest:
        raise _key_conflict(request, order, refund_id) from None
    if not result.reserved:
        raise InvalidRefundRequest(result.refused_because or _only_left(result.remaining, order))
    if held_before and resolved.allocation is not None:  # the first call's split stands
        if first := await store.held_split(refund_id):
            resolved = resolved.model_copy(update={"allocation": first})
    return held_before, resolved


async def budget_use_for(
    store: PostgresRefundStore,
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
    refund_id: str,
) -> BudgetUse | None:
    """What the policy's auto-approval budgets already count on this order and for this
    requester, not counting the request's own refund (None: the policy has no budgets):
    what `eligibility` answers from, ahead of the store's check under the lock."""
    budgets = policy_for(policy.document, order.currency).budgets
    if budgets is None:
        return None
    return await store.budget_use(
        order.order_id,
        request.requested_by,
        order.currency,
        budgets.customer_window_days,
        refund_id,
    )


NO_REFUND = ""
"""A refund id no refund has: the ledger's reads that leave a request's own refund out leave
nothing out with it."""


async def judge_eligibility(
    store: PostgresRefundStore | None,
    policy: PinnedPolicy,
    request: RefundRequest,
    order: OrderSnapshot,
) -> EligibilityAnswer:
    """The answer `request` would reach now, as the store judges it (ledger, budgets, money
    refunded around refundflow; without a store, the order alone). A request this very key
    already made is judged as if it had not been asked (asking again about an open request
    gives the answer it got), unless that refund was paid: then as asking again under
    another key, with it holding what it paid ("as if it had not been asked" said
    "Eligible: 255.00" of lines it had paid, and `request --key` refused them, a trial)."""
    remaining, use, made, holds, around = order.captured_amount, None, None, [], []
    refund_id = refund_id_for(request.order_id, request.refund_key)
    if store is not None:
        ledger = await store.state_and_holds(order.order_id, refund_id)
        made, judged_as = ledger.state, refund_id
        if made == RefundState.COMPLETED.value:  # read again, its own hold counted
            judged_as = NO_REFUND
            ledger = await store.state_and_holds(order.order_id, judged_as)
        holds, order = ledger.holds, ledger.judged_order(order)
        remaining = order.captured_amount - sum(h.amount for h in holds)
        use = await budget_use_for(store, policy, request, order, judged_as)
        around = await store.money_around(order.order_id)
    answer = check_eligibility(
        policy, request, order, remaining, datetime.now(UTC), holds, use, around=around
    )
    made_by = {"already_made": refund_id, "already_made_state": made}
    return answer if made is None else answer.model_copy(update=made_by)


CUSTOMER_WINDOW_DAYS = 30
"""The window of a customer's history shown to reviewers under a policy without budgets."""


async def customer_history(
    store: PostgresRefundStore, policy: PinnedPolicy, refund_id: str
) -> CustomerHistory | None:
    """The requester's other refunds over the customer window of `policy` (the one in force:
    what reviewers weigh now), per currency; None when the store does not know who asked."""
    budgets = parse_policy(policy.document).budgets
    days = budgets.customer_window_days if budgets else CUSTOMER_WINDOW_DAYS
    return await store.customer_history(refund_id, days)


def summary_line(inp: RefundWorkflowInput) -> str:
    """The Web UI's one line for the refund: what it pays (after fees), not what was asked."""
    decision = evaluate(
        policy_for(inp.policy.document, inp.resolved.currency),
        inp.order,
        inp.resolved,
        inp.request.reason_code,
        inp.asked_at or datetime.now(UTC),
    )
    currency = inp.resolved.currency
    paid = format_minor(inp.resolved.amount - decision.fee, currency)
    if decision.fee:
        paid += f" (requested {format_minor(inp.resolved.amount, currency)})"
    return (
        f"Refund {paid} on order {inp.order.order_id}"
        f" ({inp.request.reason_code}, via {inp.request.channel})"
    )
