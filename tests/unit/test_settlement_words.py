"""An unconfirmed settlement signal's words carry its claimed sender only when it names one
of refundflow's own (a trial: "names an unknown sender as its sender" for "Webhook ")."""

from __future__ import annotations

from workflows.refund.settlement_hints import _claimed


def test_a_claimed_sender_is_named_only_when_refundflow_has_one_of_that_name() -> None:
    assert _claimed("webhook") == "a signal that names webhook as its sender"
    assert _claimed("signal") == "a signal"
    for odd in ("Webhook ", "anything", ""):
        assert _claimed(odd) == "a signal from a sender refundflow does not know", odd
