"""refundflow's own Prometheus series, computed from Postgres when scraped.

Nothing is counted in process: the projection, the outbox and the findings already hold the
truth, and every worker (or none) can answer a scrape with the same numbers. Each query is
one aggregate that an index serves, or bounded by a recent window, so a scrape every 15 s
stays cheap; `refundflow report` is the place for all-time detail.

Read-only; runs as the app's role in one REPEATABLE READ snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import asyncpg
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

RECENT_DAYS = 7
"""Duplicate checks look at refunds and orders that changed within this many days: a
duplicate keeps its alert firing that long after the refund last changed."""

_BY_STATE = """
    SELECT state, reason_code, channel, count(*) AS n
    FROM refundflow.refund_status GROUP BY state, reason_code, channel
"""
# Escalation is the SLA timer's doing; the partial index holds only escalated refunds.
_ESCALATED = """
    SELECT state, escalation_level AS level, count(*) AS n
    FROM refundflow.refund_status WHERE escalation_level > 0
    GROUP BY state, escalation_level
"""
# Both served by the partial indexes of undelivered and of parked deliveries.
_OUTBOX = """
    SELECT s.name AS subscriber,
           (SELECT count(*) FROM refundflow.deliveries d
             WHERE d.subscriber = s.name AND d.delivered_at IS NULL AND d.parked_at IS NULL)
             AS undelivered,
           (SELECT extract(epoch FROM now() - min(o.created_at))::float8
              FROM refundflow.deliveries d JOIN refundflow.outbox o USING (event_id)
             WHERE d.subscriber = s.name AND d.delivered_at IS NULL AND d.parked_at IS NULL)
             AS oldest_age,
           (SELECT count(*) FROM refundflow.deliveries d
             WHERE d.subscriber = s.name AND d.parked_at IS NOT NULL) AS parked
    FROM refundflow.subscribers s WHERE s.active
"""
# What the latest finished reconciliation run found (the anomalies open now), by kind.
_FINDINGS = """
    WITH latest AS (
        SELECT run_id, finished_at FROM refundflow.reconciliation_runs
        WHERE finished_at IS NOT NULL ORDER BY finished_at DESC LIMIT 1
    )
    SELECT f.kind, count(*) AS n, max(extract(epoch FROM l.finished_at))::float8 AS at
    FROM latest l LEFT JOIN refundflow.findings f USING (run_id)
    GROUP BY f.kind
"""
# Duplicates as `refundflow report` defines them, over recently changed refunds: confirmed
# twice by the provider (unless it took the first payment back in between: a reversal
# reopens the refund, and paying it again is no duplicate); an order whose paid refunds
# exceed its capture; what the reconciliation found on the provider's side (a second
# provider refund, units refunded twice, more money at the provider than the ledger allows,
# a refund paid elsewhere that the provider paid too).
_DUPLICATES = """
    WITH recent AS (
        SELECT refund_id, order_id FROM refundflow.refund_status
        WHERE updated_at > now() - make_interval(days => $1)
    )
    SELECT 'confirmed_twice' AS kind, count(*) AS n FROM (
        SELECT a.refund_id FROM recent r JOIN refundflow.audit a USING (refund_id)
        WHERE a.event IN ('provider_confirmed', 'provider_reversed') GROUP BY a.refund_id
        HAVING count(*) FILTER (WHERE a.event = 'provider_confirmed')
             > 1 + count(*) FILTER (WHERE a.event = 'provider_reversed')) x
    UNION ALL
    SELECT 'over_refunded_orders', count(*) FROM (
        SELECT l.order_id FROM refundflow.order_ledger l
        JOIN refundflow.reservations v ON v.order_id = l.order_id AND v.state = 'consumed'
        WHERE l.order_id IN (SELECT order_id FROM recent)
        GROUP BY l.order_id, l.captured_amount HAVING sum(v.amount) > l.captured_amount) y
    UNION ALL
    SELECT f.kind, count(DISTINCT coalesce(f.refund_id, f.order_id))
    FROM refundflow.findings f
    WHERE f.kind IN ('duplicate_provider_refunds', 'units_refunded_twice',
                     'provider_money_above_ledger', 'paid_elsewhere_and_by_provider',
                     'paid_above_capture')
      AND f.created_at > now() - make_interval(days => $1)
    GROUP BY f.kind
"""
# Time to refund as `refundflow report` measures it (the request's audit entry to the
# provider's first confirmation), for refunds completed within the last day: the state
# index finds them, the audit's primary key their two entries.
_TIME_TO_REFUND = """
    SELECT percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY seconds) AS q,
           count(*) AS n
    FROM (
        SELECT extract(epoch FROM
                 (SELECT min(c.at) FROM refundflow.audit c
                   WHERE c.refund_id = s.refund_id AND c.event = 'provider_confirmed')
               - (SELECT r.at FROM refundflow.audit r
                   WHERE r.refund_id = s.refund_id AND r.seq = 1))::float8 AS seconds
        FROM refundflow.refund_status s
        WHERE s.state = 'completed' AND s.updated_at > now() - interval '1 day'
    ) t
    WHERE seconds IS NOT NULL
