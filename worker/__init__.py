"""Composition root: settings, logging, connections -> adapters -> Temporal worker; dev stack."""
