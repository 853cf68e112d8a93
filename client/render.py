"""Human-readable rendering for the CLI. The words themselves come from the status object."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from client import error_words
from client.render_eligibility import eligibility as eligibility
from client.review_context import ESCALATED_WHEN_ENDED, RECONCILIATION_CLOSES
from workflows.ledger import NOT_A_LINE
from workflows.models import StatusView, TimelineEntry
from workflows.money import format_minor
from workflows.read_models import (
    AuditEntry,
    ClosedRequest,
    CustomerHistory,
    OrderLedger,
    OutboxEvent,
)
from workflows.states import Awaiting, RefundEvent, RefundState, TimelineEvent
from workflows.wording import OPERATOR_DECIDES, closed_because

# The longest event name (provider_requires_action), so "by" lines up (a trial saw
# settlement_unconfirmed push it out of line).
EVENT_WIDTH = max(len(event) for event in [*TimelineEvent, *RefundEvent])


def validation_error(err: ValidationError) -> str:
    problems = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "request"
        message = error_words.plain(problem)
        problems.append(message if where == "request" else f"{where} {message}")
    return "; ".join(problems)


def _awaiting(view: StatusView) -> str:
    """Whom the refund waits for; "(ended)" once Temporal ended its workflow, as `list` and
    the console's queue say (a trial read "awaiting reviewer" above "who acts
    reconciliation": no reviewer can act on it). --json keeps what was recorded."""
    return "(ended)" if view.facts is not None and view.facts.stopped else view.awaiting.value


def status(
    view: StatusView,
    ledger: OrderLedger | None = None,
    history: CustomerHistory | None = None,
    closed: Sequence[ClosedRequest] = (),
) -> str:
    """The refund as support sees it; with the order's ledger, what every refund of the
    order holds and has refunded, per line; with the customer's history, their other
    recent refunds; with `closed`, the order's requests that closed without paying (what a
    reviewer weighs)."""
    lines = [
        f"refund {view.refund_id}  order {view.order_id}",
        f"  state      {view.state.value}"
        + (f" ({closed_because(view)})" if view.cancel_reason else ""),
        f"  amount     {format_minor(view.amount, view.currency)}"
        + (
            f" (requested {format_minor(view.requested_amount, view.currency)})"
            if view.amount != view.requested_amount
            else ""
        ),
        f"  awaiting   {_awaiting(view)}   escalation level {view.escalation_level}",
        f"  who acts   {view.action_by or '-'}",
        *_cancel_refused(view),
        *_evidence(view),
        f"  policy     {view.policy_version}"
        + (f"   fee kept {format_minor(view.fee, view.currency)}" if view.fee else ""),
        f"  next step  {view.next_step}",
        *_policy_notes(view),
        f"  eta        {_eta(view.eta_earliest, view.eta, view.eta_kind)}",
        f"  customer   {typed(view.message)}",
        f"  reply      {typed(view.support_reply or view.message)}",
        *([customer_history(history)] if history is not None else []),
        *(closed_request(c) for c in closed),
        "  timeline",
    ]
    lines += _timeline(view.timeline)
    if ledger is not None:
        lines += order_ledger(ledger)
    return "\n".join(lines)


def _timeline(entries: list[TimelineEntry]) -> list[str]:
    """One line an entry; a run of entries alike (the daily "still waiting for an operator"
    reminder: a trial read one line a day for months) is its first and a count, the last
    one's time (`refundflow audit` lists every entry)."""
    lines: list[str] = []
    for group in _alike_runs(entries):
        entry = group[0]
        lines.append(
            f"    {entry.seq:>2}. {when(entry.at)}  {entry.state.value:<15}"
            f" {entry.event:<{EVENT_WIDTH}} by {entry.actor} via {entry.source}:"
            f" {typed(entry.reason)}"
        )
        if len(group) > 1:
            lines.append(f"        … {len(group) - 1} more alike, the last {when(group[-1].at)}")
    return lines


