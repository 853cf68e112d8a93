"""The worker's Prometheus endpoint (issue 14 item 3): the SDK's `temporal_*` series and
refundflow's own, computed from Postgres, on one scrape of the real test stack's worker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import aiohttp
import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from activities.pg_store import create_pool
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, fresh_database, wait_for_state
from worker.devstack import DevStack
from worker.refund_metrics import DUPLICATE_KINDS, collect, exposition
from workflows.models import RefundRequest

pytestmark = pytest.mark.stack


def samples(text: str) -> Iterator[Sample]:
    for family in text_string_to_metric_families(text):
        yield from family.samples


def value(text: str, name: str, **labels: str) -> float | None:
    for sample in samples(text):
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
            return sample.value
    return None


async def scrape(http: aiohttp.ClientSession, url: str) -> str:
    async with http.get(url) as answer:
        assert answer.status == 200
        assert answer.headers["Content-Type"].startswith("text/plain")
        return await answer.text()


async def test_a_scrape_after_a_refund_has_sdk_and_refundflow_series(
    stack: DevStack,
    sandbox: Sandbox,
    refunds: RefundClient,
    db: asyncpg.Pool,
    http: aiohttp.ClientSession,
) -> None:
    order = await sandbox.order(amount=4000)
    status = await refunds.request(
        RefundRequest(
            refund_key=unique_key("metrics"),
            order_id=order["order_id"],
            amount=1500,
            reason_code="not_as_described",
            channel="app",
            requested_by=order["customer_id"],
        )
    )
    await wait_for_state(refunds, status.refund_id, "completed")

    text = await scrape(http, stack.metrics_url)
    names = {sample.name for sample in samples(text)}
    # The SDK's runtime metrics, through the Runtime the worker's client was given.
    assert "temporal_worker_task_slots_available" in names
    assert "temporal_workflow_task_schedule_to_start_latency_bucket" in names
    # A bucket boundary at the alert's 200 ms (the SDK's defaults jump from 100 to 500).
    bucket = "temporal_workflow_task_schedule_to_start_latency_bucket"
    assert value(text, bucket, task_queue=stack.config.task_queue, le="200") is not None
    assert value(text, "refundflow_metrics_database_up") == 1

    # refundflow's series agree with the projection they are computed from.
    completed = "SELECT count(*) FROM refundflow.refund_status WHERE state = $1"
    labels = {"state": "completed", "reason": "not_as_described", "channel": "app"}
    await eventually(
        lambda: _pair(http, stack, db, completed, labels),
        lambda pair: pair[0] == pair[1] and pair[0] >= 1,
    )
    for kind in DUPLICATE_KINDS:
        assert value(text, "refundflow_duplicate_refunds", kind=kind) is not None, kind
    subscriber = {"subscriber": "customer-notifications"}
    assert value(text, "refundflow_outbox_oldest_undelivered_age_seconds", **subscriber) is not None
    parked = await db.fetchval(
        "SELECT count(*) FROM refundflow.deliveries"
        " WHERE subscriber = 'customer-notifications' AND parked_at IS NOT NULL"
    )
    assert value(text, "refundflow_outbox_parked_events", **subscriber) == parked


async def _pair(
    http: aiohttp.ClientSession,
    stack: DevStack,
    db: asyncpg.Pool,
    query: str,
    labels: dict[str, str],
) -> tuple[float | None, int]:
    """The scraped count of completed refunds for `labels` and the projection's, read
    back to back (earlier tests' refunds may still be finishing)."""
    scraped = value(await scrape(http, stack.metrics_url), "refundflow_refunds", **labels)
    stored = await db.fetchval(
        query.replace("$1", "'completed' AND reason_code = $1 AND channel = $2"),
        labels["reason"],
        labels["channel"],
    )
    return scraped, int(stored)


async def test_duplicates_outbox_age_and_findings_are_counted_from_what_is_stored(
    stack: DevStack,
) -> None:
    """On a database of its own, made to hold what must never happen: an order refunded
    beyond its capture, a second provider refund found by reconciliation, an event a
    subscriber has waited 10 minutes for, and a parked one."""
    assert stack.database_url is not None
    async with fresh_database(stack.database_url, "metrics") as url:
        pool = await create_pool(url)
        try:
            await _store_anomalies(pool)
            text = exposition(await collect(pool)).decode()
        finally:
            await pool.close()
    assert value(text, "refundflow_duplicate_refunds", kind="over_refunded_orders") == 1
    assert value(text, "refundflow_duplicate_refunds", kind="duplicate_provider_refunds") == 1
    assert value(text, "refundflow_duplicate_refunds", kind="confirmed_twice") == 1
    # rf_a took 60 s (first confirmation), rf_b 180 s: the median is between.
    assert value(text, "refundflow_time_to_refund_seconds", quantile="0.5") == 120
    assert value(text, "refundflow_time_to_refund_measured") == 2
    assert value(text, "refundflow_refunds", state="completed", reason="damaged", channel="web")
    age = value(text, "refundflow_outbox_oldest_undelivered_age_seconds", subscriber="crm")
    assert age is not None and 600 <= age < 700
    assert value(text, "refundflow_outbox_undelivered_events", subscriber="crm") == 1
    assert value(text, "refundflow_outbox_parked_events", subscriber="crm") == 1
    assert value(text, "refundflow_reconciliation_findings", kind="duplicate_provider_refunds") == 1
    assert value(text, "refundflow_refunds_escalated", state="pending_review", level="2") == 1


async def _store_anomalies(pool: asyncpg.Pool) -> None:
    now = datetime.now(UTC)
    status = (
        "INSERT INTO refundflow.refund_status (refund_id, refund_key, order_id, state, amount,"
        " currency, awaiting, escalation_level, policy_version, reason_code, channel,"
        " requested_at, updated_at, last_seq)"
        " VALUES ($1, $1, 'ord_1', $2, $3, 'USD', 'nothing', $4, 'standard@v3', 'damaged',"
        " 'web', $5, $5, 1)"
    )
    await pool.execute("INSERT INTO refundflow.order_ledger VALUES ('ord_1', 'USD', 1000)")
    # rf_a confirmed twice by the provider (a double refund), 60 s then 90 s after its
    # request; rf_b first after 180 s. The database chains these hash-less rows itself.
    audit = (
        "INSERT INTO refundflow.audit (refund_id, seq, event, to_state, at, actor, source,"
        " reason, policy_version) VALUES ($1, $2, $3, 'completed', $4, 'x', 'test', '',"
        " 'standard@v3')"
    )
    for refund_id, seq, event, ago in (
        ("rf_a", 1, "requested", 200),
        ("rf_a", 2, "provider_confirmed", 140),
        ("rf_a", 3, "provider_confirmed", 110),
        ("rf_b", 1, "requested", 200),
        ("rf_b", 2, "provider_confirmed", 20),
        # rf_b's payment taken back by the provider and paid again: no duplicate.
        ("rf_b", 3, "provider_reversed", 15),
        ("rf_b", 4, "provider_confirmed", 10),
    ):
        await pool.execute(audit, refund_id, seq, event, now - timedelta(seconds=ago))
    for refund_id, state, amount, level in (
        ("rf_a", "completed", 1000, 0),
        ("rf_b", "completed", 500, 0),
        ("rf_c", "pending_review", 100, 2),
    ):
        await pool.execute(status, refund_id, state, amount, level, now)
        await pool.execute(
            "INSERT INTO refundflow.reservations (refund_id, order_id, amount, state)"
            " VALUES ($1, 'ord_1', $2, $3)",
            refund_id,
            amount,
            "consumed" if state == "completed" else "held",
        )
    await pool.execute(
        "INSERT INTO refundflow.reconciliation_runs (run_id, started_at, finished_at)"
        " VALUES ('run_1', $1, $1)",
        now,
    )
    await pool.execute(
        "INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, action)"
        " VALUES ('run_1', 'duplicate_provider_refunds', 'rf_b', 'ord_1', 'escalated')"
    )
    await pool.execute(
        "INSERT INTO refundflow.subscribers (name, url, secret) VALUES ('crm', 'https://x', 's')"
    )
    for seq, parked in ((1, now), (2, None)):
        await pool.execute(
            "INSERT INTO refundflow.outbox (event_id, refund_id, seq, type, occurred_at,"
            " payload, created_at) VALUES ($1, 'rf_a', $2, 'refund.completed', $3, '{}', $3)",
            f"rf_a:{seq}",
            seq,
            now - timedelta(minutes=10),
        )
        await pool.execute(
            "INSERT INTO refundflow.deliveries (event_id, subscriber, refund_id, seq, parked_at)"
            " VALUES ($1, 'crm', 'rf_a', $2, $3)",
            f"rf_a:{seq}",
            seq,
            parked,
        )
