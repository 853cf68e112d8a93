-- A person's word that a finding reconciliation cannot heal is dealt with outside refundflow
-- (money recovered from a customer paid twice, a provider's refund taken back by hand):
-- `refundflow acknowledge`. It holds for the finding's money details as acknowledged (a
-- change is news again; what a heal attempt adds, such as `not_healed`, is left out of
-- them) and only quietens `reconcile --check` and the views of what needs a person: it is
-- no money fact, so holds read open findings as before. One subject may have several
-- findings of a kind (units refunded twice: one per SKU): each has its own.
CREATE TABLE refundflow.finding_acknowledgements (
    kind text NOT NULL,
    subject text NOT NULL,  -- the refund's id, or the order's for a finding on an order
    details jsonb NOT NULL,
    acknowledged_by text NOT NULL,
    reason text NOT NULL,
    acknowledged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, subject, details)
);

-- What needs a person (`list --escalated`, the console's queue) reads the newest run's
-- findings: by run, not a scan of every run's rows.
CREATE INDEX findings_run_idx ON refundflow.findings (run_id, refund_id);
