"""A workflow run to its end that failed is told by its deepest cause's words (a trial's
`reconcile` said "unexpected WorkflowFailureError"), whatever the chain looks like."""

from __future__ import annotations

from client.errors import did_not_finish


class Failure(Exception):
    def __init__(self, message: str, cause: object = None) -> None:
        super().__init__(message)
        self.message, self.cause = message, cause


def test_the_deepest_words_are_told() -> None:
    chain = Failure(
        "Workflow execution failed",
        Failure("Activity task failed", Failure("payment provider answered 503")),
    )
    said = str(did_not_finish("reconciliation", chain))
    assert said == (
        "reconciliation did not finish: payment provider answered 503;"
        " run it again once that is fixed"
    )


def test_a_cycle_an_empty_cause_or_an_odd_cause_ends_with_words() -> None:
    looped = Failure("outer")
    looped.cause = Failure("inner", looped)
    assert "did not finish: " in str(did_not_finish("reconciliation", looped))
    empty = Failure("Workflow execution failed", Failure(""))
    assert "did not finish: Workflow execution failed;" in str(did_not_finish("x", empty))
    odd = Failure("Workflow execution failed", cause="not an exception")
    assert "did not finish: Workflow execution failed;" in str(did_not_finish("x", odd))