def _alike_runs(entries: list[TimelineEntry]) -> list[list[TimelineEntry]]:
    runs: list[list[TimelineEntry]] = []
    for entry in entries:
        last = runs[-1][-1] if runs else None
        alike = ("event", "state", "reason", "actor", "source")
        if last is not None and all(getattr(last, f) == getattr(entry, f) for f in alike):
            runs[-1].append(entry)
        else:
            runs.append([entry])
    return runs


# Control characters (C0, DEL, C1), line and paragraph separators, and the bidirectional
# marks, embeddings, overrides and isolates: all change what a terminal shows.
_UNSEEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def typed(text: str) -> str:
    """Text that came from outside (a reason, a note, a provider's words) on the one line it
    is shown on: line breaks and tabs as \\n, \\r, \\t, other invisible or reordering
    characters as \\uXXXX. A reason that starts a new line could otherwise pass for an entry
    of its own in a timeline or an audit trail (a forged approval), and an escape sequence
    could rewrite the terminal."""
    return _UNSEEN.sub(lambda m: _NAMED.get(m.group(), f"\\u{ord(m.group()):04x}"), text)


def _policy_notes(view: StatusView) -> list[str]:
    """While a reviewer decides, what the policy says of the request: why it was not paid
    by itself (a spent budget, the same request under another key) among the rest."""
    if view.awaiting is not Awaiting.REVIEWER or not view.policy_notes:
        return []
    return ["  policy says", *(f"    - {typed(note)}" for note in view.policy_notes)]


def _cancel_refused(view: StatusView) -> list[str]:
    """`cancel_refused` as status's note lines."""
    cancel = f"`refundflow --as OPERATOR operator cancel {view.refund_id} --reason TEXT`"
    said = cancel_refused(view, cancel, "`operator retry`")
    if not said:
        return []
    first, *more = said
    return [f"  note       {first}", *(f"             {line}" for line in more)]


def cancel_refused(
    view: StatusView, operator_cancel: str, operator_retry: str, provider_cancel: str = ""
) -> list[str]:
    """A cancellation asked in Temporal (the Web UI's button) while the refund was with the
    provider: refused and escalated. `who acts` alone says there is nothing for staff to do,
    which is so, but not why the person who pressed the button sees it still running. In
    sentences; `operator_cancel` and `operator_retry` say how an operator does each where
    it is read (the CLI's commands, the console's buttons: a trial found the console silent);
    `provider_cancel`, how one asks the provider to cancel (default: `operator_cancel`)."""
    if view.state is not RefundState.REFUNDING:
        return []
    refused = [e for e in view.timeline if e.event == "escalated" and e.source == "temporal"]
    if not refused:
        return []
    asked = f"a cancellation requested in Temporal at {when(refused[-1].at)} was"
    if OPERATOR_DECIDES in refused[-1].reason:
        if view.awaiting is not Awaiting.OPERATOR:  # decided since (a review: still "waits")
            return [f"{asked} refused while the refund waited for an operator, who decided since"]
        return [
            f"{asked} refused: the refund waits for an operator's decision on its payment"
            f" ({operator_cancel} cancels it; {operator_retry} pays it)"
        ]
    lines = [
        f"{asked} refused: the refund is with the payment provider, so money may have moved;"
        " it is paid at most once"
    ]
    if view.awaiting is Awaiting.PAYMENT_PROVIDER:
        lines.append(
            f"an operator may ask the provider to cancel it ({provider_cancel or operator_cancel});"
            " a provider cancels only a refund that waits for the customer's action, and one"
            " it is settling pays or fails by itself"
        )
    return lines


def _evidence(view: StatusView) -> list[str]:
    """The evidence line: what a reviewer checked, or that the policy wants it."""
    if view.evidence:
        return [f"  evidence   {typed(view.evidence)}"]
    if view.evidence_required and view.state is RefundState.PENDING_REVIEW:
        return ["  evidence   required; none recorded yet (approve --evidence TEXT)"]
    return []


