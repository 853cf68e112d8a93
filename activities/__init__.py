"""Side effects: ports (small Protocols), their adapters, and the Temporal activities."""
