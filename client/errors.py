"""Errors a caller can act on. Each carries one clear sentence; the CLI prints just that."""

from __future__ import annotations


class RefundflowError(Exception):
    """Base class: a user-facing problem, never a crash."""


class RefundNotFound(RefundflowError):
    pass


class RefundActionRefused(RefundflowError):
    """An update the workflow's validator refused; nothing was changed."""


class RefundConflict(RefundflowError):
    """A refund key reused for a different request."""


class InvalidRefundRequest(RefundflowError):
    """The request cannot be a refund of that order; nothing was started."""
