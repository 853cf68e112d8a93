-- What a refund asked for, before fees, as it asked (never rewritten): the value a later
-- request is compared with to find the same request made again under another key
-- (workflows.ledger.asked_again). `amount` is no good for that: it is after fees, and a
-- reviewer's approval for less rewrites it once paid. NULL for rows written before this
-- column: those compare by `amount`.
ALTER TABLE refundflow.reservations ADD COLUMN requested_amount bigint;
