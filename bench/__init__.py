"""`refundflow bench`: what a refund costs, measured beside a naive baseline in one run."""
