"""Fields added in this release leave payloads as they were while they are unset, so the
release before (workers, the API, CLIs) still reads them: its contracts refuse unknown fields
(extra="forbid"). An approval from a new API must reach a refund on an old worker."""

from __future__ import annotations

import json

from temporalio.contrib.pydantic import pydantic_data_converter

from workflows.models import ApproveInput, MessageFacts
from workflows.read_models import CustomerView
from workflows.states import RefundState

# The fields of ApproveInput in the release before (f7de2c4): what an old worker accepts.
APPROVE_BEFORE = {"issuer", "reviewer", "role", "amount", "source"}


def payload(value: object) -> dict[str, object]:
    data = pydantic_data_converter.payload_converter.to_payloads([value])[0].data
    decoded: dict[str, object] = json.loads(data)
    return decoded


def test_an_approval_without_evidence_is_the_payload_old_workers_read() -> None:
    assert set(payload(ApproveInput(reviewer="li", amount=100))) == APPROVE_BEFORE
    assert payload(ApproveInput(reviewer="li", evidence="photos"))["evidence"] == "photos"


def test_facts_without_a_partial_approval_carry_no_asked_amount() -> None:
    facts = MessageFacts(
        refund_id="rf_1", order_id="ord_1", state=RefundState.COMPLETED, amount=1, currency="USD"
    )
    assert "asked_amount" not in payload(facts)
    partial = facts.model_copy(update={"asked_amount": 2})
    assert payload(partial)["asked_amount"] == 2


def test_a_tracking_answer_names_what_was_asked_only_after_an_approval_for_less() -> None:
    # The previous release's `track --json` reads /track with extra="forbid".
    tracked = {
        "refund_id": "rf_1", "order_id": "ord_1", "locale": "en", "status": "Completed",
        "amount": 150, "currency": "USD", "message": "…", "eta": None, "eta_earliest": None,
        "eta_kind": None, "timeline": [],
    }  # fmt: skip
    assert CustomerView.model_validate(tracked).model_dump(mode="json") == tracked
    partial = CustomerView.model_validate({**tracked, "asked_amount": 30000})
    assert partial.model_dump(mode="json")["asked_amount"] == 30000
