-- Every refund's status (staff's CLI, the console, an operator's paid-elsewhere) reads the open
-- findings of its order as a whole (money the provider paid around refundflow, units refunded
-- twice): by order id, on a table that grows with every reconciliation run.
CREATE INDEX findings_order_idx ON refundflow.findings (order_id);
