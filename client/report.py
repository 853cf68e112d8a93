"""`refundflow report`: refund metrics computed from Postgres alone.

Everything here reads the status projection and the append-only audit trail; nothing asks
Temporal, so a report works while the workers are down. Refunds are selected by when they
were requested: `refund_status.requested_at` in [since, until). Three set-based queries in
one read-only snapshot, whatever the number of refunds.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from activities.reconciliation_sql import NEWEST_RUN
from client.report_acknowledged import acknowledged_orders
from workflows.read_models import (
    BucketUnit,
    MoneyTotals,
    RefundReport,
    SeriesBucket,
    TimeToRefund,
)
from workflows.states import RefundState

STATES = tuple(s.value for s in RefundState)
HOURLY_BELOW = timedelta(days=2)
"""A selected span shorter than this is bucketed by hour, longer ones by day."""

# A refund the customer was told no: rejected, declined, or its review expired. Not one they
# withdrew, nor one closed on our side (Temporal, a payment an operator gave up on).
_REFUSED = """(s.state = 'cancelled' AND EXISTS (
    SELECT 1 FROM refundflow.audit a
    WHERE a.refund_id = s.refund_id AND a.to_state = 'cancelled'
      AND a.event IN ('reject', 'expire', 'decline_ineligible', 'decline_over_refund')))"""

_SELECTED = """
    selected AS (
        SELECT * FROM refundflow.refund_status
        WHERE ($1::timestamptz IS NULL OR requested_at >= $1::timestamptz)
          AND ($2::timestamptz IS NULL OR requested_at < $2::timestamptz)
    )"""

# A refund confirmed twice by the provider is a double refund, unless the provider took the
# first payment back in between (a reversal reopens the refund); its time to refund still
# counts from the first confirmation.
_CONFIRMED = """
    confirmed AS (
        SELECT a.refund_id, min(a.at) FILTER (WHERE a.event = 'provider_confirmed') AS at,
               count(*) FILTER (WHERE a.event = 'provider_confirmed') AS times,
               count(*) FILTER (WHERE a.event = 'provider_reversed') AS reversals
        FROM refundflow.audit a JOIN selected s USING (refund_id)
        WHERE a.event IN ('provider_confirmed', 'provider_reversed')
        GROUP BY a.refund_id
    ),
    time_to_refund AS (
        SELECT s.refund_id, extract(epoch FROM c.at - r.at)::float8 AS seconds
        FROM selected s
        JOIN refundflow.audit r
          ON r.refund_id = s.refund_id AND r.seq = 1 AND r.event = 'requested'
        JOIN confirmed c ON c.refund_id = s.refund_id
        WHERE s.state = 'completed'
    )"""

_DUPLICATES = (
    "confirmed_twice",
    "over_refunded_orders",
    "refunded_twice",
    "above_ledger_orders",
    "paid_twice",
)
"""The metrics that add up to `duplicate_refunds`. Not the orders paid above their capture:
each is one of those already (money paid around refundflow, or paid twice), and counted again
it read as two duplicates (a trial); they are named in `duplicate_orders`.

`duplicate_refunds`, from the order ledger and the provider's word; must be 0. The sum of:
refunds confirmed by the provider more than once; orders of the selected refunds whose
consumed reservations exceed the captured amount; refunds that refunded a unit (or line
value) already refunded: per order line, oldest first, each refund whose refunded units or
value take the line beyond what was ordered; and orders of the selected refunds the provider
paid more for than refundflow's refunds account for (reconciliation's
`provider_money_above_ledger` findings of its newest finished run, since the provider's
ledger is not in Postgres); and refunds recorded as paid elsewhere that the provider paid
too (`paid_elsewhere_and_by_provider`, the same run). `duplicate_orders` names them all, and
the orders whose money out, the provider's and paid elsewhere, is above their capture
(`paid_above_capture`, the same run), which are among them already and not counted again.
`acknowledged_orders`: those of them, found by reconciliation only, whose standing findings
someone acknowledged, every one (`refundflow acknowledge`: dealt with outside refundflow;
still counted)."""

_COUNTS = f"""
    WITH {_SELECTED}
    SELECT reason_code, state, count(*) AS n,
           min(requested_at) AS first, max(requested_at) AS last
    FROM selected
    GROUP BY reason_code, state
