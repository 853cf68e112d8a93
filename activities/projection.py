"""The status projection's row of a refund (refundflow.refund_status), written with each batch
of its audit in the same transaction (pg_store.PostgresRefundStore.record_transitions): what
status, list, track and the console read."""

from __future__ import annotations

from itertools import pairwise

import asyncpg

from workflows.models import StatusProjection, StatusView

__all__ = ["project_status"]

# A timeline entry's time as the audit holds it, in UTC as the workflow writes it, whatever
# the session's TimeZone.
_AUDIT_AT = """to_jsonb(to_char(a.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))"""

# Each timeline entry at the time its audit row holds: a run reset in Temporal that records
# the same steps again showed its own times (a trial: "requested 07:42:57" beside the audit's
# 07:42:42).
_AT_AUDIT_TIMES = f"""
    SELECT (t.e ->> 'seq')::int AS seq,
        CASE WHEN a.at IS NULL THEN t.e ELSE jsonb_set(t.e, '{{at}}', {_AUDIT_AT}) END AS e
    FROM jsonb_array_elements($16::jsonb -> 'timeline') AS t(e)
    LEFT JOIN refundflow.audit a ON a.refund_id = $1 AND a.seq = (t.e ->> 'seq')::int
         AND a.event = t.e ->> 'event' AND a.to_state = t.e ->> 'state'
"""

# ... and the audit's entries the run does not hold, in their places: a run that wrote its
# entries after another run's (a Reset in Temporal; case.follow_other_run) showed a timeline
# without the other run's (a trial: the provider's refusal, entry 4, missing from status).
_WITH_OTHER_RUNS = f"""{_AT_AUDIT_TIMES}
    UNION ALL
    SELECT a.seq, jsonb_build_object('seq', a.seq, 'event', a.event, 'from_state',
        a.from_state, 'state', a.to_state, 'at', {_AUDIT_AT}, 'actor', a.actor, 'source',
        a.source, 'reason', a.reason, 'escalation_level', a.escalation_level, 'issuer', a.issuer)
    FROM refundflow.audit a
    WHERE a.refund_id = $1 AND a.seq <= $14
      AND a.seq >= ($16::jsonb #>> '{{timeline,0,seq}}')::int
      AND NOT EXISTS (SELECT 1 FROM jsonb_array_elements($16::jsonb -> 'timeline') AS v(e)
                      WHERE (v.e ->> 'seq')::int = a.seq)
"""

# The projection only moves forward: an older batch never overwrites a newer one. Its
# `updated_at` is never later than the database's clock: a refund whose workflow time was
# moved on (`sandbox fast-forward`, a worker's clock ahead) was skipped by reconciliation,
# which looks at refunds last changed before now less its grace (a trial).
_UPSERT_STATUS = """
    INSERT INTO refundflow.refund_status AS s (refund_id, refund_key, order_id, state,
        amount, currency, awaiting, escalation_level, policy_version, reason_code,
        channel, requested_at, updated_at, last_seq, item_received, view)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, least($13, now()), $14, $15,
        jsonb_set($16::jsonb, '{timeline}', coalesce((
            SELECT jsonb_agg(x.e ORDER BY x.seq) FROM (%s) AS x
        ), '[]'::jsonb)))
    ON CONFLICT (refund_id) DO UPDATE SET state = EXCLUDED.state, view = EXCLUDED.view,
        requested_at = EXCLUDED.requested_at,
        amount = EXCLUDED.amount, awaiting = EXCLUDED.awaiting,
        escalation_level = EXCLUDED.escalation_level,
        item_received = EXCLUDED.item_received,
        updated_at = EXCLUDED.updated_at, last_seq = EXCLUDED.last_seq
    WHERE s.last_seq <= EXCLUDED.last_seq
"""
_UPSERT = _UPSERT_STATUS % _AT_AUDIT_TIMES
_UPSERT_FILLING_GAPS = _UPSERT_STATUS % _WITH_OTHER_RUNS


def _has_gaps(view: StatusView | None) -> bool:
    """Whether the run's timeline skips sequence numbers (entries another run wrote)."""
    seqs = [e.seq for e in view.timeline] if view else []
    return any(later != earlier + 1 for earlier, later in pairwise(seqs))


async def project_status(
    conn: asyncpg.Connection | asyncpg.Pool,
    p: StatusProjection,
    view: StatusView | None,
    last_seq: int,
) -> None:
    """The refund's row in the status projection, as of the batch ending at `last_seq`."""
    await conn.execute(
        _UPSERT_FILLING_GAPS if _has_gaps(view) else _UPSERT,
        p.refund_id,
        p.refund_key,
        p.order_id,
        p.state.value,
        p.amount,
        p.currency,
        p.awaiting.value,
        p.escalation_level,
        p.policy_version,
        p.reason_code,
        p.channel,
        p.requested_at,
        p.updated_at,
        last_seq,
        p.item_received,
        view.model_dump_json() if view else None,
    )
