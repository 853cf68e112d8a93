-- Invariant 9: money is guarded per order line, not per request. The order ledger is
-- order_ledger (the capture, locked per order) + order_lines (the order's lines as first
-- reserved against) + reservations (money per refund) + reservation_lines (what each refund
-- holds of each line). workflows/ledger.py is the rule; pg_store.reserve applies it under
-- the order's row lock.

-- The order's lines, written once by the first reservation that brings them: like the
-- captured amount, the first snapshot stands. position: the order's own order of its lines,
-- which breaks ties when an amount is allocated over them.
CREATE TABLE refundflow.order_lines (
    order_id   text    NOT NULL REFERENCES refundflow.order_ledger,
    position   integer NOT NULL,
    sku        text    NOT NULL,
    quantity   integer NOT NULL CHECK (quantity > 0),
    unit_price bigint  NOT NULL CHECK (unit_price >= 0),
    category   text    NOT NULL,
    PRIMARY KEY (order_id, sku)
);

-- basis: 'lines' (the refund names its lines and units), 'amount' (amount-only, allocated
-- over the lines by value), NULL (reserved before the ledger: counts against the order
-- total only). reason_code: why the refund was asked for (NULL before the ledger).
ALTER TABLE refundflow.reservations
    ADD COLUMN basis text CHECK (basis IN ('lines', 'amount')),
    ADD COLUMN reason_code text;

-- What one refund holds of one line: units (0 for an amount-only share) and value in minor
-- units. For a line refund the value is the units' whole value (fees included: the units are
-- gone). sku '_order' is the part of the capture no line accounts for (shipping, ...). A
-- row is held, refunded or free as its reservation is held, consumed or released.
CREATE TABLE refundflow.reservation_lines (
    refund_id text    NOT NULL REFERENCES refundflow.reservations,
    order_id  text    NOT NULL,
    sku       text    NOT NULL,
    quantity  integer NOT NULL DEFAULT 0 CHECK (quantity >= 0),
    amount    bigint  NOT NULL CHECK (amount >= 0),
    PRIMARY KEY (refund_id, sku)
);
CREATE INDEX reservation_lines_order_idx ON refundflow.reservation_lines (order_id, sku);
