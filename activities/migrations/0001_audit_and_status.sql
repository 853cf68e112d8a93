-- Append-only audit of every refund transition, and the status projection used for listing.
CREATE TABLE refundflow.audit (
    refund_id        text        NOT NULL,
    seq              integer     NOT NULL CHECK (seq > 0),
    event            text        NOT NULL,
    from_state       text,
    to_state         text        NOT NULL,
    at               timestamptz NOT NULL,
    actor            text        NOT NULL,
    source           text        NOT NULL,
    reason           text        NOT NULL,
    escalation_level integer     NOT NULL DEFAULT 0,
    policy_version   text        NOT NULL,
    recorded_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (refund_id, seq)
);

-- Append-only means append-only: the database itself refuses edits and deletions.
CREATE FUNCTION refundflow.audit_is_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'refundflow.audit is append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER audit_append_only
    BEFORE UPDATE OR DELETE ON refundflow.audit
    FOR EACH ROW EXECUTE FUNCTION refundflow.audit_is_append_only();

CREATE TABLE refundflow.refund_status (
    refund_id        text        PRIMARY KEY,
    refund_key       text        NOT NULL,
    order_id         text        NOT NULL,
    state            text        NOT NULL,
    amount           bigint      NOT NULL,
    currency         char(3)     NOT NULL,
    awaiting         text        NOT NULL,
    escalation_level integer     NOT NULL,
    policy_version   text        NOT NULL,
    reason_code      text        NOT NULL,
    channel          text        NOT NULL,
    requested_at     timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL,
    last_seq         integer     NOT NULL
);

CREATE INDEX refund_status_order_idx ON refundflow.refund_status (order_id);
CREATE INDEX refund_status_state_idx ON refundflow.refund_status (state, updated_at DESC);
CREATE INDEX refund_status_escalated_idx ON refundflow.refund_status (escalation_level)
    WHERE escalation_level > 0;
