"""Refund ids and refund keys: pure functions of a request, shared by the edge (which starts
refunds), the CLI (which reads pasted ids) and the pages. Kept apart from client/edge.py so
that reading an id does not import the edge's database and Temporal code."""

from __future__ import annotations

import hashlib
import re

REFUND_ID_PATTERN = r"^rf_[0-9a-f]{24}$"


def pasted_refund_id(text: str) -> str | None:
    """A refund id as refundflow makes them (rf_ and 24 lowercase hex digits) from one
    pasted with spaces around it or in upper case; None: not a refund id."""
    normal = text.strip().lower()
    return normal if re.fullmatch(REFUND_ID_PATTERN, normal) else None


def refund_id_for(order_id: str, refund_key: str) -> str:
    """Workflow id from the business key: the same request converges on one workflow.

    Hashed so that whatever a channel puts in its key never shows up in Temporal.
    """
    digest = hashlib.sha256(f"{order_id}\x1f{refund_key}".encode()).hexdigest()
    return f"rf_{digest[:24]}"


def default_refund_key(
    order_id: str, amount: int | None, lines: list[tuple[str, int]] | None, reason_code: str
) -> str:
    """Key for a request that brought none: the request's own content, channel excluded, so
    the same refund asked for from the web and again through support is one refund."""
    material = f"{order_id}|{amount}|{sorted(lines or [])}|{reason_code}"
    return "auto-" + hashlib.sha256(material.encode()).hexdigest()[:16]
