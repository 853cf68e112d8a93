"""The typed RefundClient for services, and the `refundflow` CLI for support and operators."""

from client.errors import (
    RefundActionRefused,
    RefundConflict,
    RefundflowError,
    RefundNotFound,
)
from client.refund_client import RefundClient

__all__ = [
    "RefundActionRefused",
    "RefundClient",
    "RefundConflict",
    "RefundNotFound",
    "RefundflowError",
]
