"""A cancellation from Temporal ("Request Cancellation") while a refund waits for an
operator after the provider refused it. Before, the refusal of the cancel went on "with the
same payment" as for a refund with the provider: a new attempt under the same key, which the
provider (having refused, keeping nothing) paid, nobody having decided, after a person had
asked to stop it (a review). Now the cancel is refused on the record and the refund waits
for the operator again; the operator decides."""

from __future__ import annotations

from tests.workflow.conftest import Env, tv_order
from tests.workflow.recording import keep_history
from tests.workflow.test_payment_paths import cancelled_by_operator
from tests.workflow.waiting import until
from workflows.states import Awaiting, RefundState

SMALL = 4200  # auto-approved under every policy


async def test_a_cancel_from_temporal_in_an_operator_wait_is_refused_and_pays_nothing(
    env: Env,
) -> None:
    env.systems.provider_answers = ["refuse", "succeeded"]  # a new attempt would be paid
    handle = await env.start(tv_order(price=SMALL))
    waiting = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    await handle.cancel()  # the Web UI's "Request Cancellation"
    refused = await until(handle, lambda s: s.timeline[-1].source == "temporal")
    said = refused.timeline[-1]
    assert (said.event, said.actor) == ("escalated", "temporal-operator")
    assert "refused: the refund waits for an operator's decision" in said.reason, said.reason
    assert "refundflow operator cancel" in said.reason
    again = await until(handle, lambda s: s.awaiting is Awaiting.OPERATOR)
    assert again.state is RefundState.REFUNDING and env.systems.paid() == []
    assert again.provider_failure == waiting.provider_failure  # still the provider's refusal

    # The operator decides: here, to cancel it. Nothing was paid.
    await cancelled_by_operator(env, handle)
    await keep_history(handle, "cancel_refused_in_operator_wait")