"""

_MONEY = f"""
    WITH {_SELECTED}
    SELECT currency,
           coalesce(sum(amount) FILTER (WHERE state = 'completed'), 0)::bigint AS refunded,
           coalesce(sum(amount) FILTER (WHERE state = 'cancelled'), 0)::bigint AS not_paid,
           coalesce(sum(amount) FILTER (WHERE state NOT IN ('completed', 'cancelled')), 0)::bigint
               AS open
    FROM selected
    GROUP BY currency
    ORDER BY currency
"""

_METRICS = f"""
    WITH {_SELECTED}, {_CONFIRMED},
    escalated AS (
        SELECT a.refund_id, bool_or(a.source = 'timer') AS by_timer
        FROM refundflow.audit a JOIN selected s USING (refund_id)
        WHERE a.event = 'escalated'
        GROUP BY a.refund_id
    ),
    over_refunded AS (
        SELECT l.order_id
        FROM refundflow.order_ledger l
        JOIN refundflow.reservations r ON r.order_id = l.order_id AND r.state = 'consumed'
        WHERE l.order_id IN (SELECT order_id FROM selected)
        GROUP BY l.order_id, l.captured_amount
        HAVING sum(r.amount) > l.captured_amount
    ),
    -- Refunds of the order ledger, oldest first per line: a refund whose units or value
    -- take a line beyond what was ordered refunded a unit that was already refunded.
    line_running AS (
        SELECT l.refund_id, l.order_id, l.sku,
               sum(l.quantity) OVER w AS units, sum(l.amount) OVER w AS value
        FROM refundflow.reservation_lines l
        JOIN refundflow.reservations r ON r.refund_id = l.refund_id AND r.state = 'consumed'
        WHERE l.order_id IN (SELECT order_id FROM selected)
        WINDOW w AS (PARTITION BY l.order_id, l.sku ORDER BY r.created_at, l.refund_id)
    ),
    refunded_twice AS (
        SELECT DISTINCT x.refund_id
        FROM line_running x
        JOIN refundflow.order_lines o ON o.order_id = x.order_id AND o.sku = x.sku
        WHERE x.units > o.quantity OR x.value > o.quantity * o.unit_price
    ),
    -- As the newest finished reconciliation run found them: an order the ledger accounts
    -- for again (a late record) is no longer counted.
    newest_run AS ({NEWEST_RUN}),
    above_ledger AS (
        SELECT DISTINCT f.order_id FROM refundflow.findings f
        WHERE f.kind = 'provider_money_above_ledger'
          AND f.order_id IN (SELECT order_id FROM selected)
          AND f.run_id = (SELECT run_id FROM newest_run)
    ),
    above_capture AS (  -- money out of the order (provider and elsewhere) above its capture
        SELECT DISTINCT f.order_id FROM refundflow.findings f
        WHERE f.kind = 'paid_above_capture'
          AND f.order_id IN (SELECT order_id FROM selected)
          AND f.run_id = (SELECT run_id FROM newest_run)
    ),
    paid_twice AS (  -- recorded as paid elsewhere, and paid by the provider too
        SELECT DISTINCT f.refund_id, f.order_id FROM refundflow.findings f
        WHERE f.kind = 'paid_elsewhere_and_by_provider'
          AND f.refund_id IN (SELECT refund_id FROM selected)
          AND f.run_id = (SELECT run_id FROM newest_run)
    ),
    -- Duplicates refundflow's own records show (no finding behind them to acknowledge).
    by_the_ledger AS (
        SELECT s.order_id FROM confirmed c JOIN selected s USING (refund_id)
        WHERE c.times > 1 + c.reversals
        UNION SELECT order_id FROM over_refunded
        UNION SELECT r.order_id FROM refunded_twice t
            JOIN refundflow.reservations r USING (refund_id)
    )
    SELECT
        (SELECT percentile_cont(ARRAY[0.5, 0.9]) WITHIN GROUP (ORDER BY seconds)
           FROM time_to_refund) AS percentiles,
        (SELECT count(*) FROM time_to_refund) AS completed_measured,
        (SELECT count(*) FROM escalated) AS escalated,
        (SELECT count(*) FILTER (WHERE by_timer) FROM escalated) AS sla_breaches,
        (SELECT count(*) FILTER (WHERE times > 1 + reversals) FROM confirmed) AS confirmed_twice,
        (SELECT coalesce(sum(reversals), 0) FROM confirmed)::int AS reversals,
        (SELECT count(*) FROM over_refunded) AS over_refunded_orders,
        (SELECT count(*) FROM refunded_twice) AS refunded_twice,
        (SELECT count(*) FROM above_ledger) AS above_ledger_orders,
        (SELECT count(*) FROM paid_twice) AS paid_twice,
        (SELECT coalesce(array_agg(order_id ORDER BY order_id), '{{}}') FROM by_the_ledger)
            AS ledger_duplicate_orders,
        (SELECT coalesce(array_agg(DISTINCT d.order_id ORDER BY d.order_id), '{{}}') FROM (
            SELECT order_id FROM by_the_ledger
            UNION SELECT order_id FROM above_ledger
            UNION SELECT order_id FROM paid_twice
            UNION SELECT order_id FROM above_capture) d) AS duplicate_orders,
        (SELECT count(*) FROM selected s WHERE {_REFUSED}) AS refused,
        (SELECT count(*) FROM selected s
          WHERE {_REFUSED} AND EXISTS (
              SELECT 1 FROM refundflow.refund_status later
              WHERE later.order_id = s.order_id AND later.refund_id <> s.refund_id
                AND later.requested_at > s.updated_at)) AS reopened
