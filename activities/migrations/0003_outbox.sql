-- Notifications as events (invariant 6). Every state change is written once to the outbox,
-- in the same transaction as its audit entry, and fanned out to one delivery row per active
-- subscriber. The dispatcher delivers each subscriber's events of one refund in order, at
-- least once; receivers deduplicate by event id.
CREATE TABLE refundflow.outbox (
    event_id    text        PRIMARY KEY,  -- "<refund_id>:<seq>", stable across retries
    refund_id   text        NOT NULL,
    seq         integer     NOT NULL,     -- the audit entry this event belongs to
    type        text        NOT NULL,     -- refund.<state>
    occurred_at timestamptz NOT NULL,
    payload     jsonb       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (refund_id, seq)
);

CREATE TABLE refundflow.subscribers (
    name       text        PRIMARY KEY,
    url        text        NOT NULL,
    secret     text        NOT NULL,      -- signs deliveries (HMAC-SHA256); shown once on creation
    active     boolean     NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE refundflow.deliveries (
    event_id     text        NOT NULL REFERENCES refundflow.outbox,
    subscriber   text        NOT NULL REFERENCES refundflow.subscribers ON DELETE CASCADE,
    refund_id    text        NOT NULL,
    seq          integer     NOT NULL,
    attempts     integer     NOT NULL DEFAULT 0,
    next_try_at  timestamptz NOT NULL DEFAULT now(),
    delivered_at timestamptz,
    last_error   text,
    PRIMARY KEY (event_id, subscriber)
);
CREATE INDEX deliveries_pending_idx ON refundflow.deliveries (subscriber, refund_id, seq)
    WHERE delivered_at IS NULL;
