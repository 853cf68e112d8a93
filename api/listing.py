"""Listing refunds a page at a time, newest request first, optionally one customer's: the
status projection, with the customer read from each refund's first audit entry (who asked),
or from its opening status before that entry is written (`asked_by`)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.service import RPCError

from activities.reconciliation_sql import left_to_a_person
from api.problems import Kind, ProblemError
from client.refund_ids import REFUND_ID_PATTERN
from client.review_context import as_stopped
from client.workflow_reads import ended_among
from workflows.models import StatusView
from workflows.read_models import CustomerListedRefund, ListedRefund
from workflows.states import TERMINAL_STATES, RefundState
from workflows.wording import customer_view, state_label

log = structlog.get_logger("refundflow.api.listing")
TEMPORAL_PATIENCE = timedelta(seconds=3)
"""Lists are read from Postgres: a Temporal that does not answer must not hold them up."""


def asked_by(status: str, customer: str) -> str:
    """SQL: the refund of status row `status` was asked for by `customer` (a placeholder).
    Its first audit entry says who asked; a refund answered 202 a moment ago (Prefer:
    respond-async) has only its opening status yet (last_seq 0), whose own first entry,
    written by RefundClient from the verified request, says the same."""
    return f"""(EXISTS (SELECT 1 FROM refundflow.audit a
                  WHERE a.refund_id = {status}.refund_id AND a.seq = 1
                    AND a.actor = {customer})
             OR ({status}.last_seq = 0
                 AND {status}.view #>> '{{timeline,0,actor}}' = {customer}))"""


_PAGE = f"""
SELECT s.refund_id, s.order_id, s.state, s.amount, s.currency, s.awaiting,
       s.escalation_level, s.policy_version, s.reason_code, s.channel, s.requested_at,
       s.updated_at, CASE WHEN $8 THEN s.view END AS view
FROM refundflow.refund_status s
WHERE ($1::text IS NULL OR s.state = $1)
  AND ($2::text IS NULL OR s.order_id = $2)
  AND (NOT $3 OR s.escalation_level > 0 OR {left_to_a_person("s")})
  AND ($4::text IS NULL OR {asked_by("s", "$4")})
  AND ($5::timestamptz IS NULL OR (s.requested_at, s.refund_id) < ($5, $6::text))
ORDER BY s.requested_at DESC, s.refund_id DESC
LIMIT $7
"""


async def status_asked_by(pool: asyncpg.Pool, refund_id: str, customer: str) -> StatusView | None:
    """The refund's recorded status if `customer` asked for it; None when there is no such
    refund and when it is someone else's: one read either way, so that the time of the
    answer does not tell the two apart."""
    view = await pool.fetchval(
        "SELECT s.view FROM refundflow.refund_status s"
        f" WHERE s.refund_id = $1 AND {asked_by('s', '$2')}",
        refund_id,
        customer,
    )
    return StatusView.model_validate_json(view) if view is not None else None


def listing_of(*filters: object) -> str:
    """A short digest of a listing's filters, kept in its cursors: a cursor sent with other
    filters would page from an unrelated position (a trial)."""
    return hashlib.sha256(json.dumps(filters).encode()).hexdigest()[:12]


def encode_cursor(requested_at: datetime, refund_id: str, listing: str) -> str:
    raw = json.dumps([requested_at.isoformat(), refund_id, listing]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, listing: str) -> tuple[datetime, str]:
    """The position a cursor holds. One given out before cursors named their listing (two
    fields) is taken as it was: a page asked across a deploy goes on."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, refund_id, *made_for = json.loads(raw)
        if not re.fullmatch(REFUND_ID_PATTERN, refund_id) or len(made_for) > 1:
            raise ValueError(refund_id)
        position = datetime.fromisoformat(at), str(refund_id)
    except (ValueError, TypeError, binascii.Error):
        raise ProblemError(
            Kind.BAD_INPUT, "cursor: not a cursor this API gave out (use next_cursor)"
        ) from None
    if made_for and made_for != [listing]:
        raise ProblemError(
            Kind.BAD_INPUT,
            "cursor: it pages another listing (other filters); send it with the filters of"
            " the page that gave it, or start again without it",
        )
    return position


async def page(
    pool: asyncpg.Pool,
    *,
    state: str | None,
    order_id: str | None,
    escalated: bool,
    customer: str | None,
    cursor: str | None,
    limit: int,
    with_view: bool = False,
) -> tuple[list[asyncpg.Record], str | None]:
    """Up to `limit` refunds after `cursor` (`staff_rows`, or `customer_rows` `with_view`:
    the status recorded, which a customer's rows are told from), and the cursor of the next
    page (None: the last)."""
    listing = listing_of(state, order_id, escalated, customer)
    after_at, after_id = decode_cursor(cursor, listing) if cursor else (None, None)
    rows = await pool.fetch(
        _PAGE, state, order_id, escalated, customer, after_at, after_id, limit + 1, with_view
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return rows, (encode_cursor(last["requested_at"], last["refund_id"], listing) if last else None)


def staff_rows(rows: list[asyncpg.Record]) -> list[ListedRefund]:
    return [ListedRefund.model_validate({k: v for k, v in r.items() if k != "view"}) for r in rows]


async def customer_rows(temporal: Client, rows: list[asyncpg.Record]) -> list[CustomerListedRefund]:
    """The rows as their customer is told them: each refund's status and amount as `track`
    says them (a first approver's cut of two is not theirs yet), from the status recorded;
    a refund Temporal ended before it ended is with our team (as_it_stands), asked of
    Temporal once for the page (one visibility query; not marked if it does not answer)."""
    ended = await ended_or_unknown(
        temporal, [r["refund_id"] for r in rows if r["state"] not in TERMINAL_STATES]
    )
    return [as_told(r, r["refund_id"] in (ended or {})) for r in rows]


def as_told(row: asyncpg.Record, stopped: bool) -> CustomerListedRefund:
    view = StatusView.model_validate_json(row["view"]) if row["view"] else None
    if view is not None and stopped:
        view = as_stopped(view)
    state = RefundState(row["state"])
    now = datetime.now(UTC)
    told = customer_view(view, now) if view is not None and view.facts is not None else None
    # Reconciliation may close a refund in the projection alone (its workflow was gone):
    # the state column moved on, the recorded view did not. The state is then said plainly.
    current = told is not None and view is not None and view.state is state
    return CustomerListedRefund(
        refund_id=row["refund_id"],
        order_id=row["order_id"],
        status=told["status"] if told and current else state_label(state, _locale(view)),
        amount=told["amount"] if told else row["amount"],
        currency=row["currency"],
        requested_at=row["requested_at"],
    )


def _locale(view: StatusView | None) -> str:
    return view.facts.locale if view is not None and view.facts is not None else "en"


async def marked_for_staff(temporal: Client, items: list[ListedRefund]) -> list[ListedRefund]:
    """Staff's page with each open refund Temporal ended marked (`ended_in_temporal`): the
    projection keeps showing such a refund as it stood until reconciliation closes it."""
    ended = await ended_or_unknown(
        temporal, [r.refund_id for r in items if r.state not in TERMINAL_STATES]
    )
    if not ended:
        return items
    return [
        r.model_copy(update={"ended_in_temporal": ended[r.refund_id]})
        if r.refund_id in ended
        else r
        for r in items
    ]


async def ended_or_unknown(temporal: Client, open_ids: list[str]) -> dict[str, str] | None:
    """Which of a page's open refunds Temporal ended (client.workflow_reads.ended_among);
    None when Temporal does not answer (logged): the page itself needs only Postgres."""
    try:
        return await ended_among(temporal, open_ids, TEMPORAL_PATIENCE)
    except RPCError as err:
        log.warning("listing.ended_unknown", error=err.message)
        return None