"""
QUANTILES = ("0.5", "0.9", "0.99")
DUPLICATE_KINDS = (
    "confirmed_twice",
    "over_refunded_orders",
    "duplicate_provider_refunds",
    "units_refunded_twice",
    "provider_money_above_ledger",
    "paid_elsewhere_and_by_provider",
    "paid_above_capture",
)


async def collect(pool: asyncpg.Pool) -> list[Metric]:
    """Every refundflow series, from one snapshot."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        return [
            *_refunds(await conn.fetch(_BY_STATE), await conn.fetch(_ESCALATED)),
            *_outbox(await conn.fetch(_OUTBOX)),
            *_findings(await conn.fetch(_FINDINGS)),
            _duplicates(await conn.fetch(_DUPLICATES, RECENT_DAYS)),
            *_time_to_refund(await conn.fetchrow(_TIME_TO_REFUND)),
        ]


def exposition(metrics: Iterable[Metric]) -> bytes:
    """The Prometheus text format of `metrics`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed(list(metrics)))
    return generate_latest(registry)


class _Fixed(Collector):
    def __init__(self, metrics: list[Metric]) -> None:
        self.metrics = metrics

    def collect(self) -> Iterable[Metric]:
        return self.metrics


def _refunds(by_state: list[Any], escalated: list[Any]) -> list[Metric]:
    refunds = GaugeMetricFamily(
        "refundflow_refunds",
        "Refunds by state, the customer's reason and the channel they came from",
        labels=["state", "reason", "channel"],
    )
    for row in by_state:
        refunds.add_metric([row["state"], row["reason_code"], row["channel"]], row["n"])
    breaches = GaugeMetricFamily(
        "refundflow_refunds_escalated",
        "Refunds their SLA timer escalated (review not decided in time), by state and level",
        labels=["state", "level"],
    )
    for row in escalated:
        breaches.add_metric([row["state"], str(row["level"])], row["n"])
    return [refunds, breaches]


def _outbox(rows: list[Any]) -> list[Metric]:
    undelivered = GaugeMetricFamily(
        "refundflow_outbox_undelivered_events",
        "Events waiting for delivery (not delivered, not parked), by subscriber",
        labels=["subscriber"],
    )
    oldest = GaugeMetricFamily(
        "refundflow_outbox_oldest_undelivered_age_seconds",
        "Age of the oldest event a subscriber has not received yet (0: none waiting)",
        labels=["subscriber"],
    )
    parked = GaugeMetricFamily(
        "refundflow_outbox_parked_events",
        "Events past their subscriber's budget (dead letters until replayed)",
        labels=["subscriber"],
    )
    for row in rows:
        undelivered.add_metric([row["subscriber"]], row["undelivered"])
        oldest.add_metric([row["subscriber"]], row["oldest_age"] or 0.0)
        parked.add_metric([row["subscriber"]], row["parked"])
    return [undelivered, oldest, parked]


def _findings(rows: list[Any]) -> list[Metric]:
    findings = GaugeMetricFamily(
        "refundflow_reconciliation_findings",
        "What the latest finished reconciliation run found, by kind",
        labels=["kind"],
    )
    last_run = GaugeMetricFamily(
        "refundflow_reconciliation_last_run_timestamp_seconds",
        "When the latest reconciliation run finished (Unix time)",
    )
    for row in rows:
        if row["kind"] is not None:
            findings.add_metric([row["kind"]], row["n"])
    if rows:
        last_run.add_metric([], rows[0]["at"])
    return [findings, last_run]


def _duplicates(rows: list[Any]) -> Metric:
    found = {row["kind"]: row["n"] for row in rows}
    duplicates = GaugeMetricFamily(
        "refundflow_duplicate_refunds",
        f"Refunds or orders paid twice or beyond their capture, changed within {RECENT_DAYS}"
        " days, by how each was found (must be 0; one incident can show under several kinds,"
        " so the sum is an alarm, not a count: `refundflow report` counts refunds)",
        labels=["kind"],
    )
    for kind in DUPLICATE_KINDS:  # zeros too, so "any duplicate" alerts have a series
        duplicates.add_metric([kind], found.get(kind, 0))
    return duplicates


def _time_to_refund(row: Any) -> list[Metric]:
    quantiles = GaugeMetricFamily(
        "refundflow_time_to_refund_seconds",
        "From request to the provider's confirmation, refunds completed in the last day",
        labels=["quantile"],
    )
    measured = GaugeMetricFamily(
        "refundflow_time_to_refund_measured",
        "Refunds completed in the last day that the time-to-refund quantiles are made of",
    )
    measured.add_metric([], row["n"])
    for quantile, seconds in zip(QUANTILES, row["q"] or (), strict=False):
        quantiles.add_metric([quantile], seconds)
    return [quantiles, measured]
