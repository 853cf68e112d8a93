-- A finding of a run told not to heal (`refundflow reconcile --no-heal`) is "reported": it
-- was only looked at. Recorded as "escalated" before, it read as handed to a person by a
-- run that was asked to change nothing.
ALTER TABLE refundflow.findings DROP CONSTRAINT findings_action_check;
ALTER TABLE refundflow.findings
    ADD CONSTRAINT findings_action_check CHECK (action IN ('healed', 'escalated', 'reported'));
