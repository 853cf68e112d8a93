-- The sandbox's own schema: three external systems that happen to share a database.
CREATE TABLE sandbox.orders (
    order_id          text        PRIMARY KEY,
    currency          char(3)     NOT NULL,
    lines             jsonb       NOT NULL,
    captured_amount   bigint      NOT NULL CHECK (captured_amount >= 0),
    payment_reference text        NOT NULL UNIQUE,
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE sandbox.payments (
    payment_reference text        PRIMARY KEY,
    order_id          text        NOT NULL,
    currency          char(3)     NOT NULL,
    captured_amount   bigint      NOT NULL,
    refunded_amount   bigint      NOT NULL DEFAULT 0,
    CHECK (refunded_amount <= captured_amount)
);

CREATE TABLE sandbox.refunds (
    provider_refund_id text        PRIMARY KEY,
    idempotency_key    text        NOT NULL UNIQUE,
    request_hash       text        NOT NULL,
    payment_reference  text        NOT NULL REFERENCES sandbox.payments,
    order_id           text        NOT NULL,
    amount             bigint      NOT NULL CHECK (amount > 0),
    currency           char(3)     NOT NULL,
    status             text        NOT NULL,
    metadata           jsonb       NOT NULL DEFAULT '{}',
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX refunds_order_idx ON sandbox.refunds (order_id);

CREATE TABLE sandbox.stock_movements (
    movement_id     text        PRIMARY KEY,
    idempotency_key text        NOT NULL UNIQUE,
    request_hash    text        NOT NULL,
    sku             text        NOT NULL,
    quantity        integer     NOT NULL CHECK (quantity > 0),
    reference       text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
