"""Deterministic core of refundflow: contracts, state machine, policy and workflows.

Nothing in this package performs I/O; it is imported by the workflow sandbox.
"""
