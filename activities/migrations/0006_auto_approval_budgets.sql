-- Auto-approval budgets (policy v3 on): a reservation records who asked and whether its
-- refund was approved automatically, so later requests count it against the per-order and
-- per-customer budgets (workflows/budgets.py is the rule; activities/budgets.py applies it
-- under the order's row lock and the customer's advisory lock). A released reservation no
-- longer counts, as for everything else in the ledger.
--
-- requested_by: the requester as budgets compare it (lower case); NULL when unknown.
-- auto_approved: the policy approved it automatically and every budget allowed it.
-- auto_approve_refused: the one line saying which budget withheld the auto-approval the
-- policy would have given (the refund waits for a reviewer); a retried reservation answers
-- with it again, so the workflow learns it even when the edge reserved first.
ALTER TABLE refundflow.reservations
    ADD COLUMN requested_by text,
    ADD COLUMN auto_approved boolean NOT NULL DEFAULT false,
    ADD COLUMN auto_approve_refused text;

-- Reservations made before this migration: the requester and the auto-approval from the
-- audit trail (every refund's first entry is its request, by its requester), so refunds
-- auto-approved before budgets existed count against them too.
UPDATE refundflow.reservations r SET requested_by = lower(a.actor)
FROM refundflow.audit a
WHERE a.refund_id = r.refund_id AND a.seq = 1 AND a.event = 'requested';

UPDATE refundflow.reservations r SET auto_approved = true
WHERE EXISTS (
    SELECT 1 FROM refundflow.audit a WHERE a.refund_id = r.refund_id AND a.event = 'auto_approve'
);

-- A customer's recent reservations: the per-customer budget and the reviewer's history.
CREATE INDEX reservations_customer_idx ON refundflow.reservations (requested_by, created_at)
    WHERE requested_by IS NOT NULL AND state <> 'released';
