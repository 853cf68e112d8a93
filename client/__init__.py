"""The typed RefundClient for services, and the `refundflow` CLI for support and operators."""

from client.errors import (
    InvalidRefundRequest,
    RefundActionRefused,
    RefundConflict,
    RefundflowError,
    RefundNotFound,
)
from client.refund_client import RefundClient

__all__ = [
    "InvalidRefundRequest",
    "RefundActionRefused",
    "RefundClient",
    "RefundConflict",
    "RefundNotFound",
    "RefundflowError",
]
