"""Composition root: logging, adapters -> Temporal worker; the dev stack; the `refundflow` CLI."""
