"""The event delivered to webhook subscribers and the customer channel: a versioned wire format.

Pure contracts. The published JSON Schema (docs/schemas/subscriber-event.v1.json) is generated
from these models: `python -m workflows.events > docs/schemas/subscriber-event.v1.json`.

Compatibility: within one `schema_version`, fields are only ever added (receivers ignore the
ones they do not know). Removing or renaming a field, or changing its meaning or type, means
a new schema version.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, PlainSerializer, StrictInt, WithJsonSchema

from workflows.models import Locale
from workflows.money import Currency
from workflows.states import CancelReason, RefundState

SCHEMA_VERSION: Literal["1"] = "1"

Timestamp = Annotated[
    datetime,
    PlainSerializer(lambda at: at.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""ISO 8601 with a "+00:00" offset (datetime.isoformat(), as before versioning; the
timestamps inside `facts` end in "Z", also as before)."""


class _Wire(BaseModel):
    model_config = ConfigDict(
        frozen=True,
        extra="ignore",  # a receiver of version N accepts fields added later within N
        use_attribute_docstrings=True,
        # Every field is always sent, but a field with a default was added within v1, and
        # an event stored before it was (the outbox keeps each as written) lacks it: the
        # schema requires only the fields every v1 event carries (a trial validated strictly).
    )


class _Headline(_Wire):
    """The facts every event carries at its top level (and again in `facts`)."""

    refund_id: str
    """The refund's id (rf_…)."""
    order_id: str
    """The order the refund is for."""
    state: RefundState
    """The refund's state after this change."""
    cancel_reason: CancelReason | None
    """Why the refund was cancelled; null unless the state is cancelled."""
    amount: StrictInt
    """The amount that is (or will be) refunded, in integer minor units of `currency`."""
    currency: Currency
    """ISO 4217 currency code of `amount`."""
    locale: Locale
    """The customer's language: the notification is written in it."""


class EventFacts(_Headline):
    """The facts the notification was rendered from (the refund's status, as told)."""

    escalation_level: int
    """0 when on track; raised each time the refund waits too long."""
    item_return_required: bool
    """Approved, but paid only once the item is back: the customer must act."""
    payment_failed: bool
    """The payment failed (the provider refused or failed it, or refundflow's guard did not
    send it) and an operator is deciding."""
    action_required: str | None = None
    """The payment provider waits for the customer: its instructions (added within v1:
    an optional field; older events do not carry it)."""
    payment_reversed: bool = False
    """The provider took back a refund it had paid and an operator is deciding (added within
    v1: older events do not carry it)."""
    received: bool = False
    """Just asked, before anyone is asked to act: worded as received, without a review ETA;
    the policy's approval or refusal follows at once, or the refund waits for a reviewer and
    says so (added within v1: older events do not carry it)."""
    declined_because: str | None = None
    """Declined by the policy (`cancel_reason` ineligible): its failed rules' words, in
    English; the English notification ends with them (added within v1: older events do not
    carry it)."""
    declined_in_locale: str | None = None
    """`declined_because` in the customer's language when it is not English (zh-CN); the
    notification ends with it. Null otherwise (added within v1: older events do not carry
    it)."""
    cancelled_by_staff: bool = False
    """Cancelled (`cancel_reason` withdrawn) by our staff, not by who asked for the refund
    or submitted it for them (added within v1: older events do not carry it)."""
    asked_amount: int | None = None
    """Approved for less than the request allows: what the customer asked for (before any
    fee); the rest is not refunded. Null otherwise (added within v1: older events do not
    carry it)."""
    paid_elsewhere: bool = False
    """Completed because our team paid the customer another way than through the payment
    provider (for example a bank transfer), not to the original payment method: no payment
    ETA (added within v1: older events do not carry it)."""
    eta: datetime | None
    """When the decision is due (review) or the money arrives at the latest (payment)."""
    eta_earliest: datetime | None
    """When the money arrives at the earliest, for a payment ETA; else null."""
    eta_kind: Literal["review", "payment"] | None
    """What `eta` is about: a reviewer's decision or the payment; null without an ETA."""
    item_held: bool = False
    """Closed without a refund while the warehouse holds its returned item: the customer is
    told our team will contact them about it (added within v1: older events do not carry
    it)."""
    stopped: bool = False
    """Temporal ended the refund's workflow before the refund ended: the tracking page says it
    is with our team. False in every event (events are the workflow's state changes; a
    stopped refund's next event is its closing), named here as every fact is (added within
    v1: older events do not carry it)."""


class Notification(_Wire):
    """The customer's message, rendered by the same templates as the tracking page."""

    locale: Locale
    """The language of `subject` and `body`."""
    template: str
    """The key of the template the message was rendered from."""
    subject: str
    """The message's subject line."""
    body: str
    """The message, word for word as the tracking page shows it."""
    tracking_url: str | None = None
    """The customer's signed link to their refund's tracking page: sent to the customer
    channel only, added at delivery (added within v1; other subscribers get null)."""


class SubscriberEvent(_Headline):
    """One state change of a refund, as delivered to every subscriber (signed, at least once,
    in order per refund)."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    """Version of this format: within a version fields are only added, never removed or renamed."""
    id: str
    """Event id, `<refund_id>:<seq>`; equals the Refundflow-Event-Id header. Deduplicate on it."""
    type: str
    """`refund.<state>`, e.g. refund.completed."""
    seq: int
    """Position of this change in the refund's audit trail (1-based, increasing per refund)."""
    event: str
    """What caused the change, e.g. requested, approve, provider_confirmed."""
    occurred_at: Timestamp
    """When the change happened."""
    eta: Timestamp | None
    """Same as `facts.eta`, with a +00:00 offset."""
    eta_earliest: Timestamp | None
    """Same as `facts.eta_earliest`, with a +00:00 offset."""
    facts: EventFacts
    """The facts the notification was rendered from."""
    notification: Notification
    """The customer's message for this change."""


def json_schema() -> dict[str, Any]:
    """The JSON Schema of what goes on the wire (the serialized event)."""
    schema = SubscriberEvent.model_json_schema(mode="serialization")
    # Defaulted as it is filled in, but every v1 event carries it: what says it is v1.
    schema["required"] = ["schema_version", *schema["required"]]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}


def json_schema_text() -> str:
    """The committed file's exact text (docs/schemas/subscriber-event.v1.json)."""
    return json.dumps(json_schema(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    import sys

    sys.stdout.write(json_schema_text())
