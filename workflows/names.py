"""Names shared by the worker, the client and the operators' tooling."""

from __future__ import annotations

from temporalio.common import SearchAttributeKey

DEFAULT_TASK_QUEUE = "refunds"

# Custom search attributes: what operators filter on in the Web UI and `temporal workflow list`.
# They hold no personal data: a state, an order id (our own opaque id) and numbers.
SA_REFUND_STATE = SearchAttributeKey.for_keyword("RefundState")
SA_ORDER_ID = SearchAttributeKey.for_keyword("OrderId")
SA_ESCALATION_LEVEL = SearchAttributeKey.for_int("EscalationLevel")
SA_AWAITING = SearchAttributeKey.for_keyword("RefundAwaiting")

# How Temporal may end a refund's workflow without the refund ending: terminated (the Web
# UI's Terminate), timed out (a run timeout), failed (a bug). Cancellation is a refund event.
ABNORMAL_CLOSES = "ExecutionStatus IN ('Terminated', 'TimedOut', 'Failed')"

SEARCH_ATTRIBUTES: dict[str, str] = {
    "RefundState": "Keyword",
    "OrderId": "Keyword",
    "EscalationLevel": "Int",
    "RefundAwaiting": "Keyword",
}

# Activity names: the workflow refers to activities by name so that it imports no I/O code.
ACTIVITY_RECORD_TRANSITIONS = "record_transitions"
ACTIVITY_ISSUE_PROVIDER_REFUND = "issue_provider_refund"
# The audit write before the payment and the payment, in one call (patches.RECORD_WITH_PAYMENT).
ACTIVITY_RECORD_AND_PAY = "record_and_issue_provider_refund"
ACTIVITY_RESTOCK_LINE = "restock_line"
ACTIVITY_RESERVE_REFUND = "reserve_refund"
ACTIVITY_CHECK_PROVIDER_REFUND = "check_provider_refund"
ACTIVITY_FIND_PROVIDER_REFUNDS = "find_provider_refunds"
ACTIVITY_VERIFY_REQUEST = "verify_request"
ACTIVITY_ADMIT_REFUND = "admit_refund"
ACTIVITY_CANCEL_PROVIDER_REFUND = "cancel_provider_refund"
# What an order's other refunds and the provider paid or hold, asked before a payment made
# outside the provider is recorded (patches.PAID_ELSEWHERE_WITHIN_CAPTURE).
ACTIVITY_ORDER_PAYOUTS = "order_payouts"

# Error type raised by the payment adapter when the provider refuses for good (not retried).
PROVIDER_REFUSED_ERROR = "ProviderRefused"
INVENTORY_REFUSED_ERROR = "InventoryRefused"
# Its codes for refusals of refundflow's own checks before anything is sent: the order's
# capture with money paid elsewhere (activities/order_payouts.py), a provider refund of
# another amount under this refund's id (activities/http_adapters.this_refunds_payment).
NOT_SENT_ABOVE_CAPTURE = "above_capture_with_paid_elsewhere"
NOT_SENT_AMOUNT_MISMATCH = "provider_amount_mismatch"
# ... and more than the refund holds on its order (activities/order_payouts.PaymentGuard).
NOT_SENT_ABOVE_HOLD = "above_its_hold"
# ... and a record past the run asking to pay, no longer with the provider (activities/own_record).
NOT_SENT_RECORD_MOVED_ON = "record_moved_on"
# Another run of a refund (a workflow reset) wrote other entries at the same audit seqs.
AUDIT_CONFLICT_ERROR = "AuditConflict"
# ... where the other run's entries moved the refund to another state (paid, closed): this
# run, reset to before that, must not act on the state it holds. Final: the run fails.
AUDIT_SUPERSEDED_ERROR = "AuditSuperseded"

ACTIVITY_RECONCILE = "reconcile"
RECONCILIATION_SCHEDULE_ID = "refundflow-reconciliation"
SIGNAL_PROVIDER_SETTLED = "provider_settled"
QUERY_CARRY_OVER = "carry_over"
QUERY_POLICY_RULES = "policy_rules"
UPDATE_FIRST_STEP = "first_step"
