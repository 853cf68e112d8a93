"""Authorization in one place: principal x action x refund -> allowed, or why not.

Staff roles come from the verified token, never from a request body; the authority to
approve an amount comes from the refund's pinned policy (the workflow enforces it again, and
four eyes with it). Customers see and withdraw only their own refunds, and ask only about
their own orders; staff and services ask only for the order's customer. Every decision is
logged with the principal's subject and issuer (`authz.decision`); an allowed action is then
audited by the refund itself with the principal's subject as its actor.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import structlog

from api.identity import SCOPE_READ, SCOPE_WRITE, WAREHOUSE_ROLE, Principal, PrincipalKind
from api.problems import Kind, ProblemError
from workflows.money import format_minor
from workflows.policy import Policy

log = structlog.get_logger("refundflow.api.authz")


class Action(Enum):
    REQUEST = "request"
    ELIGIBILITY = "eligibility"
    READ = "read"
    TRACK = "track"
    LIST = "list"
    AUDIT = "audit"
    REVIEW = "review"
    """What a reviewer weighs beside a refund (`/review`): read as the audit trail is."""
    EVENTS = "events"
    APPROVE = "approve"
    REJECT = "reject"
    CANCEL = "cancel"
    RECEIVED = "received"
    OPERATOR_RETRY = "operator_retry"
    OPERATOR_CANCEL = "operator_cancel"
    OPERATOR_PAID_ELSEWHERE = "operator_paid_elsewhere"
    POLICIES = "policies"


OPERATOR_ACTIONS = {Action.OPERATOR_RETRY, Action.OPERATOR_CANCEL, Action.OPERATOR_PAID_ELSEWHERE}
STAFF_READS = {Action.READ, Action.TRACK, Action.LIST, Action.AUDIT, Action.REVIEW, Action.EVENTS}
CUSTOMER_ACTIONS = {
    Action.REQUEST,
    Action.ELIGIBILITY,
    Action.TRACK,
    Action.LIST,
    Action.CANCEL,
    Action.POLICIES,
}
SERVICE_READS = {*STAFF_READS, Action.ELIGIBILITY, Action.POLICIES}
SERVICE_WRITES = {Action.REQUEST, Action.ELIGIBILITY, Action.CANCEL}
WAREHOUSE_ACTIONS = {Action.RECEIVED, Action.READ, Action.TRACK, Action.POLICIES}


@dataclass(frozen=True)
class RefundFacts:
    """What a decision needs to know about the refund acted on."""

    refund_id: str
    requested_by: str | None
    """Who asked for it (the customer): its first audit entry's actor."""
    amount: int = 0
    currency: str = ""
    policy: Policy | None = None
    """The refund's pinned policy as it applies to its currency (authority limits), when the
    policy's file is at hand."""
    submitted_by: str | None = None
    """Who submitted it for the customer (staff, a service), when someone else did."""
    closed: bool = False
    """Completed or cancelled: an approval is refused for that, not for its amount."""


