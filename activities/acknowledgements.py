"""A person's word that a finding reconciliation cannot heal is dealt with outside
refundflow (`refundflow acknowledge`): money recovered from a customer paid twice, a
provider's refund taken back in its dashboard. Without it, `reconcile --check` says "a
person must look" on every run for as long as the money stays as it is, and a cron job
alerts forever (a trial).

It holds for the finding's details as they were acknowledged: a run that finds them changed
(another provider refund, a new amount) is news again. It is no money fact: holds, statuses
and the console still read the finding as open, with who acknowledged it and why."""

from __future__ import annotations

import json

from activities.pg_store import PostgresRefundStore
from workflows.read_models import Finding
from workflows.vocabulary import DISPATCHER_RUN

_ACKNOWLEDGE_SQL = """
INSERT INTO refundflow.finding_acknowledgements (kind, subject, details, acknowledged_by, reason)
VALUES ($1, $2, $3::jsonb, $4, $5)
ON CONFLICT (kind, subject) DO UPDATE SET details = EXCLUDED.details,
    acknowledged_by = EXCLUDED.acknowledged_by, reason = EXCLUDED.reason,
    acknowledged_at = now()
"""


class NothingToAcknowledge(Exception):
    """No open finding of that kind on that refund or order (its words say where to look)."""


async def acknowledge(
    store: PostgresRefundStore,
    kind: str,
    *,
    refund_id: str | None,
    order_id: str | None,
    by: str,
    reason: str,
) -> tuple[Finding, Finding]:
    """The open finding of `kind` on the refund (or, without one, the order as a whole),
    acknowledged by `by` for `reason`: as it was (an earlier acknowledgement it replaces
    included), and as now listed."""
    subject = refund_id or order_id
    assert subject is not None, "a refund or an order"
    newest = await _open_finding(store, kind, refund_id, order_id)
    if newest is None:
        where = f"--refund {refund_id}" if refund_id else f"--order {order_id}"
        raise NothingToAcknowledge(
            f"nothing to acknowledge: no open {kind} finding for {subject}"
            f" (`refundflow anomalies {where} --open` lists what stands)"
        )
    if newest.run_id == DISPATCHER_RUN:
        raise NothingToAcknowledge(
            f"a parked event is not acknowledged: queue it again (`refundflow subscribers"
            f" replay`) or leave it parked; {kind} for {subject} stays open while it is parked"
        )
    await store.pool.execute(
        _ACKNOWLEDGE_SQL, kind, subject, json.dumps(newest.details), by, reason
    )
    again = await _open_finding(store, kind, refund_id, order_id)
    assert again is not None and again.acknowledged_by == by, "acknowledged as it was found"
    return newest, again


async def _open_finding(
    store: PostgresRefundStore, kind: str, refund_id: str | None, order_id: str | None
) -> Finding | None:
    found = await store.findings(
        kind=kind, refund_id=refund_id, order_id=None if refund_id else order_id, open_only=True
    )
    # An order's finding that names the refund is listed with the refund's: not this one.
    exact = [f for f in found if f.refund_id == refund_id and (refund_id or f.order_id == order_id)]
    return exact[0] if exact else None
