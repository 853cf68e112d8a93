-- A refund by amount that a reviewer approved for less than it held: its declined rest is
-- free on the order again (the money was not paid), but a later refund of the order is not
-- paid without a reviewer (workflows.second_asks.cut_by_a_reviewer), or asking again for the rest
-- would undo the reviewer's decision within the auto-approval limit (a trial).
ALTER TABLE refundflow.reservations ADD COLUMN approved_less boolean NOT NULL DEFAULT false;
