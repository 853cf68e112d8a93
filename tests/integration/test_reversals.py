"""A refund the provider takes back after paying it (issue 11, item 3), on the real stack:
the completed refund reopens (webhook or reconciliation, confirmed with the provider), the
customer and subscribers are told, and no money moves again until an operator decides."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from activities.http_adapters import HttpPaymentProvider, HttpService
from activities.reversals import Reopened, reopen_if_reversed
from client import render
from client.refund_client import RefundClient
from client.report import build_report
from client.report_text import render_text
from client.settings import Settings
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, wait_for_state
from tests.integration.test_refund_flow import make_request
from workflows.models import ReconcileInput, StatusView

pytestmark = pytest.mark.stack


async def _paid_refund(
    refunds: RefundClient, sandbox: Sandbox
) -> tuple[StatusView, dict[str, Any]]:
    order = await sandbox.order(amount=4000)
    started = await refunds.request(make_request(order))
    await wait_for_state(refunds, started.refund_id, "completed")
    [paid] = await sandbox.refunds(order["order_id"])
    assert paid["status"] == "succeeded"
    return started, {**order, "provider_refund_id": paid["id"]}


def _reopened(view: StatusView) -> bool:
    return view.state.value == "refunding" and view.awaiting.value == "operator"


async def test_a_reversal_by_webhook_reopens_the_refund_and_only_an_operator_pays_again(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    settings: Settings,
    db: asyncpg.Pool,
) -> None:
    since = datetime.now(UTC)
    started, order = await _paid_refund(refunds, sandbox)
    await faults.reverse(order["provider_refund_id"])
    waiting = await eventually(lambda: refunds.status(started.refund_id), _reopened)
    reopening = [e for e in waiting.timeline if e.event == "provider_reversed"]
    assert len(reopening) == 1 and reopening[0].from_state is not None
    assert reopening[0].from_state.value == "completed" and reopening[0].source == "webhook"
    assert order["provider_refund_id"] in (waiting.provider_failure or "")
    # What `refundflow track` shows the customer: what happened to the money, in their words.
    tracked = render.track(await refunds.track(started.refund_id)).splitlines()
    assert tracked[1] == "  returned by the payment provider: 40.00 USD", tracked
    steps = [line.rsplit("UTC  ", 1)[-1] for line in tracked[3:]]
    assert steps[-2:] == ["paid", "returned by the payment provider"], tracked
    # Told: the customer in the one wording, subscribers as refund.reversed.
    inbox = await eventually(
        lambda: sandbox.inbox(started.refund_id),
        lambda rows: any("returned by the payment provider" in n["subject"] for n in rows),
    )
    told = [n for n in inbox if "returned by the payment provider" in n["subject"]]
    assert len(told) == 1 and "returned to us by the payment provider" in told[0]["body"]
    events = await refunds.events(started.refund_id)
    assert [e.type for e in events].count("refund.reversed") == 1
    # No second payout without a decision, and a repeat of the news changes nothing.
    await asyncio.sleep(2)
    assert len(await sandbox.refunds(order["order_id"])) == 1
    provider = HttpPaymentProvider(
        HttpService(sandbox.http, settings.payment_provider_url, "payment provider")
    )
    again = await reopen_if_reversed(
        refunds.temporal, provider, settings.task_queue, started.refund_id, "webhook"
    )
    assert again is Reopened.RUNNING

    await refunds.operator_retry(started.refund_id, "op_1")
    done = await wait_for_state(refunds, started.refund_id, "completed")
    provider_refunds = await sandbox.refunds(order["order_id"])
    assert sorted(r["status"] for r in provider_refunds) == ["failed", "succeeded"]
    [repaid] = [r for r in provider_refunds if r["status"] == "succeeded"]
    assert repaid["amount"] == started.amount and repaid["id"] != order["provider_refund_id"]
    assert done.escalation_level == 0
    # The projection says completed a moment before the run closes (its record is the run's
    # last step): a reversal reported before then finds it still running.
    await refunds.temporal.get_workflow_handle(started.refund_id).result()
    # The old reversal, reported again after the refund was paid anew: not reopened.
    late = await reopen_if_reversed(
        refunds.temporal,
        provider,
        settings.task_queue,
        started.refund_id,
        "webhook",
        order["provider_refund_id"],
    )
    assert late is Reopened.NOT_PAID_BY_IT
    assert (await refunds.status(started.refund_id)).state.value == "completed"
    # The report counts the reversal, and paid again after it is not a duplicate refund.
    report = await build_report(db, since)
    assert (report.reversals, report.duplicate_refunds) == (1, 0)
    assert "  reversals              1" in render_text(report).splitlines()


async def test_reconciliation_finds_a_reversal_without_webhook_and_an_operator_may_cancel(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults({"payment.webhooks": "false"})
    started, order = await _paid_refund(refunds, sandbox)
    await faults.reverse(order["provider_refund_id"])
    await eventually(
        lambda: sandbox.refunds(order["order_id"]), lambda rows: rows[0]["status"] == "failed"
    )
    assert (await refunds.status(started.refund_id)).state.value == "completed"
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0))
    findings = await (await refunds.store()).findings(run_id=report.run_id)
    [found] = [f for f in findings if f.refund_id == started.refund_id]
    assert (found.kind, found.action) == ("provider_reversed_after_completion", "healed")
    waiting = await eventually(lambda: refunds.status(started.refund_id), _reopened)
    assert waiting.timeline[-2].source == "reconciliation"
    # The order's ledger says the money came back, not "refunded 40.00" (a trial).
    reopened = await refunds.order_ledger(order["order_id"])
    assert reopened is not None
    assert (reopened.refunded, reopened.taken_back) == (0, started.amount)
    assert reopened.held == started.amount  # held again, as its lines say (console, API too)
    summary = render.order_ledger(reopened)[0]
    # Held again, as its lines say (a trial read "held 0.00" above "held 2 x, 40.00").
    assert "held 40.00 USD (40.00 USD of it paid, then taken back by the provider)," in summary
    assert summary.endswith("refunded 0.00 USD"), summary
    # Its lines too: held again by the reopened refund, none refunded (a review).
    assert sum(line.refunded_amount for line in reopened.lines) == 0
    assert sum(line.held_amount for line in reopened.lines) == started.amount

    cancelled = await refunds.operator_cancel(started.refund_id, "op_1", "customer paid by card")
    assert cancelled.state.value == "cancelled"
    # Nothing is out, so the order's money is refundable again.
    ledger = await eventually(
        lambda: refunds.order_ledger(order["order_id"]),
        lambda led: led is not None and led.refunded == 0 and led.held == 0,
    )
    assert ledger is not None


async def test_a_reopened_refund_paid_elsewhere_completes_and_reconciliation_agrees(
    refunds: RefundClient, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    """A review's gap: the bank returned the card refund, and the customer was then paid by
    transfer. The refund completes once, its own returned provider refund counts for
    nothing, and the next reconciliation finds nothing to heal or escalate on it."""
    started, order = await _paid_refund(refunds, sandbox)
    await faults.reverse(order["provider_refund_id"])
    await eventually(lambda: refunds.status(started.refund_id), _reopened)
    done = await refunds.operator_paid_elsewhere(started.refund_id, "op_1", "SEPA TX-5150")
    assert done.state.value == "completed"
    assert done.facts is not None and done.facts.paid_elsewhere
    [returned] = await sandbox.refunds(order["order_id"])  # no second provider refund
    assert returned["status"] == "failed"
    ledger = await eventually(
        lambda: refunds.order_ledger(order["order_id"]),
        lambda led: led is not None and led.refunded == started.amount,
    )
    assert ledger is not None and ledger.held == 0
    await refunds.temporal.get_workflow_handle(started.refund_id).result()
    report = await refunds.reconcile(ReconcileInput(grace_seconds=0, heal=False))
    findings = await (await refunds.store()).findings(run_id=report.run_id, limit=10_000)
    on_it = [
        f for f in findings if f.refund_id == started.refund_id or f.order_id == order["order_id"]
    ]
    assert on_it == []