"""

_SERIES = f"""
    WITH {_SELECTED}, {_CONFIRMED}
    SELECT date_trunc($3::text, s.requested_at, 'UTC') AS bucket,
           count(*) FILTER (WHERE s.state = 'completed') AS completed,
           count(*) FILTER (WHERE s.state = 'cancelled') AS cancelled,
           count(*) FILTER (WHERE s.state NOT IN ('completed', 'cancelled')) AS open,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY t.seconds) AS p50
    FROM selected s LEFT JOIN time_to_refund t USING (refund_id)
    GROUP BY bucket
    ORDER BY bucket
"""


async def build_report(
    pool: asyncpg.Pool, since: datetime | None = None, until: datetime | None = None
) -> RefundReport:
    """Refund metrics for refunds requested in [since, until); either bound may be open.

    Naive datetimes are taken as UTC. In the report's JSON, datetimes are ISO strings.

    - `refunds`, `by_state` (every known state, zeros included) and `by_reason`
      ({reason_code: {state: count}}, only the states that occur).
    - `time_to_refund_seconds`: p50/p90 (percentile_cont, rounded to 0.1 s, to 1 ms under
      a second; None without data) and count, over completed refunds, from the `requested`
      audit entry (seq 1) to the first `provider_confirmed` entry.
    - `sla_breaches`: refunds escalated by a timer (an `escalated` entry from source `timer`).
    - `escalation_rate`: refunds with any `escalated` entry / refunds.
    - `duplicate_refunds`, `duplicate_orders`, `acknowledged_orders`: `_DUPLICATES` says.
    - `reopen_rate`: appeal/reopen: the customer asked again after a refusal. The share of
      the selected refused refunds (rejected, declined, or expired in review; not withdrawn,
      nor closed on our side) whose order has another refund (selected or not) requested
      after the refused one was last updated, i.e. after it was refused.
    - `reversals`: payments the provider took back after confirming them (each reopened
      its refund for an operator's decision; a refund paid again after one is not a
      duplicate).
    - `series`: per hour when the selected span is under two days, otherwise per day (UTC),
      contiguous buckets {start, completed, cancelled, open, p50_time_to_refund_seconds};
      `open` is every state that is not final. Empty when no refund is selected.
    """
    since, until = _utc(since), _utc(until)
    generated_at = datetime.now(UTC)
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        counts = await conn.fetch(_COUNTS, since, until)
        metrics = await conn.fetchrow(_METRICS, since, until)
        money = [MoneyTotals(**row) for row in await conn.fetch(_MONEY, since, until)]
        unit, series = await _series(conn, counts, since, until)
        acknowledged = await acknowledged_orders(conn, metrics)
    by_state, by_reason = _tally(counts)
    total = sum(by_state.values())
    return RefundReport(
        since=since,
        until=until,
        generated_at=generated_at,
        refunds=total,
        by_state=by_state,
        by_reason=by_reason,
        money=money,
        bucket=unit,
        series=series,
        **_rates_and_counts(metrics, total),
        acknowledged_orders=acknowledged,
    )


def _rates_and_counts(metrics: asyncpg.Record, total: int) -> dict[str, Any]:
    """The report's fields read from the metrics row (build_report says what each means)."""
    return {
        "time_to_refund_seconds": _time_to_refund(metrics),
        "sla_breaches": metrics["sla_breaches"],
        "escalation_rate": _rate(metrics["escalated"], total),
        "duplicate_refunds": sum(metrics[k] for k in _DUPLICATES),
        "duplicate_orders": list(metrics["duplicate_orders"]),
        "reopen_rate": _rate(metrics["reopened"], metrics["refused"]),
        "refused": metrics["refused"],
        "reopened": metrics["reopened"],
        "reversals": metrics["reversals"],
    }


