"""Staff's note on a cancellation from Temporal that was refused (client/render.py
`_cancel_refused`): it says where the refund is now, not where it was when refused."""

from __future__ import annotations

import pytest

from client import render
from tests.unit.test_answer_as_recorded import view
from workflows.models import StatusView
from workflows.states import Awaiting, RefundState

R = RefundState.REFUNDING
WAITS = (
    "level 2: cancellation requested in Temporal refused: the refund waits for an operator's"
    " decision on its payment (refused, failed or taken back); an operator cancels it with"
    " `refundflow operator cancel`"
)


def refused_in_operator_wait(awaiting: Awaiting) -> StatusView:
    status = view(R, R, R)
    refusal = status.timeline[-1].model_copy(
        update={"event": "escalated", "source": "temporal", "reason": WAITS}
    )
    return status.model_copy(
        update={"timeline": [*status.timeline[:-1], refusal], "awaiting": awaiting}
    )


@pytest.mark.parametrize(
    ("awaiting", "says", "not_says"),
    [
        (Awaiting.OPERATOR, "refused: the refund waits for an operator's decision", "since"),
        # A review: after the operator's retry the note still said an operator must decide.
        (
            Awaiting.PAYMENT_PROVIDER,
            "refused while the refund waited for an operator, who decided since",
            "pays it",
        ),
    ],
)
def test_the_note_says_where_the_refund_is_now(
    awaiting: Awaiting, says: str, not_says: str
) -> None:
    shown = render.status(refused_in_operator_wait(awaiting))
    assert says in shown and not_says not in shown, shown
