-- How each order was paid (card, wallet, bank_transfer): decides how long a refund takes.
ALTER TABLE sandbox.orders ADD COLUMN payment_rail text NOT NULL DEFAULT 'card';

-- The customer's inbox: what refundflow's notifications told the customer. Deduplicated by
-- event id (refundflow delivers at least once); `copies` counts how often each arrived.
CREATE TABLE sandbox.notifications (
    event_id          text        PRIMARY KEY,
    refund_id         text        NOT NULL,
    seq               integer     NOT NULL,
    type              text        NOT NULL,
    locale            text        NOT NULL,
    subject           text        NOT NULL,
    body              text        NOT NULL,
    copies            integer     NOT NULL DEFAULT 1,
    first_received_at timestamptz NOT NULL DEFAULT now(),
    last_received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX notifications_refund_idx ON sandbox.notifications (refund_id, seq);
