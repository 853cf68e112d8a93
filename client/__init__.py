"""The typed RefundClient for services, and the `refundflow` CLI for support and operators.

The names below are loaded when first used (PEP 562), not when the package is: `RefundClient`
brings Temporal's SDK and aiohttp, a second on a slow machine, which `refundflow --help` and
the CLI's HTTP commands never need.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from client.errors import (
        InvalidRefundRequest,
        RefundActionRefused,
        RefundConflict,
        RefundflowError,
        RefundNotFound,
    )
    from client.refund_client import RefundClient

_HOME_OF = {
    "InvalidRefundRequest": "client.errors",
    "RefundActionRefused": "client.errors",
    "RefundConflict": "client.errors",
    "RefundNotFound": "client.errors",
    "RefundflowError": "client.errors",
    "RefundClient": "client.refund_client",
}

__all__ = [
    "InvalidRefundRequest",
    "RefundActionRefused",
    "RefundClient",
    "RefundConflict",
    "RefundNotFound",
    "RefundflowError",
]


def __getattr__(name: str) -> Any:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module 'client' has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