async def _series(
    conn: asyncpg.Connection, counts: list[Any], since: datetime | None, until: datetime | None
) -> tuple[BucketUnit, list[SeriesBucket]]:
    """The bucket unit, and the series over the period (empty when no refund is selected)."""
    first = min((r["first"] for r in counts), default=None)
    last = max((r["last"] for r in counts), default=None)
    unit = _bucket_unit(since or first, until or last)
    if first is None or last is None:
        return unit, []
    rows = await conn.fetch(_SERIES, since, until, unit)
    return unit, _fill(rows, unit, since or first, until, last)


def _tally(counts: list[Any]) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Counts by state (every known state, zeros included) and by reason, then state."""
    by_state = dict.fromkeys(STATES, 0)
    by_reason: dict[str, dict[str, int]] = {}
    for row in sorted(counts, key=lambda r: (r["reason_code"], _state_order(r["state"]))):
        by_state[row["state"]] = by_state.get(row["state"], 0) + row["n"]
        by_reason.setdefault(row["reason_code"], {})[row["state"]] = row["n"]
    return by_state, by_reason


def _time_to_refund(metrics: Any) -> TimeToRefund:
    p50, p90 = metrics["percentiles"] or (None, None)
    return TimeToRefund(p50=_seconds(p50), p90=_seconds(p90), count=metrics["completed_measured"])


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _state_order(state: str) -> int:
    return STATES.index(state) if state in STATES else len(STATES)


def _rate(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def _seconds(value: float | None) -> float | None:
    """Tenths of a second; milliseconds under a second (a refund paid in 0.3 s is not one
    paid in 0 s, which is what tenths said of most auto-approved refunds)."""
    if value is None:
        return None
    return round(value, 3) if value < 1 else round(value, 1)


def _bucket_unit(start: datetime | None, end: datetime | None) -> BucketUnit:
    if start is None or end is None:
        return "day"
    return "hour" if end - start < HOURLY_BELOW else "day"


def _truncate(when: datetime, unit: str) -> datetime:
    when = when.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return when.replace(hour=0) if unit == "day" else when


def _fill(
    rows: list[Any], unit: str, start: datetime, until: datetime | None, last: datetime
) -> list[SeriesBucket]:
    """Every bucket from the start of the period to its end, empty ones included, so a chart
    shows quiet days as quiet instead of leaving them out."""
    step = timedelta(hours=1) if unit == "hour" else timedelta(days=1)
    # `until` is exclusive: a period ending at midnight has no bucket starting at midnight.
    end = _truncate(until - timedelta(microseconds=1) if until else last, unit)
    found = {r["bucket"].astimezone(UTC): r for r in rows}
    series = []
    bucket = _truncate(start, unit)
    while bucket <= end:
        row = found.get(bucket)
        series.append(
            SeriesBucket(
                start=bucket,
                completed=row["completed"] if row else 0,
                cancelled=row["cancelled"] if row else 0,
                open=row["open"] if row else 0,
                p50_time_to_refund_seconds=_seconds(row["p50"]) if row else None,
            )
        )
        bucket += step
    return series
