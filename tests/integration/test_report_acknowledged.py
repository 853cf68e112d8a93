"""`refundflow report` of duplicates someone acknowledged (`refundflow acknowledge`)."""

from __future__ import annotations

import json
from typing import Any

from client.report import build_report
from client.report_text import render_text
from tests.integration import test_report
from tests.integration.test_report import DAY, T0, ReportDb, add_reservation
from workflows.read_models import RefundReport

report_db = test_report.report_db  # its fixture: the same synthetic refunds

TWO_PROVIDER_REFUNDS = {"provider_refunds": 2}


async def test_a_duplicate_dealt_with_outside_refundflow_is_not_an_alarm_to_investigate(
    report_db: ReportDb,
) -> None:
    """A trial: once every finding behind a duplicate was acknowledged (`refundflow
    acknowledge`), the banner still said "investigate now". The count stays (money moved
    twice in the period), the instruction goes; until refundflow's own records show money
    moved twice on the order too (a review: the acknowledgement hid a new over-refund)."""
    details = {"paid_elsewhere": "bank transfer 881", "provider_refunds": ["re_1"]}
    async with report_db.pool.acquire() as conn:
        await conn.execute(
            "INSERT INTO refundflow.reconciliation_runs (run_id, started_at, finished_at)"
            " VALUES ('rec_1', now(), now())"
        )
        await conn.execute(
            "INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, details,"
            " action) VALUES ('rec_1', 'paid_elsewhere_and_by_provider', 'r1', 'ord_a', $1,"
            " 'escalated'), ('rec_1', 'duplicate_provider_refunds', 'r1', NULL, $2,"
            " 'escalated')",  # the second as reconciliation writes it: no order, its refund's
            json.dumps({**details, "not_healed": "paid twice"}),
            json.dumps(TWO_PROVIDER_REFUNDS),
        )
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)
    assert (report.duplicate_orders, report.acknowledged_orders) == (["ord_a"], [])
    assert "on order ord_a; `refundflow anomalies` lists" in render_text(report)

    async def acknowledge(kind: str, details: dict[str, Any]) -> RefundReport:
        async with report_db.pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO refundflow.finding_acknowledgements (kind, subject, details,"
                " acknowledged_by, reason) VALUES ($1, 'r1', $2, 'omar', 'recovered')",
                kind,
                json.dumps(details),
            )
        return await build_report(report_db.pool, T0, T0 + 3 * DAY)

    report = await acknowledge("paid_elsewhere_and_by_provider", details)
    assert report.acknowledged_orders == []  # a finding on its refund still stands
    report = await acknowledge("duplicate_provider_refunds", TWO_PROVIDER_REFUNDS)
    text = render_text(report)
    assert report.duplicate_refunds == 1 and report.acknowledged_orders == ["ord_a"]
    assert "on order ord_a; it is acknowledged as dealt with outside refundflow" in text, text
    assert "investigate now" not in text

    async with report_db.pool.acquire() as conn:  # refunded beyond the capture since
        await add_reservation(conn, "r_extra", "ord_a", 5000, "consumed")
    report = await build_report(report_db.pool, T0, T0 + 3 * DAY)
    assert report.duplicate_refunds == 2 and report.acknowledged_orders == []
    assert "investigate now" in render_text(report)
