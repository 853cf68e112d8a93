"""The patch register: every `workflow.patched()` id RefundWorkflow uses, why, and its stage.

A patch lets refunds that started under older code keep their path while new refunds take
the new one. Its life (samples-python `patching/`): `patched` (both paths in the code) ->
`deprecated` (`workflow.deprecate_patch`, once no open refund can be on the old path) ->
`removed`. The committed histories that cover each path are listed in
tests/replay/histories/manifest.json, and tests/replay/test_manifest.py checks the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

LOCAL_FAST_PATH = "local-fast-path"
RESERVE_BEFORE_APPROVAL = "reserve-before-approval"
WATCH_PROVIDER_CALL = "watch-provider-call"
RECORD_PAYMENT_BEFORE_RESTOCK = "record-payment-before-restock"
OPERATOR_PAID_EXIT = "operator-paid-exit"
CANCEL_REQUEST_IS_A_REFUND_EVENT = "cancel-request-is-a-refund-event"
CONFIRM_SETTLEMENT_HINTS = "confirm-settlement-hints"
VERIFY_REQUEST = "verify-request"
ESCALATION_ENDS_WITH_REFUND = "escalation-ends-with-refund"
LONG_LIVED_REFUND = "long-lived-refund"
# Each `patched()` writes a marker and a TemporalChangeVersion upsert (a billable action):
# the patches above cost a new refund up to twenty events and ten actions. Refunds started
# since ALL_ABOVE ask that one patch and take every new path above without asking
# (`Progress.all_above`); older refunds ask each patch where they always did. Refunds
# started with `RefundWorkflowInput.started_on = ALL_ABOVE` take it without asking at all.
ALL_ABOVE: Final = "all-above-2026-11"
# Every path of ALL_ABOVE, and the start's check and the refund's hold in one store call.
# RefundClient's starts name it; other starts ask it (after ALL_ABOVE, before any activity).
ADMIT_IN_ONE_CALL: Final = "admit-in-one-call-2026-11"
# Every path of ADMIT_IN_ONE_CALL, and the first payment attempt's audit write in the same
# local activity as the provider call. RefundClient's starts name it; other starts ask it
# (after ADMIT_IN_ONE_CALL, before any activity).
RECORD_WITH_PAYMENT: Final = "record-with-payment-2026-11"
# Asked where it is used (an operator's paid-elsewhere, rare): not in the roll-ups above.
PAID_ELSEWHERE_WITHIN_CAPTURE: Final = "paid-elsewhere-within-capture"
# Asked where used (a signalled settlement of another amount, rare): not in the roll-ups.
SETTLEMENT_OF_ITS_AMOUNT: Final = "settlement-of-its-amount"
# Asked where used (an operator's retry, rare): not in the roll-ups.
RETRY_STARTS_AFRESH: Final = "retry-starts-afresh"
# Asked where used (a cancellation from Temporal refused while paying, rare): not in the roll-ups.
CANCEL_REFUSED_GOES_ON: Final = "cancel-refused-goes-on"
# Asked where used (a cancellation from Temporal in an operator's wait, rare): not in the roll-ups.
CANCEL_IN_OPERATOR_WAIT: Final = "cancel-in-operator-wait"
# Asked where used (an approval of an escalated review, an update): not in the roll-ups.
APPROVAL_ENDS_ESCALATION: Final = "approval-ends-escalation"
StartedOn = Literal["all-above-2026-11", "admit-in-one-call-2026-11", "record-with-payment-2026-11"]
"""The roll-ups a start may name (`RefundWorkflowInput.started_on`). A worker refuses a
start naming one it does not know (its workflow task fails and is retried), so the refund
waits for a worker that knows it, instead of taking an older path that a newer worker's
replay would not match. A release that adds one and has RefundClient send it is rolled out
as any new field of the start (docs/deployment.md): its workers current first, then the API;
back, the API first. Refunds its API started meanwhile wait for its workers to return."""

# How long a refund can stay open: review expiry (at most days), the item return window (at
# most 365 days), then an operator wait that has no end. Hence "no open refund is on the old
# path" is checked, not assumed: list them with the query in `next_stage`.
_OLD_OPEN = (
    "no open RefundWorkflow lacks the marker: `temporal workflow list --query"
    " \"WorkflowType='RefundWorkflow' AND ExecutionStatus='Running'"
    " AND StartTime < '<release time of the patch>'\"` is empty"
)


@dataclass(frozen=True)
class Patch:
    id: str
    why: str
    old_path: str
    """What refunds started before the patch do instead."""
    stage: Literal["patched", "deprecated", "removed"]
    next_stage: str
    """The condition for moving to the next stage."""


REGISTER: tuple[Patch, ...] = (
    Patch(
        RESERVE_BEFORE_APPROVAL,
        "Hold the amount against the order's capture before any approval (invariant 2).",
        "no reservation; the refund counts as reserved",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        LOCAL_FAST_PATH,
        "Store calls and the first provider call as local activities: an auto-approved"
        " refund completes in one workflow task (fewer actions, lower latency).",
        "every store call is a regular activity; no fast provider call",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        WATCH_PROVIDER_CALL,
        "A provider call that keeps failing is watched by the refund-SLA timer and escalated,"
        " so an outage never leaves a refund without a timer (invariant 12).",
        "the durable provider call is awaited without a timer",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        RECORD_PAYMENT_BEFORE_RESTOCK,
        "Record `provider_paid` in the audit before restocking, so the money movement is"
        " durable in our records before the warehouse is called.",
        "restock first, then record the provider's confirmation",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        OPERATOR_PAID_EXIT,
        "A refund waiting for an operator completes when reconciliation proves the provider"
        " paid after all, instead of waiting for a person.",
        "only an operator's retry or cancel ends the wait",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        CANCEL_REQUEST_IS_A_REFUND_EVENT,
        "A cancellation requested in Temporal (the Web UI's button, `temporal workflow"
        " cancel`) withdraws a refund where no money has moved, audited and notified, and"
        " is refused and escalated where money may have moved; before, it closed the"
        " workflow and left the projection, reservation and customer behind.",
        "the cancellation closes the workflow as cancelled",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        CONFIRM_SETTLEMENT_HINTS,
        "A settlement signal (webhook, reconciliation, anyone with Temporal access) is a hint:"
        " it counts only once the provider lists that refund, created for this refund, with"
        " that status (invariant 11). Before, a forged `succeeded` completed a refund.",
        "the signal's word is taken as the provider's",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        VERIFY_REQUEST,
        "A workflow start is checked before the refund acts: the pinned policy text against"
        " its hash and the policies the worker knows, the order snapshot against the order"
        " system (invariant 11). Before, a direct start could carry any policy or order.",
        "the start's policy and order are taken as given",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        ESCALATION_ENDS_WITH_REFUND,
        "A completed or cancelled refund is no longer escalated: EscalationLevel and the"
        " projection go back to 0, so `EscalationLevel > 0` and `list --escalated` show only"
        " refunds that still need someone (the audit keeps every escalation).",
        "the last escalation level stays on the closed refund",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        LONG_LIVED_REFUND,
        "A refund that waits for months keeps a bounded history: store calls try in-process"
        " for a few seconds, then as a regular activity (whose retries add no history); an"
        " audit conflict (another run after a reset) is final: the run's entries follow the"
        " stored ones and the conflict is escalated; long provider and operator waits"
        " continue as new with the whole state.",
        "store calls retry in-process forever; an audit conflict retries forever; one run",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        ALL_ABOVE,
        "Every patch above at once, asked first: one marker and one upsert instead of one"
        " of each per patch (a new auto-approved refund had 8 of each); none at all for a"
        " refund whose start input says `started_on` it (RefundClient's starts).",
        "each patch above is asked where it is used",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        ADMIT_IN_ONE_CALL,
        "The start's verification and the refund's reservation in one store call: one local"
        " activity (one activation, one marker event, one codec pass) instead of two on"
        " every refund. Taken without asking by a refund whose `started_on` names it"
        " (RefundClient's starts); asked, after ALL_ABOVE, by any other new refund.",
        "verify the start, then reserve, in two store calls",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        RECORD_WITH_PAYMENT,
        "The audit write before the first payment attempt and the provider call in one local"
        " activity (workflows/recorded_payment.py): the record first, so a refused record"
        " still pays nothing; one activation, marker event and codec pass fewer per refund."
        " Taken without asking by a refund whose `started_on` names it (RefundClient's"
        " starts); asked, after ADMIT_IN_ONE_CALL, by any other new refund.",
        "write the audit, then call the provider, in two local activities",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        PAID_ELSEWHERE_WITHIN_CAPTURE,
        "A payment recorded as made outside the provider is refused while the order's other"
        " payouts (the provider's ledger for the order, asked now, and the other refunds'"
        " holds) and this refund's amount exceed its capture (workflows/refund/"
        "within_capture.py). Before, only the client's check of reconciliation's last"
        " finding stood in the way.",
        "only the provider's live refunds for this refund are asked",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        SETTLEMENT_OF_ITS_AMOUNT,
        "A signalled settlement (webhook, reconciliation) of a provider refund that carries"
        " this refund's id but succeeded for another amount or currency is ignored on the"
        " record, not taken as this refund's payment (workflows/refund/settlement_hints.py).",
        "any provider refund listed under this refund's id that succeeded completed it",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        RETRY_STARTS_AFRESH,
        "An operator's retry is a new payment: its escalation level goes back to 0 and its"
        " stall timers and payment ETA count from the retry (asked in the operator_retry"
        " update, workflows/refund/workflow.py, never after a local activity)."
        " Before, a retry the provider left pending stayed at level 2 beside 'nothing for"
        " staff to do', and its ETA counted from the first attempt, days before.",
        "the level and the ETA of the first attempt stay after a retry",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        CANCEL_REFUSED_GOES_ON,
        "A cancellation from Temporal refused while the provider pays goes on with the same"
        " payment: its SLA clock and ETA keep counting from when it was sent, and a pending"
        " provider refund already told is not told again (asked in the cancel handler before"
        " any local activity, workflows/refund/workflow.py). Before, the customer got a second"
        " identical 'on its way' notice and the clock started again (a trial).",
        "the payment starts again: a second pending notice, the SLA counted from the cancel",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        CANCEL_IN_OPERATOR_WAIT,
        "A cancellation from Temporal while the refund waits for an operator (its payment"
        " refused or failed) is refused and the refund waits for the operator again (asked in"
        " the cancel handler before any local activity, workflows/refund/temporal_cancel.py)."
        " Before, the refused cancel went on with a new payment attempt under the same key,"
        " which a provider that had refused it paid, nobody deciding (a review).",
        "the refused cancel makes a new payment attempt: paid without an operator's decision",
        "patched",
        _OLD_OPEN,
    ),
    Patch(
        APPROVAL_ENDS_ESCALATION,
        "An approval of a review that escalated brings the level back to 0, in its audit"
        " entry and notice too: the refund is decided, nobody is late (asked in the approve"
        " update, workflows/refund/workflow.py, only when the level is above 0). Before, a"
        " returns refund approved at level 2 stayed escalated while it waited for the item"
        " (a trial), and a standard one paid slowly could not escalate for its provider.",
        "the review's level stays after the approval, until the refund closes",
        "patched",
        _OLD_OPEN,
    ),
)


def patch_ids() -> set[str]:
    return {patch.id for patch in REGISTER}
