-- The refund's whole status (the StatusView every channel renders), as the workflow saw it
-- when it recorded its last transitions: written in the same transaction as the audit, so
-- `status`, `track` and the API read one row instead of asking the workflow (which, once
-- evicted from the worker's cache, replays its history to answer). NULL for rows written
-- before this column; readers then ask the workflow.
ALTER TABLE refundflow.refund_status ADD COLUMN view jsonb;
