-- Refunds that settle later, idempotency keys that are forgotten after a retention period
-- (as real providers do), lookup by the caller's metadata, and a webhook outbox.
ALTER TABLE sandbox.refunds DROP CONSTRAINT refunds_idempotency_key_key;
CREATE INDEX refunds_idempotency_key_idx ON sandbox.refunds (idempotency_key, created_at DESC);
CREATE INDEX refunds_refund_id_idx ON sandbox.refunds ((metadata->>'refund_id'));
ALTER TABLE sandbox.refunds ADD COLUMN settle_at timestamptz;
ALTER TABLE sandbox.refunds ADD COLUMN settle_to text;
ALTER TABLE sandbox.refunds ADD COLUMN failure_code text;
CREATE INDEX refunds_pending_idx ON sandbox.refunds (settle_at) WHERE status = 'pending';

CREATE TABLE sandbox.webhook_events (
    event_id     text        PRIMARY KEY,
    type         text        NOT NULL,
    payload      jsonb       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    next_try_at  timestamptz NOT NULL DEFAULT now(),
    attempts     integer     NOT NULL DEFAULT 0,
    delivered_at timestamptz
);
CREATE INDEX webhook_events_due_idx ON sandbox.webhook_events (next_try_at)
    WHERE delivered_at IS NULL;
