"""The reconciliation activity: one set-based comparison of the provider's ledger, inventory
movements and refundflow's own records (no query per refund, so 100k refunds stay fast).

What disagrees is classified; what is safe to heal is healed through the refund's own
workflow (it is told the provider already paid) and recorded; the rest is escalated.
Findings persist in refundflow.findings.

The order ledger (invariant 9) is checked too: order lines whose held or refunded units or
value exceed the line (`units_refunded_twice`), and orders the provider refunded more money
for than refundflow's refunds account for (`provider_money_above_ledger`: money that went
out around refundflow, or a refund paid more than it reserved; each hold accounts only for
what the provider paid for its own refund). Both are about an
order, not one refund: their refund_id is empty and their details name the refunds. A
reservation made at the edge whose workflow never started (`reservation_without_refund`)
is released, which frees its units.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowQueryFailedError
from temporalio.service import RPCError, RPCStatusCode

from activities.closing import close_dead_refund
from activities.http_adapters import HttpInventory, HttpPaymentProvider
from activities.ports import ExternalSystemUnavailable
from activities.reconciliation_sql import FINDINGS_SQL
from activities.reversals import Reopened, reopen_if_reversed
from workflows import names
from workflows.models import ProviderSettlement, ReconcileInput, ReconcileReport
from workflows.vocabulary import FINDING_KINDS as KINDS

log = structlog.get_logger("refundflow.reconciliation")

REVERSED = "provider_reversed_after_completion"
ORPHAN = "reservation_without_refund"
CLOSED = "workflow_closed_abnormally"
ORPHAN_AFTER_SECONDS = 600
"""A reservation without a refund is left alone this long (whatever the grace): between the
edge's reservation and the workflow's first record, a refund has no recorded status yet (at
most the opening status of a request answered before its first step, last_seq 0)."""
HEAL_TAKES_SECONDS = 300
"""A workflow told of a payment records it in seconds; a later run that still finds it
unrecorded this long after escalates instead of telling it again."""


class ReconciliationActivities:
    def __init__(
        self,
        pool: asyncpg.Pool,
        payment: HttpPaymentProvider,
        inventory: HttpInventory,
        temporal: Client,
    ) -> None:
        self._pool = pool
        self._payment = payment
        self._inventory = inventory
        self._temporal = temporal

    @activity.defn(name=names.ACTIVITY_RECONCILE)
    async def reconcile(self, inp: ReconcileInput) -> ReconcileReport:
        started = time.monotonic()
        run_id = f"rec_{uuid.uuid4().hex[:16]}"
        async with self._pool.acquire() as conn:
            await conn.execute(
                "INSERT INTO refundflow.reconciliation_runs (run_id, started_at)"
                " VALUES ($1, now())",
                run_id,
            )
            async with conn.transaction():
                ledger_rows = await self._load_ledger(conn)
                await self._load_movements(conn)
                await self._load_abnormal_closes(conn)
                rows = await conn.fetch(FINDINGS_SQL, inp.grace_seconds, ORPHAN_AFTER_SECONDS)
                refunds = await conn.fetchval("SELECT count(*) FROM refundflow.refund_status")
            findings = []
            for row in rows:
                findings.append(await self._act(dict(row), inp.heal))
                activity.heartbeat(len(findings))  # many heals after an outage take a while
            await conn.executemany(
                "INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, details,"
                " action) VALUES ($1, $2, $3, $4, $5, $6)",
                [
                    (
                        run_id,
                        f["kind"],
                        f["refund_id"],
                        f["order_id"],
                        json.dumps(f["details"]),
                        f["action"],
                    )
                    for f in findings
                ],
            )
            await conn.execute(
                "UPDATE refundflow.reconciliation_runs SET finished_at = now(), refunds = $2,"
                " findings = $3 WHERE run_id = $1",
                run_id,
                refunds,
                len(findings),
            )
        counts = {kind: sum(1 for f in findings if f["kind"] == kind) for kind in KINDS}
        report = ReconcileReport(
            run_id=run_id,
            refunds=refunds,
            provider_refunds=ledger_rows,
            findings={k: v for k, v in counts.items() if v},
            healed=sum(1 for f in findings if f["action"] == "healed"),
            escalated=sum(1 for f in findings if f["action"] == "escalated"),
            reported=sum(1 for f in findings if f["action"] == "reported"),
            seconds=round(time.monotonic() - started, 3),
        )
        log.info("reconciled", **report.model_dump(exclude={"findings"}), **report.findings)
        return report

    async def _load_ledger(self, conn: asyncpg.Connection) -> int:
        await conn.execute(
            "CREATE TEMP TABLE provider_ledger (provider_refund_id text, refund_id text,"
            " order_id text, amount bigint, currency text, status text) ON COMMIT DROP"
        )
        total = 0
        async for page in self._payment.ledger_pages(page_size=5000):
            await conn.copy_records_to_table(
                "provider_ledger",
                records=[
                    (
                        r["id"],
                        (r.get("metadata") or {}).get("refund_id"),
                        r["order_id"],
                        r["amount"],
                        r["currency"],
                        r["status"],
                    )
                    for r in page
                ],
            )
            total += len(page)
            activity.heartbeat(total)
        await conn.execute("CREATE INDEX ON provider_ledger (refund_id)")
        await conn.execute("ANALYZE provider_ledger")
        return total

    async def _load_movements(self, conn: asyncpg.Connection) -> None:
        await conn.execute(
            "CREATE TEMP TABLE stock_moves (movement_id text, reference text, sku text,"
            " quantity integer) ON COMMIT DROP"
        )
        movements = await self._inventory.list_movements()
        await conn.copy_records_to_table(
            "stock_moves",
            records=[(m["id"], m["reference"], m["sku"], m["quantity"]) for m in movements],
        )
        await conn.execute("CREATE INDEX ON stock_moves (reference)")
        await conn.execute("ANALYZE stock_moves")

    async def _load_abnormal_closes(self, conn: asyncpg.Connection) -> None:
        """Refund workflows Temporal ended without the refund ending (from visibility:
        few, they need a person's hand)."""
        await conn.execute(
            "CREATE TEMP TABLE closed_workflows (refund_id text, run_id text, status text,"
            " closed_at timestamptz) ON COMMIT DROP"
        )
        query = f"WorkflowType = 'RefundWorkflow' AND {names.ABNORMAL_CLOSES}"
        closed = []
        async for run in self._temporal.list_workflows(query):
            # A reset (the Web UI's Reset) terminates the old run and goes on in a new one:
            # only a refund whose latest run ended this way is dead.
            latest = await self._temporal.get_workflow_handle(run.id).describe()
            if latest.run_id != run.run_id:
                continue
            status = run.status.name.lower() if run.status else "?"
            closed.append((run.id, run.run_id, status, run.close_time))
        await conn.copy_records_to_table("closed_workflows", records=closed)

    async def _act(self, finding: dict[str, Any], heal: bool) -> dict[str, Any]:
        finding["details"] = json.loads(finding["details"])
        finding["action"] = "escalated" if heal else "reported"
        if heal and finding["healable"]:
            healer = {
                ORPHAN: self._release_orphan,
                CLOSED: self._close_dead_refund,
                REVERSED: self._reopen_reversed,
            }.get(finding["kind"], self._signal_paid)
            try:
                if await healer(finding):
                    finding["action"] = "healed"
            except (RPCError, WorkflowQueryFailedError, ExternalSystemUnavailable) as err:
                finding["details"]["heal_error"] = str(err)
        log.warning(
            "reconciliation_finding",
            kind=finding["kind"],
            refund_id=finding["refund_id"],
            order_id=finding["order_id"],
            action=finding["action"],
        )
        return finding

    async def _signal_paid(self, finding: dict[str, Any]) -> bool:
        """Tell the refund's workflow the provider paid (it confirms before acting). One
        Temporal ended is not asked here: its `workflow_closed_abnormally` finding records
        the payment (FINDINGS_SQL). Told before, long enough ago, and still not recorded:
        its run does not take it (one reset in Temporal to before the payment was asked for
        holds another state), so a person must look; "healed" again would hide it."""
        told = await self._pool.fetchval(
            "SELECT max(created_at) FROM refundflow.findings WHERE kind = $1"
            " AND refund_id = $2 AND action = 'healed'"
            " AND created_at < now() - make_interval(secs => $3)",
            finding["kind"],
            finding["refund_id"],
            HEAL_TAKES_SECONDS,
        )
        if told is not None:
            finding["details"]["not_healed"] = (
                f"its workflow was told of the payment at {told:%Y-%m-%d %H:%M:%S} UTC and has"
                " not recorded it: its run may hold another state (a Reset in Temporal to"
                " before the payment?); compare `refundflow status` with `--live`"
            )
            return False
        try:
            await self._temporal.get_workflow_handle(finding["refund_id"]).signal(
                names.SIGNAL_PROVIDER_SETTLED,
                ProviderSettlement(
                    provider_refund_id=finding["provider_refund_id"],
                    status="succeeded",
                    source="reconciliation",
                ),
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            finding["details"]["not_healed"] = (
                "its workflow is not running in Temporal, so it cannot hear of the payment"
            )
            return False
        return True

    async def _reopen_reversed(self, finding: dict[str, Any]) -> bool:
        """A completed refund whose provider refund failed after all: reopened (for an
        operator to decide) once the provider confirms it (activities/reversals.py)."""
        outcome = await reopen_if_reversed(
            self._temporal,
            self._payment,
            activity.info().task_queue,  # the refunds' queue: reconciliation runs on it
            finding["refund_id"],
            "reconciliation",
        )
        finding["details"]["reopen"] = outcome.value
        return outcome in (Reopened.REOPENED, Reopened.ALREADY)

    async def _release_orphan(self, finding: dict[str, Any]) -> bool:
        """Release a reservation whose refund never started: only when Temporal has no
        workflow under its id (a workflow that exists but never recorded anything is
        escalated instead: someone must look)."""
        try:
            await self._temporal.get_workflow_handle(finding["refund_id"]).describe()
            return False
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
        released = await self._pool.execute(
            "UPDATE refundflow.reservations SET state = 'released', updated_at = now()"
            " WHERE refund_id = $1 AND state = 'held' AND NOT EXISTS (SELECT 1 FROM"
            " refundflow.refund_status s WHERE s.refund_id = $1 AND s.last_seq > 0)",
            finding["refund_id"],
        )
        return bool(released == "UPDATE 1")

    async def _close_dead_refund(self, finding: dict[str, Any]) -> bool:
        return await close_dead_refund(
            self._temporal, self._pool, self._payment, finding, self._inventory
        )

    async def anomalies(self, limit: int = 200) -> list[dict[str, Any]]:
        rows = await self._pool.fetch(
            "SELECT * FROM refundflow.findings ORDER BY finding_id DESC LIMIT $1", limit
        )
        return [dict(r) for r in rows]
