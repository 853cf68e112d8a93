-- The customer's link to their refund's tracking page, as each notification carried it.
ALTER TABLE sandbox.notifications ADD COLUMN tracking_url text;
