-- Every hold reads the order's open findings of money refunded around refundflow, open
-- meaning found by the newest finished reconciliation run (workflows/money_around.py): the
-- newest run is then one index entry, not a scan of every run since the start.
CREATE INDEX reconciliation_runs_finished_idx ON refundflow.reconciliation_runs (finished_at)
    WHERE finished_at IS NOT NULL;
