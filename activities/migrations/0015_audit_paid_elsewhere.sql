-- The refunds recorded as paid outside the payment provider: few, and every reconciliation
-- run and every payment on their orders asks for them (the `paid_above_capture` finding,
-- the payment guard). A partial index finds them without reading the whole audit.
CREATE INDEX audit_paid_elsewhere_idx ON refundflow.audit (refund_id)
    WHERE event = 'paid_elsewhere';
