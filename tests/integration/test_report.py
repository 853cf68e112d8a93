"""`refundflow report`: metrics from Postgres alone, checked to the exact number on synthetic
refunds in a database of their own (other tests' refunds would make the counts drift)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from activities.pg_store import create_pool
from client.report import build_report
from client.report_chart import SVG_NS, write_chart
from client.report_text import render_text
from client.settings import Settings
from tests.integration.helpers import fresh_database, run_cli
from worker.devstack import DevStack
from workflows.read_models import SeriesBucket, TimeToRefund

pytestmark = pytest.mark.stack

T0 = datetime(2026, 3, 2, tzinfo=UTC)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
PAYMENTS = "payment_provider"


@dataclass
class Synthetic:
    refund_id: str
    order_id: str
    state: str
    reason: str
    requested: timedelta
    """After T0."""
    events: list[tuple[str, int, str]]
    """(event, seconds after the request, source), after the `requested` entry."""
    amount: int = 500


# In [T0, T0 + 3 days): ten refunds. Completed ones take 60, 120, 180, 240 and 300 s from
# request to provider confirmation: p50 180 s, p90 276 s (percentile_cont).
REFUNDS = [
    Synthetic("r1", "ord_a", "completed", "damaged", 1 * HOUR,
              [("provider_confirmed", 60, PAYMENTS)], amount=1000),
    Synthetic("r2", "ord_a", "completed", "damaged", 2 * HOUR,
              [("provider_confirmed", 120, PAYMENTS)], amount=2000),
    # Rejected; r7 on the same order is requested after: reopened.
    Synthetic("r6", "ord_b", "cancelled", "damaged", 3 * HOUR, [("reject", 3600, "reviewer")]),
    Synthetic("r7", "ord_b", "pending_review", "damaged", 5 * HOUR,
              [("escalated", 60, "reviewer")]),
    Synthetic("r3", "ord_e", "completed", "late", DAY + 1 * HOUR,
              [("provider_confirmed", 180, PAYMENTS)]),
    # Escalated twice by the review timer: one SLA breach.
    Synthetic("r4", "ord_e", "completed", "late", DAY + 2 * HOUR,
              [("escalated", 30, "timer"), ("escalated", 60, "timer"),
               ("provider_confirmed", 240, PAYMENTS)]),
    # Withdrawn; r9 on the same order was requested before the withdrawal: not a reopen.
    Synthetic("r8", "ord_c", "cancelled", "late", DAY + 3 * HOUR, [("withdraw", 3600, "customer")]),
    Synthetic("r9", "ord_c", "approved", "late", DAY + 3.5 * HOUR, [("approve", 60, "reviewer")]),
    Synthetic("r5", "ord_f", "completed", "wrong_item", 2 * DAY + 1 * HOUR,
              [("provider_confirmed", 300, PAYMENTS)]),
    Synthetic("r10", "ord_d", "refunding", "wrong_item", 2 * DAY + 2 * HOUR,
              [("start_refund", 10, "system")]),
    # Outside the three days.
    Synthetic("r_before", "ord_g", "completed", "damaged", -DAY,
              [("provider_confirmed", 999, PAYMENTS)]),
    Synthetic("r_after", "ord_g", "completed", "damaged", 10 * DAY,
              [("provider_confirmed", 999, PAYMENTS)]),
]  # fmt: skip
CAPTURED = {"ord_a": 3000}  # r1 + r2 consume exactly what was captured: not over-refunded
DEFAULT_CAPTURED = 10_000


@dataclass
class ReportDb:
    url: str
    pool: asyncpg.Pool


@pytest.fixture
async def report_db(settings: Settings) -> AsyncIterator[ReportDb]:
    """A fresh, migrated database holding only the synthetic refunds above."""
    async with fresh_database(settings.require_database_url(), "report") as url:
        pool = await create_pool(url)
        try:
            await seed(pool)
            yield ReportDb(url, pool)
        finally:
            await pool.close()


async def seed(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn, conn.transaction():
        for order_id in sorted({r.order_id for r in REFUNDS}):
            await conn.execute(
                "INSERT INTO refundflow.order_ledger VALUES ($1, 'USD', $2)",
                order_id,
                CAPTURED.get(order_id, DEFAULT_CAPTURED),
            )
        for r in REFUNDS:
            requested_at = T0 + r.requested
            entries = [("requested", 0, "customer"), *r.events]
            for seq, (event, after, source) in enumerate(entries, start=1):
                await add_audit(conn, r.refund_id, seq, event, requested_at, after, source, r.state)
            updated_at = requested_at + timedelta(seconds=entries[-1][1])
            await conn.execute(
                """
                INSERT INTO refundflow.refund_status VALUES
                    ($1, $1, $2, $3, $4, 'USD', 'nothing', 0, 'standard-v1', $5, 'web',
                     $6, $7, $8)
                """,
                r.refund_id, r.order_id, r.state, r.amount, r.reason,
                requested_at, updated_at, len(entries),
            )  # fmt: skip
            reservation = {"completed": "consumed", "cancelled": "released"}.get(r.state, "held")
            await add_reservation(conn, r.refund_id, r.order_id, r.amount, reservation)


async def add_audit(
    conn: asyncpg.Connection,
    refund_id: str,
    seq: int,
    event: str,
    requested_at: datetime,
    after_seconds: float,
    source: str,
    state: str,
) -> None:
    await conn.execute(
        """
        INSERT INTO refundflow.audit (refund_id, seq, event, from_state, to_state, at, actor,
            source, reason, escalation_level, policy_version)
        VALUES ($1, $2, $3, NULL, $4, $5, 'tester', $6, 'synthetic', 0, 'standard-v1')
        """,
        refund_id, seq, event, "pending_review" if seq == 1 else state,
        requested_at + timedelta(seconds=after_seconds), source,
    )  # fmt: skip


async def add_reservation(
    conn: asyncpg.Connection, refund_id: str, order_id: str, amount: int, state: str
) -> None:
    await conn.execute(
        "INSERT INTO refundflow.reservations (refund_id, order_id, amount, state)"
        " VALUES ($1, $2, $3, $4)",
        refund_id,
        order_id,
        amount,
        state,
    )


def bucket(
    start: datetime, completed: int, cancelled: int, open_: int, p50: float | None
) -> SeriesBucket:
    return SeriesBucket(
        start=start,
        completed=completed,
        cancelled=cancelled,
        open=open_,
        p50_time_to_refund_seconds=p50,
    )


async def test_three_days_of_refunds_give_exact_metrics(report_db: ReportDb) -> None:
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)

    assert (report.since, report.until) == (T0, T0 + 3 * DAY)
    assert report.refunds == 10
    assert report.by_state == {
        "pending_review": 1,
        "approved": 1,
        "refunding": 1,
        "completed": 5,
        "cancelled": 2,
    }
    assert report.by_reason == {
        "damaged": {"pending_review": 1, "completed": 2, "cancelled": 1},
        "late": {"approved": 1, "completed": 2, "cancelled": 1},
        "wrong_item": {"refunding": 1, "completed": 1},
    }
    assert report.time_to_refund_seconds == TimeToRefund(p50=180.0, p90=276.0, count=5)
    assert report.sla_breaches == 1  # r4, escalated twice by the timer
    assert report.escalation_rate == 0.2  # r4 and r7
    assert report.duplicate_refunds == 0
    # r6 (rejected) reopened by r7; r8 was withdrawn, not refused (nor would r9, requested
    # before it, reopen it).
    assert (report.reopen_rate, report.reopened, report.refused) == (1.0, 1, 1)
    assert report.bucket == "day"
    assert report.series == [
        bucket(T0, 2, 1, 1, 90.0),
        bucket(T0 + DAY, 2, 1, 1, 210.0),
        bucket(T0 + 2 * DAY, 1, 0, 1, 300.0),
    ]
    # In JSON, datetimes are ISO strings as datetime.isoformat() writes them.
    data = json.loads(report.model_dump_json())
    assert data["since"] == "2026-03-02T00:00:00+00:00"
    assert data["until"] == "2026-03-05T00:00:00+00:00"
    assert data["series"][0]["start"] == "2026-03-02T00:00:00+00:00"
    assert datetime.fromisoformat(data["generated_at"]) == report.generated_at

    text = render_text(report)
    assert "duplicate refunds      0 (must be 0)" in text
    assert "time to refund p50     3m 00s  (180 s)" in text
    assert "escalation rate        20.00%" in text
    assert "reopen rate            100.00%   (1 of 1 refused asked again)" in text
    assert "2026-03-04 00:00" in text and "(0.2)" not in text


async def test_a_span_under_two_days_is_bucketed_by_hour(report_db: ReportDb) -> None:
    report = await build_report(report_db.pool, T0, T0 + 6 * HOUR)

    assert report.refunds == 4  # r1, r2, r6, r7
    assert report.bucket == "hour"
    assert report.series == [
        bucket(T0, 0, 0, 0, None),
        bucket(T0 + HOUR, 1, 0, 0, 60.0),
        bucket(T0 + 2 * HOUR, 1, 0, 0, 120.0),
        bucket(T0 + 3 * HOUR, 0, 1, 0, None),
        bucket(T0 + 4 * HOUR, 0, 0, 0, None),
        bucket(T0 + 5 * HOUR, 0, 0, 1, None),
    ]
    assert report.time_to_refund_seconds == TimeToRefund(p50=90.0, p90=114.0, count=2)
    assert (report.escalation_rate, report.reopen_rate) == (0.25, 1.0)


async def test_without_bounds_every_refund_counts(report_db: ReportDb) -> None:
    report = await build_report(report_db.pool)

    assert (report.since, report.until) == (None, None)
    assert report.refunds == 12
    assert report.time_to_refund_seconds == TimeToRefund(p50=240.0, p90=999.0, count=7)
    # Daily, from the first request's day to the last's, quiet days included.
    assert report.bucket == "day"
    assert len(report.series) == 12
    assert report.series[0].start == T0 - DAY
    assert report.series[-1].start == T0 + 10 * DAY
    assert sum(b.completed + b.cancelled + b.open for b in report.series) == 12


async def test_a_refund_paid_within_a_second_is_timed_in_milliseconds(
    report_db: ReportDb,
) -> None:
    """An auto-approved refund is paid in a fraction of a second: the report must not say
    it took 0 s (it rounded to tenths, a trial read "time to refund p50 0 s")."""
    requested_at = T0 + 20 * DAY
    async with report_db.pool.acquire() as conn:
        for seq, (event, after) in enumerate([("requested", 0.0), ("provider_confirmed", 0.04)]):
            await add_audit(
                conn, "r_fast", seq + 1, event, requested_at, after, PAYMENTS, "completed"
            )
        await conn.execute(
            """
            INSERT INTO refundflow.refund_status VALUES
                ('r_fast', 'r_fast', 'ord_fast', 'completed', 500, 'USD', 'nothing', 0,
                 'standard-v1', 'damaged', 'web', $1, $1, 2)
            """,
            requested_at,
        )

    report = await build_report(report_db.pool, requested_at, requested_at + HOUR)

    assert report.time_to_refund_seconds == TimeToRefund(p50=0.04, p90=0.04, count=1)
    assert "time to refund p50     0.04 s" in render_text(report)


async def test_a_period_without_refunds(report_db: ReportDb, tmp_path: Path) -> None:
    report = await build_report(report_db.pool, T0 + 100 * DAY, T0 + 101 * DAY)

    assert report.refunds == 0
    assert report.time_to_refund_seconds == TimeToRefund(p50=None, p90=None, count=0)
    assert (report.escalation_rate, report.reopen_rate) == (0.0, 0.0)
    assert (report.sla_breaches, report.duplicate_refunds) == (0, 0)
    assert report.series == []
    assert "no refunds in this period" in render_text(report)
    page = write_chart(report, tmp_path / "empty.html").read_text()
    assert "no refunds in this period" in page


async def test_a_second_provider_confirmation_is_a_duplicate_refund(report_db: ReportDb) -> None:
    async with report_db.pool.acquire() as conn:
        await add_audit(conn, "r1", 3, "provider_confirmed", T0 + HOUR, 90, PAYMENTS, "completed")
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)
    assert report.duplicate_refunds == 1
    # Time to refund still counts from the first confirmation.
    assert report.time_to_refund_seconds.p50 == 180.0
    text = render_text(report)
    assert "duplicate refunds      1 !!! MUST BE 0" in text
    # A trial: the alarm said "investigate now" and named nothing to investigate.
    assert report.duplicate_orders == ["ord_a"]
    assert "money may have been refunded twice or around refundflow on order ord_a;" in text

    # More consumed than captured on an order: one more.
    async with report_db.pool.acquire() as conn:
        await add_reservation(conn, "r_extra", "ord_a", 1, "consumed")
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)
    assert report.duplicate_refunds == 2


async def test_chart_is_one_self_contained_page(report_db: ReportDb, tmp_path: Path) -> None:
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)
    report.by_reason["<script>alert(1)</script>"] = {"completed": 1}

    path = write_chart(report, tmp_path / "report.html")

    page = path.read_text(encoding="utf-8")
    assert path == tmp_path / "report.html"
    assert page.count("<svg") == 2
    for headline in ("10", "3m 00s", "4m 36s", "20.00%", "100.00%", "0 (must be 0)"):
        assert f'<span class="value">{headline}</span>' in page
    for legend in ("completed", "cancelled", "open"):
        assert f">{legend}</text>" in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "<script" not in page.lower()
    without_namespace = page.replace(f'xmlns="{SVG_NS}"', "")
    assert "http://" not in without_namespace and "https://" not in without_namespace
    assert "src=" not in page and "href=" not in page and "@import" not in page


async def test_report_command(report_db: ReportDb, stack: DevStack, tmp_path: Path) -> None:
    env = {**stack.env(), "DATABASE_URL": report_db.url}
    chart = tmp_path / "chart.html"
    window = ("--since", "2026-03-02", "--until", "2026-03-05T00:00:00Z", "--chart", str(chart))

    code, out, err = await run_cli(env, "report", *window)
    assert code == 0, err
    assert out.rstrip().endswith(f"chart written to {chart}")
    assert "0 (must be 0)" in out
    assert "<svg" in chart.read_text()

    code, out, err = await run_cli(env, "report", *window, "--json")
    assert code == 0, err
    data = json.loads(out)
    assert data["refunds"] == 10 and data["chart"] == str(chart)
    assert data["time_to_refund_seconds"] == {"p50": 180.0, "p90": 276.0, "count": 5}

    code, out, err = await run_cli(env, "report", "--since", "2026-13-45")
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and "2026-13-45" in err

    code, out, err = await run_cli(env, "report", "--since", "2026-03-05", "--until", "2026-03-02")
    assert (code, err) == (2, "error: --since must be before --until\n")
    # A period that has not begun reported "refunds 0" as if it had been looked at (a trial).
    code, out, err = await run_cli(env, "report", "--since", "2999-01-01")
    assert (code, out) == (2, "") and err.startswith(
        "error: --since 2999-01-01 00:00 UTC is in the future: no refund was requested then"
    ), err
