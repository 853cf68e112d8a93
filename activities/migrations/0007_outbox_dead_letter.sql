-- An outbox that cannot wedge (issue 11). Each subscriber has a delivery budget: attempts,
-- and age counted from an event's first attempt (not from its creation: an event queued
-- behind another one has not been tried yet). A delivery past its budget is parked, a dead
-- letter: the refund's later events go on to that subscriber, a finding records it (the
-- alert, `refundflow anomalies`) and `refundflow subscribers replay` queues it again.
-- The defaults are about a day of retrying (the backoff reaches 5 min after 9 attempts, so
-- the age ends it first); both are set per subscriber (`subscribers add --max-attempts
-- --max-age`).
ALTER TABLE refundflow.subscribers
    ADD COLUMN max_attempts    integer NOT NULL DEFAULT 300
        CHECK (max_attempts BETWEEN 1 AND 100000),
    ADD COLUMN max_age_seconds integer NOT NULL DEFAULT 86400
        CHECK (max_age_seconds BETWEEN 1 AND 2592000),
    -- Rotation with overlap: the replaced secret still signs deliveries (beside the new one)
    -- until previous_secret_until, so a receiver can switch secrets without losing events.
    ADD COLUMN previous_secret       text,
    ADD COLUMN previous_secret_until timestamptz;

ALTER TABLE refundflow.deliveries
    ADD COLUMN first_tried_at timestamptz,   -- when the age budget started
    ADD COLUMN parked_at      timestamptz;   -- set: a dead letter, skipped until replayed

-- What the dispatcher looks for: a refund's oldest delivery that is neither done nor parked.
DROP INDEX refundflow.deliveries_pending_idx;
CREATE INDEX deliveries_pending_idx ON refundflow.deliveries (subscriber, refund_id, seq)
    WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX deliveries_parked_idx ON refundflow.deliveries (subscriber, parked_at)
    WHERE parked_at IS NOT NULL;

-- Findings belong to a run (findings.run_id); the dispatcher's are not made by a
-- reconciliation run, so they belong to this standing one.
INSERT INTO refundflow.reconciliation_runs (run_id, started_at)
VALUES ('outbox-dispatcher', now())
ON CONFLICT (run_id) DO NOTHING;
