"""The HTTP API: the front door for services, staff and customers (issue 12).

Identity (verified bearer tokens), authorization (one module: principal x action x refund)
and the routes under /v1, on one Temporal client and one RefundClient opened in the app's
lifespan. The dev stack's local token issuer lives here too (`api.dev_issuer`).
"""