@dataclass(frozen=True)
class OrderFacts:
    """Whose order a request or an eligibility question is about, as the order system says."""

    order_id: str
    customer_id: str | None
    """None: the order system does not say (customers may then not ask about it)."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""
    told_as_unknown: tuple[Kind, str] | None = None
    """A customer refused another person's refund or order is answered as if it did not
    exist (404 "no refund …", 422 "unknown order …"): a 403 would tell them it does, and
    whose it is not, for any order number they try. `reason` still goes to the log."""


ALLOW = Decision(True)


def same_person(a: str, b: str | None) -> bool:
    """For refusals, as the workflow compares names (four eyes, one's own refund): case and
    surrounding space make no other person, so `Li` cannot approve li's refund."""
    return b is not None and a.strip().casefold() == b.strip().casefold()


def is_them(actor: str, owner: str | None) -> bool:
    """For access: the verified subject is the owner exactly. An identity provider's subject
    is an exact string; `CUST_42` (or `cust_42 `) is someone else, who must not read
    cust_42's refunds nor ask on their orders."""
    return owner is not None and actor == owner


def decide(
    principal: Principal,
    action: Action,
    refund: RefundFacts | None = None,
    *,
    requested_by: str | None = None,
    amount: int | None = None,
    order: OrderFacts | None = None,
) -> Decision:
    """May `principal` do `action` (on `refund`; for a request, for `requested_by` on
    `order`; for an approval, of `amount`)? Pure: no I/O."""
    if action is Action.POLICIES:
        return ALLOW
    by_kind = {
        PrincipalKind.CUSTOMER: _customer,
        PrincipalKind.SERVICE: _service,
        PrincipalKind.WAREHOUSE: _warehouse,
        PrincipalKind.STAFF: _staff,
    }[principal.kind]
    decision = by_kind(principal, action, refund, requested_by, amount)
    if order is None or action not in (Action.REQUEST, Action.ELIGIBILITY):
        return decision
    whose = _whose_order(principal, order, requested_by)
    # A customer hears whose the order is before any other refusal, which would tell them
    # that another customer's order exists (requested_by naming someone else did).
    first = principal.kind is PrincipalKind.CUSTOMER and not whose.allowed
    return whose if first or decision.allowed else decision


def _whose_order(p: Principal, order: OrderFacts, for_: str | None) -> Decision:
    """Customers ask only about their own orders; staff and services only for the order's
    own customer (an order that does not say whose it is: staff name the customer)."""
    if p.kind is PrincipalKind.CUSTOMER:
        if is_them(p.actor, order.customer_id):
            return ALLOW
        unknown = (Kind.BAD_INPUT, f"unknown order {order.order_id}")
        return Decision(False, f"order {order.order_id} is not one of yours", unknown)
    if order.customer_id is None or for_ is None or is_them(for_, order.customer_id):
        return ALLOW
    return Decision(
        False,
        f"order {order.order_id} is {order.customer_id}'s: a refund on it is for that customer"
        " (leave requested_by out, or name them)",
    )


def _customer(
    p: Principal, action: Action, refund: RefundFacts | None, for_: str | None, _: int | None
) -> Decision:
    if refund is not None and not is_them(p.actor, refund.requested_by):
        # Whatever the action: a refusal worded by action would tell which refunds exist.
        unknown = (Kind.NOT_FOUND, f"no refund {refund.refund_id}")
        return Decision(False, f"refund {refund.refund_id} is not one of yours", unknown)
    if action not in CUSTOMER_ACTIONS:
        return Decision(False, f"a customer may not {_verb(action)}")
    if action in (Action.REQUEST, Action.ELIGIBILITY, Action.LIST):
        if for_ is not None and not is_them(p.actor, for_):
            return Decision(False, "a customer asks for and lists only their own refunds")
        return ALLOW
    return ALLOW


def _service(
    p: Principal, action: Action, refund: RefundFacts | None, for_: str | None, _: int | None
) -> Decision:
    if action in SERVICE_WRITES and SCOPE_WRITE in p.scopes:
        return _needs_customer(action, for_)
    if action in SERVICE_READS and p.scopes & {SCOPE_READ, SCOPE_WRITE}:
        return ALLOW
    if action in SERVICE_WRITES | SERVICE_READS:  # its token lacks the scope for it
        scopes = " ".join(sorted(p.scopes)) or "none"
        return Decision(False, f"{p.actor}'s token (scopes: {scopes}) may not {_verb(action)}")
    # Not a scope's matter: no service does it (a trial read "scope refunds:read
    # refunds:write may not approve refunds").
    return Decision(False, f"{p.actor} is a service: services may not {_verb(action)}")


def _warehouse(
    p: Principal, action: Action, refund: RefundFacts | None, for_: str | None, _: int | None
) -> Decision:
    if action in WAREHOUSE_ACTIONS and WAREHOUSE_ROLE in p.roles:
        return ALLOW
    return Decision(False, f"the warehouse may not {_verb(action)}")


def _staff(
    p: Principal, action: Action, refund: RefundFacts | None, for_: str | None, amount: int | None
) -> Decision:
    if action in STAFF_READS:
        return ALLOW
    if action in OPERATOR_ACTIONS:
        if "operator" in p.roles:
            return ALLOW
        return Decision(False, f"only the operator role may {_verb(action)}")
    if action is Action.RECEIVED:
        return Decision(False, "only the warehouse says a returned item was received")
    role = p.approver_role
    if role is None:
        return Decision(False, f"only the support, lead or finance role may {_verb(action)}")
    if action in (Action.REQUEST, Action.ELIGIBILITY):
        return _needs_customer(action, for_)
    if action is Action.CANCEL:
        return ALLOW
    return _review(p, role, action, refund, amount)


def _review(
    p: Principal, role: str, action: Action, refund: RefundFacts | None, amount: int | None
) -> Decision:
    """Approve or reject: never one's own refund; approve within the pinned authority."""
    if refund is not None and same_person(p.actor, refund.requested_by):
        return Decision(False, f"{p.actor} requested this refund and cannot {action.value} it")
    if refund is not None and same_person(p.actor, refund.submitted_by):
        return Decision(
            False, f"{p.actor} submitted this refund for the customer and cannot {action.value} it"
        )
    if action is not Action.APPROVE or refund is None or refund.policy is None or refund.closed:
        return ALLOW  # a closed refund: the workflow says so, in its own words
    # An amount above the refund's is not a question of who may act: the workflow refuses
    # it (409, as a closed refund), once the approver is known to have the authority.
    # The authority for the whole refund, also to approve less of it (as the workflow).
    refusal = refund.policy.authority_refusal(p.actor, role, refund.amount, refund.currency)
    if refusal and amount is not None and amount < refund.amount:
        whole = format_minor(refund.amount, refund.currency)
        refusal += f" (approving less than its {whole} decides all of it)"
    return Decision(False, refusal) if refusal else ALLOW


def _needs_customer(action: Action, for_: str | None) -> Decision:
    if action is Action.REQUEST and not for_:
        return Decision(False, "requested_by must name the customer this refund is for")
    return ALLOW


def _verb(action: Action) -> str:
    return {
        Action.READ: "read this refund's status (customers: `refundflow track`, or the"
        " refund's /track)",
        Action.AUDIT: "read the audit trail",
        Action.REVIEW: "read what a reviewer weighs (the order's ledger, the requester's"
        " other refunds)",
        Action.EVENTS: "read the notification events",
        Action.RECEIVED: "record a returned item as received",
        Action.ELIGIBILITY: "check eligibility",
        Action.LIST: "list refunds",
        Action.OPERATOR_RETRY: "retry a payment (an operator action)",
        Action.OPERATOR_CANCEL: "cancel as an operator",
        Action.OPERATOR_PAID_ELSEWHERE: "mark a refund paid elsewhere (an operator action)",
    }.get(action, action.value.replace("_", " ") + " refunds")


def enforce(
    principal: Principal,
    action: Action,
    refund: RefundFacts | None = None,
    *,
    requested_by: str | None = None,
    amount: int | None = None,
    order: OrderFacts | None = None,
) -> None:
    """Decide, log the decision with who asked (subject and issuer), and refuse with a 403
    problem (nothing changed) when not allowed; a customer asking about another person's
    refund or order hears that it does not exist (Decision.told_as_unknown)."""
    decision = decide(
        principal, action, refund, requested_by=requested_by, amount=amount, order=order
    )
    log.info(
        "authz.decision",
        subject=principal.subject,
        issuer=principal.issuer,
        kind=principal.kind.value,
        action=action.value,
        refund_id=refund.refund_id if refund else None,
        order_id=order.order_id if order else None,
        allowed=decision.allowed,
        reason=decision.reason or None,
    )
    if decision.told_as_unknown is not None:
        raise ProblemError(*decision.told_as_unknown)
    if not decision.allowed:
        raise ProblemError(Kind.FORBIDDEN, f"refused: {decision.reason}")
