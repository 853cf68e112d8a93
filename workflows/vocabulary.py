"""The words contracts are made of: reason codes, locales, channels, payment rails, and the
constrained strings and amounts every contract uses (re-exported by workflows.models)."""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictInt

ReasonCode = Literal[
    "damaged",
    "defective",
    "not_as_described",
    "wrong_item",
    "not_received",
    "late_delivery",
    "duplicate_charge",
    "changed_mind",
]
REASON_CODES: tuple[str, ...] = ReasonCode.__args__  # type: ignore[attr-defined]

Locale = Literal["en", "zh-CN"]
LOCALES: tuple[str, ...] = Locale.__args__  # type: ignore[attr-defined]

PaymentRail = Literal["card", "wallet", "bank_transfer"]

Channel = Literal["web", "app", "support", "api"]
CHANNELS: tuple[str, ...] = Channel.__args__  # type: ignore[attr-defined]

DISPATCHER_RUN = "outbox-dispatcher"
"""The standing run the outbox dispatcher's findings (parked deliveries) belong to
(migration 0007): not a reconciliation run."""

PERSON_DECIDES = "left_to_a_person"
"""The detail (true) of a finding reconciliation left to a person, not a heal it tries
again (activities/closing.py writes it; staff's views of an ended refund read it)."""

# What reconciliation can find wrong between the workflow, the ledger and the external systems
# (activities/reconciliation.py; `refundflow anomalies --kind`).
FINDING_KINDS: tuple[str, ...] = (
    "provider_refunded_not_completed",
    "provider_refund_on_cancelled_refund",
    "duplicate_provider_refunds",
    "amount_mismatch",
    "completed_without_provider_refund",
    "restock_missing",
    "restock_duplicated",
    "units_refunded_twice",
    "provider_money_above_ledger",
    "paid_above_capture",
    "reservation_without_refund",
    "subscriber_event_parked",  # recorded by the outbox dispatcher, not by a reconcile run
    "workflow_closed_abnormally",
    "provider_reversed_after_completion",
    "paid_elsewhere_and_by_provider",
    "returned_item_not_refunded",
)

# Order ids, SKUs, keys and people's handles: printable, no spaces, safe in a workflow id.
IDENTIFIER_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"
Identifier = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
"""Order ids, SKUs, refund keys: short, printable, safe in a workflow id."""
ActorName = Annotated[str, Field(min_length=1, max_length=64, pattern=IDENTIFIER_PATTERN)]
"""A staff handle or an opaque customer id: no spaces, no e-mail addresses (no @)."""
FREE_TEXT_MAX_CHARS = 500
"""The longest reason, note or evidence a person may write (the console's fields say it too)."""
FreeText = Annotated[
    str,
    Field(min_length=1, max_length=FREE_TEXT_MAX_CHARS, pattern=r"^[^\x00-\x08\x0b-\x1f]+$"),
]


# Unicode's bidirectional embeddings, overrides and isolates: text with one displays in
# another order than it was written (U+202E turns "refund 10" into "01 dnufer" on screen).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def says_something(text: str) -> str:
    """`text`, unless it is blank or only spaces, or holds a bidirectional control
    (ValueError): a reason or proof the audit keeps for good must say something, and read
    in the console and the CLI as it was written (a trial stored U+202E in a rejection).
    Applied where people type it (the API's bodies, the CLI), not to FreeText itself:
    recorded histories must still replay."""
    # Invisible characters (zero-width spaces, joiners: Unicode's format class) say nothing
    # either (a trial met the evidence rule with U+200B alone).
    visible = "".join(c for c in text if unicodedata.category(c) != "Cf")
    if not visible.strip():
        raise ValueError("must say something: it is kept in the audit trail")
    if any("\x80" <= c <= "\x9f" for c in text):  # C1 controls, as C0 are refused
        raise ValueError("must not contain control characters (such as U+0085)")
    if found := BIDI_CONTROLS.intersection(text):
        named = ", ".join(f"U+{ord(c):04X}" for c in sorted(found))
        raise ValueError(
            f"must not contain bidirectional controls ({named}): the audit trail would read"
            " otherwise than it was written"
        )
    return text


Statement = Annotated[FreeText, AfterValidator(says_something)]
"""FreeText that must say something (`says_something`)."""
PositiveMinor = Annotated[StrictInt, Field(gt=0, le=10**12)]


def left_out_while_none() -> Any:
    """The default of a field added to a contract whose readers refuse unknown fields
    (extra="forbid"): None, and left out of the payload while it is None. A payload without
    the new value stays what an older reader knows, so workers, the API and CLIs of the
    earlier release keep reading it."""
    return Field(default=None, exclude_if=_is_none)


def _is_none(value: object) -> bool:
    return value is None


CUSTOMER_CHANNEL = "customer-notifications"
"""The subscriber the worker configures at every start from REFUNDFLOW_CUSTOMER_NOTIFY_URL
(and _SECRET): customers' notices. Not added, removed or rotated by hand."""
