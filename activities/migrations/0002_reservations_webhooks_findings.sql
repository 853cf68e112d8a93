-- Invariant 2: never over-refund. Every refund reserves its amount against the order's
-- captured amount before it can be approved; cancelled refunds release it.
CREATE TABLE refundflow.order_ledger (
    order_id        text    PRIMARY KEY,
    currency        char(3) NOT NULL,
    captured_amount bigint  NOT NULL CHECK (captured_amount >= 0)
);

CREATE TABLE refundflow.reservations (
    refund_id  text        PRIMARY KEY,
    order_id   text        NOT NULL REFERENCES refundflow.order_ledger,
    amount     bigint      NOT NULL CHECK (amount > 0),
    state      text        NOT NULL DEFAULT 'held' CHECK (state IN ('held', 'consumed', 'released')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reservations_order_idx ON refundflow.reservations (order_id) WHERE state <> 'released';

-- Provider webhooks received: deduplicated by the provider's event id.
CREATE TABLE refundflow.webhook_events (
    event_id     text        PRIMARY KEY,
    type         text        NOT NULL,
    refund_id    text,
    received_at  timestamptz NOT NULL DEFAULT now(),
    signalled_at timestamptz
);

-- Reconciliation runs and what they found.
CREATE TABLE refundflow.reconciliation_runs (
    run_id       text        PRIMARY KEY,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz,
    refunds      integer,
    findings     integer
);

CREATE TABLE refundflow.findings (
    finding_id  bigserial   PRIMARY KEY,
    run_id      text        NOT NULL REFERENCES refundflow.reconciliation_runs,
    kind        text        NOT NULL,
    refund_id   text,
    order_id    text,
    details     jsonb       NOT NULL DEFAULT '{}',
    action      text        NOT NULL CHECK (action IN ('healed', 'escalated')),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX findings_kind_idx ON refundflow.findings (kind, created_at DESC);
CREATE INDEX findings_refund_idx ON refundflow.findings (refund_id);
