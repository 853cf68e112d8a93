"""The contract of the call that records a refund's transitions and then asks the provider
to pay (names.ACTIVITY_RECORD_AND_PAY): the first payment attempt of a refund started on
patches.RECORD_WITH_PAYMENT, on its in-process fast path.

Why one call: the audit write before the payment is a guard, not only a record. A run that
a reset took back to before its refund moved on (cancelled, paid) is refused by the store
and never reaches the provider. Writing it in the same call as the payment keeps that order
(record first, then pay; a refused record pays nothing) and saves a local activity per
refund: an activation, a marker event and a pass of the codec.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from workflows.models import IssueRefundInput, RecordTransitionsInput


class RecordAndPayInput(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    record: RecordTransitionsInput
    """Written first, exactly as `record_transitions` writes it (idempotent per sequence)."""
    pay: IssueRefundInput
    """Sent only once `record` is written."""
