"""Stand-ins for the external systems: payment provider, inventory, order system.

For development, demos and tests only. They behave like the real thing where it matters to
refundflow: idempotency keys, refund limits, per-line restock keys, JSON errors with codes.
"""
