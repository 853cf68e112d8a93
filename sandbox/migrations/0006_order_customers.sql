-- Whose order it is: the customer who placed it, as a real order system records it (an
-- opaque id). refundflow's API lets a customer ask only about their own orders. Orders made
-- before this migration say nothing (NULL): customers cannot ask about them, staff can.
ALTER TABLE sandbox.orders ADD COLUMN customer_id text;
