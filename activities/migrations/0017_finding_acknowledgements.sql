-- A person's word that a finding reconciliation cannot heal is dealt with outside refundflow
-- (money recovered from a customer paid twice, a provider's refund taken back by hand):
-- `refundflow acknowledge`. It holds while the finding's details stay as acknowledged (a
-- change is news again) and only quietens `reconcile --check`: it is no money fact, so
-- holds and statuses read open findings as before.
CREATE TABLE refundflow.finding_acknowledgements (
    kind text NOT NULL,
    subject text NOT NULL,  -- the refund's id, or the order's for a finding on an order
    details jsonb NOT NULL,
    acknowledged_by text NOT NULL,
    reason text NOT NULL,
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject)
);
