-- Refunds the provider takes back after paying them (a bank returns the money): when a
-- succeeded refund is due to turn failed, as Stripe's refund updates to `failed` later.
ALTER TABLE sandbox.refunds ADD COLUMN reverse_at timestamptz;
CREATE INDEX refunds_reverse_idx ON sandbox.refunds (reverse_at)
    WHERE status = 'succeeded' AND reverse_at IS NOT NULL;