def closed_request(closed: ClosedRequest) -> str:
    """One line: another request on the order, closed without paying, and why."""
    asked = f"{format_minor(closed.amount, closed.currency)} for {closed.reason_code}"
    how = f"{closed.cancel_reason or 'cancelled'} {when(closed.closed_at)} by {closed.closed_by}"
    return f"  earlier    {closed.refund_id} {asked}: {how}: {typed(closed.said)}"


def customer_history(history: CustomerHistory) -> str:
    """One line: how many other refunds the requester had recently, and how much money."""
    recent = f"in the last {history.window_days} days"
    if not history.totals:
        return f"  requester  {history.customer}: no other refunds {recent}"
    count = sum(t.refunds for t in history.totals)
    money = "; ".join(
        f"{format_minor(t.amount, t.currency)}"
        f" ({format_minor(t.auto_approved, t.currency)} auto-approved)"
        for t in history.totals
    )
    other = "other refund" if count == 1 else "other refunds"
    return f"  requester  {history.customer}: {count} {other} {recent}, {money}"


def order_ledger(ledger: OrderLedger) -> list[str]:
    """The order ledger block under a refund's status."""
    money = ledger.currency
    back = ledger.taken_back and format_minor(ledger.taken_back, money)
    # Money taken back is held again (its refund is open), as the lines below show it: a
    # trial read "held 0.00 ... taken back 40.00" above "held 2 x, 40.00".
    taken_back = f" ({back} of it paid, then taken back by the provider)" if back else ""
    lines = [
        f"  order ledger  captured {format_minor(ledger.captured_amount, money)},"
        f" held {format_minor(ledger.held, money)}{taken_back},"
        f" refunded {format_minor(ledger.refunded, money)}"
    ]
    for line in ledger.lines:
        what = "not a line" if line.sku == NOT_A_LINE else f"{line.quantity} ordered"
        held = _units_and_value(line.held_quantity, line.held_amount, money)
        refunded = _units_and_value(line.refunded_quantity, line.refunded_amount, money)
        by = f" by {', '.join(line.refunds)}" if line.refunds else ""
        lines.append(
            f"    {line.sku:<16} {what:<12} worth {format_minor(line.value, money):>14}"
            f"  held {held:<16} refunded {refunded:<16}{by}".rstrip()
        )
    return lines


def _units_and_value(units: int, value: int, currency: str) -> str:
    if not units and not value:
        return "-"
    return (f"{units} x, " if units else "") + format_minor(value, currency)


def order(data: dict[str, Any]) -> str:
    lines = [
        f"order {data['order_id']}"
        f"  captured {format_minor(data['captured_amount'], data['currency'])}"
        f"  paid by {data.get('payment_rail', 'card')}",
        f"  payment reference {data['payment_reference']}  delivered {data['delivered_at'] or '-'}",
        # Whose it is: the one `--as` may ask for a refund on it (a trial found it only in --json).
        f"  customer {data.get('customer_id') or '-'}",
    ]
    for line in data["lines"]:
        lines.append(
            f"  {line['sku']} x{line['quantity']} at"
            f" {format_minor(line['unit_price'], data['currency'])} ({line['category']})"
        )
    return "\n".join(lines)


