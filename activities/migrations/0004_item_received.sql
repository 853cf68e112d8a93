-- Reconciliation asks "was the returned item received, so must its lines be restocked?"
-- from this fact, which the workflow now projects, instead of matching the audit's wording.
ALTER TABLE refundflow.refund_status ADD COLUMN item_received boolean NOT NULL DEFAULT false;

-- Refunds projected before the column existed: their only record of the fact is the audit
-- entry the item_received update wrote (its wording was fixed then). Matched once, here.
UPDATE refundflow.refund_status s SET item_received = true
WHERE EXISTS (SELECT 1 FROM refundflow.audit a WHERE a.refund_id = s.refund_id
              AND a.event = 'start_refund' AND a.reason = 'returned item received');
