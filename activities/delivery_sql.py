"""The outbox dispatcher's SQL (activities/dispatcher.py): which deliveries are due and
leased, which were delivered, and what a failed attempt records."""

from __future__ import annotations

LOCK_ID = 0x5246_4F42  # "RFOB": the dispatcher's advisory lock (per database)


def holds_lock_sql(pid: str) -> str:
    """SQL: is the dispatcher's lock held by backend `pid` (an SQL expression)? A one-key
    advisory lock below 2**32 shows in pg_locks as classid 0, objid the key, objsubid 1."""
    return (
        "EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted"
        " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        f" AND classid = 0 AND objid = {LOCK_ID} AND objsubid = 1 AND pid = {pid})"
    )


# Each refund's oldest undelivered, unparked event, when due: read on the pool (it scans the
# lane's backlog), then leased by CLAIM_SQL on the lock connection, a chunk at a time.
HEADS_SQL = """
SELECT event_id FROM (
    SELECT DISTINCT ON (refund_id) event_id, next_try_at
    FROM refundflow.deliveries
    WHERE delivered_at IS NULL AND parked_at IS NULL AND subscriber = $1
    ORDER BY refund_id, seq
) head
WHERE head.next_try_at <= now()
ORDER BY head.next_try_at
LIMIT $2
"""

# Leases the named deliveries that are still due, in one statement (by primary key).
CLAIM_SQL = """
UPDATE refundflow.deliveries d
SET next_try_at = now() + make_interval(secs => $3),
    first_tried_at = coalesce(d.first_tried_at, now())
FROM refundflow.subscribers s, refundflow.outbox o
WHERE d.event_id = ANY($1::text[]) AND d.subscriber = $2 AND s.name = d.subscriber
  AND s.active AND o.event_id = d.event_id AND d.delivered_at IS NULL
  AND d.parked_at IS NULL AND d.next_try_at <= now()
RETURNING d.event_id, d.subscriber, d.attempts, o.type, o.payload::text AS body, s.url,
    s.secret, CASE WHEN s.previous_secret_until > now() THEN s.previous_secret END
        AS previous_secret
"""

DELIVERED_SQL = """
UPDATE refundflow.deliveries SET delivered_at = now(), attempts = attempts + 1,
    last_error = NULL
WHERE subscriber = $1 AND event_id = ANY($2::text[])
"""

# One statement: a delivery is never parked without its finding, nor the finding recorded
# for a delivery that was not parked.
FAILED_SQL = """
WITH tried AS (
    UPDATE refundflow.deliveries d
    SET attempts = d.attempts + 1, last_error = $3::text,
        next_try_at = now() + make_interval(secs => $4),
        parked_at = CASE WHEN d.attempts + 1 >= s.max_attempts
            OR now() - d.first_tried_at >= make_interval(secs => s.max_age_seconds)
            THEN now() END
    FROM refundflow.subscribers s
    WHERE d.event_id = $1 AND d.subscriber = $2 AND s.name = d.subscriber
      AND d.delivered_at IS NULL
    RETURNING d.event_id, d.subscriber, d.refund_id, d.attempts, d.first_tried_at, d.parked_at
), finding AS (
    INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, details, action)
    SELECT $5, $6, t.refund_id, o.payload->>'order_id',
        jsonb_build_object('subscriber', t.subscriber, 'event_id', t.event_id,
            'type', o.type, 'attempts', t.attempts, 'first_tried_at', t.first_tried_at,
            'last_error', $3::text),
        'escalated'
    FROM tried t JOIN refundflow.outbox o ON o.event_id = t.event_id
    WHERE t.parked_at IS NOT NULL
)
SELECT attempts, parked_at IS NOT NULL AS parked FROM tried
"""