def ledger(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no provider refunds"
    lines = [f"{'PROVIDER REFUND':<20} {'ORDER':<22} {'AMOUNT':>14} {'STATUS':<10} IDEMPOTENCY KEY"]
    for r in rows:
        lines.append(
            f"{r['id']:<20} {r['order_id']:<22} {format_minor(r['amount'], r['currency']):>14}"
            f" {r['status']:<10} {r['idempotency_key']}"
        )
    return "\n".join(lines)


def audit(rows: list[AuditEntry]) -> str:
    return "\n".join(
        f"{r.seq:>3}. {when(r.at)}  {r.from_state or '-':>15} -> {r.to_state.value:<15}"
        f" {r.event:<{EVENT_WIDTH}} by {r.actor} via {r.source}: {typed(r.reason)}"
        f"  [{r.policy_version}]"
        for r in rows
    )


def faults(data: dict[str, Any]) -> str:
    from sandbox.faults import Faults

    defaults = Faults().model_dump()
    width = max((len(system) for system in data), default=0)
    lines = []
    for system, settings in data.items():
        changed = {k: v for k, v in settings.items() if defaults[system].get(k) != v}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "no faults"
        lines.append(f"{system:<{width}}  {shown}")
    return "\n".join(lines)


_ETA_WORDS = {"review": "decision due by", "payment": "money arrives", "return": "item due back by"}


def _eta(earliest: datetime | None, latest: datetime | None, kind: str | None) -> str:
    if latest is None:
        return "-"
    what = _ETA_WORDS.get(kind or "", "by")
    if earliest is not None and earliest != latest:
        return f"{what} {_at(earliest)} - {_at(latest)}"
    return f"{what} {_at(latest)}"


def _at(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def when(moment: datetime | str | None) -> str:
    """The one way the CLI shows a moment: `2026-11-26 14:07:57 UTC` (status, audit,
    events, deliveries, findings, track); `--json` keeps ISO 8601."""
    if moment is None:
        return "-"
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def ended_in_temporal(refund_id: str, ended: str, escalated: bool = False) -> str:
    """`escalated`: reconciliation left it to a person (not "closes it": a trial)."""
    what_now = (
        ESCALATED_WHEN_ENDED if escalated else f"{RECONCILIATION_CLOSES} (`refundflow reconcile`)"
    )
    return (
        f"note: Temporal ended the workflow of {refund_id} ({ended}) before the refund ended:"
        f" below is its last state, and nothing will move it; {what_now}"
    )


def already_requested(view: StatusView) -> str:
    first = view.timeline[0]
    return (
        f"note: this request was already made {when(first.at)} (key {view.refund_key}):"
        f" refund {view.refund_id} is {view.state.value}"
        + (f" ({closed_because(view)})" if view.cancel_reason else "")
        # Only of a refund closed unpaid: a new key beside an open or paid one asks for the
        # same units again, which the order's ledger refuses (a review).
        + ("; to ask again, give a new --key" if view.state is RefundState.CANCELLED else "")
    )


def track(view: dict[str, Any]) -> str:
    lines = [
        f"{view['refund_id']}  ({view['order_id']})",
        f"  {view['status']}: {format_minor(view['amount'], view['currency'])}",
        f"  {view['message']}",
    ]
    for step in view["timeline"]:
        lines.append(f"    {when(step['at'])}  {step['label']}")
    return "\n".join(lines)


def events(rows: list[OutboxEvent]) -> str:
    lines = []
    sending: dict[str, str] = {}
    """Per subscriber, the refund's event it is sent now: its later ones wait behind it
    (the ordering promise), whatever their own next try says."""
    for e in sorted(rows, key=lambda e: e.seq):
        lines.append(f"{e.seq:>3}. {when(e.occurred_at)}  {e.type:<22} {e.event_id}")
        lines.append(f"       {e.payload['notification']['body']}")
        for d in e.deliveries:
            if d.delivered_at:
                state = f"delivered {when(d.delivered_at)}"
            elif d.parked_at:
                state = (
                    f"parked {when(d.parked_at)} ({d.last_error});"
                    f" `refundflow subscribers replay {d.subscriber} --event {e.event_id}`"
                )
            elif d.subscriber in sending:
                state = f"waiting behind {sending[d.subscriber]}"
            else:
                sending[d.subscriber] = e.event_id
                state = f"pending, next try {when(d.next_try_at)}" + (
                    f" ({d.last_error})" if d.last_error else ""
                )
            lines.append(f"       -> {d.subscriber:<24} {state}, attempts {d.attempts}")
    return "\n".join(lines)


def inbox(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "the customer inbox is empty"
    return "\n".join(
        f"{r['refund_id']} #{r['seq']:<3} [{r['locale']}] {r['subject']}: {r['body']}"
        + (f"  (received {r['copies']} times)" if r["copies"] > 1 else "")
        for r in rows
    )
