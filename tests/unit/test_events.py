"""The event subscribers receive is a versioned wire format: built through its model, with its
JSON Schema committed, and still carrying every field it carried before it was versioned."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # via openapi-spec-validator (test extra)
import pytest

from activities import outbox
from tests.unit.test_wording import every_situation
from workflows import wording
from workflows.events import SCHEMA_VERSION, EventFacts, SubscriberEvent, json_schema_text
from workflows.facts import NO_ETA
from workflows.models import MessageFacts, Notice

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_FILE = PROJECT_ROOT / "docs" / "schemas" / f"subscriber-event.v{SCHEMA_VERSION}.json"
REFUND_ID = "rf_" + "a" * 24


def delivered_notice(facts: MessageFacts) -> Notice:
    """A notice as the outbox activity gets it: deserialized from the workflow's payload."""
    notice = Notice(
        seq=3, event="approve", at=datetime(2026, 11, 26, 9, 31, tzinfo=UTC), facts=facts
    )
    return Notice.model_validate_json(notice.model_dump_json())


def unversioned_payload(notice: Notice) -> dict[str, Any]:
    """The event as it was built before the format was versioned: every field and value here
    must stay (existing subscribers read them); removing or renaming one is a new version."""
    told = notice.facts
    # A returned item's deadline is not an ETA v1 knows (review, payment): its receivers
    # read it in the notification's words only, the event's ETA fields empty.
    facts = told if told.eta_kind != "return" else told.model_copy(update=NO_ETA)
    return {
        "id": f"{REFUND_ID}:{notice.seq}",
        "type": f"refund.{facts.state.value}",
        "refund_id": REFUND_ID,
        "order_id": facts.order_id,
        "seq": notice.seq,
        "event": notice.event,
        "occurred_at": notice.at.isoformat(),
        "state": facts.state.value,
        "cancel_reason": facts.cancel_reason.value if facts.cancel_reason else None,
        "amount": facts.amount,
        "currency": facts.currency,
        "locale": facts.locale,
        "eta": facts.eta.isoformat() if facts.eta else None,
        "eta_earliest": facts.eta_earliest.isoformat() if facts.eta_earliest else None,
        # asked_amount, paid_elsewhere, declined_because, item_held and stopped: added within
        # v1; events always carry them (null unless a reviewer approved less; false unless
        # paid another way; null unless the policy declined it; false unless the warehouse
        # holds the item of a refund closed unpaid; false), while the status's facts leave
        # them out while unset.
        "facts": {
            "asked_amount": None,
            "paid_elsewhere": False,
            "declined_because": None,
            "declined_in_locale": None,
            "item_held": False,
            "stopped": False,
            **facts.model_dump(mode="json"),
        },
        "notification": wording.notification(told),
    }


def test_committed_json_schema_is_what_the_model_generates() -> None:
    committed = SCHEMA_FILE.read_text() if SCHEMA_FILE.exists() else ""
    assert committed == json_schema_text(), (
        f"{SCHEMA_FILE.relative_to(PROJECT_ROOT)} is out of date with workflows/events.py;"
        f" regenerate it: .venv/bin/python -m workflows.events >"
        f" {SCHEMA_FILE.relative_to(PROJECT_ROOT)}"
        " (within a schema_version fields may only be added)"
    )


@pytest.mark.parametrize("facts", every_situation(), ids=lambda f: f"{f.state}-{f.locale}")
def test_a_real_payload_validates_and_keeps_the_unversioned_fields(facts: MessageFacts) -> None:
    notice = delivered_notice(facts)
    payload = outbox.event_payload(REFUND_ID, notice)
    assert payload["schema_version"] == SCHEMA_VERSION == "1"
    expected = {"schema_version": "1", **unversioned_payload(notice)}
    # Added within version 1: the customer's tracking link, filled in at delivery to them.
    expected["notification"] = {**expected["notification"], "tracking_url": None}
    assert payload == expected
    # What is stored and sent (JSON text) parses back to the same event.
    body = json.dumps(payload)
    assert SubscriberEvent.model_validate_json(body).model_dump(mode="json") == payload
    # A field added later within version 1 does not break a receiver of version 1.
    assert SubscriberEvent.model_validate({**payload, "added_later": 1}).id == payload["id"]


def test_every_message_fact_is_on_the_wire() -> None:
    # A fact added to MessageFacts reaches subscribers only once it is added to EventFacts
    # (allowed within a version); a fact renamed or removed there must not vanish silently.
    assert set(EventFacts.model_fields) == set(MessageFacts.model_fields)


def test_an_event_stored_before_a_field_was_added_validates_against_the_schema() -> None:
    """The outbox keeps each event as written, so one stored before a field was added within
    v1 is delivered without it: the committed schema must accept it (a trial validated
    strictly and would have rejected it), and still refuse an event missing a field every
    v1 event carries."""
    validator = jsonschema.Draft202012Validator(json.loads(SCHEMA_FILE.read_text()))
    added_within_v1 = {
        name for name, field in EventFacts.model_fields.items() if not field.is_required()
    }
    assert {"payment_reversed", "item_held", "stopped"} <= added_within_v1
    for facts in every_situation():
        payload = outbox.event_payload(REFUND_ID, delivered_notice(facts))
        validator.validate(payload)
        older = {
            **payload,
            "facts": {k: v for k, v in payload["facts"].items() if k not in added_within_v1},
            "notification": {
                k: v for k, v in payload["notification"].items() if k != "tracking_url"
            },
        }
        validator.validate(older)
        for required in ("schema_version", "seq"):
            with pytest.raises(jsonschema.ValidationError):
                validator.validate({k: v for k, v in payload.items() if k != required})
