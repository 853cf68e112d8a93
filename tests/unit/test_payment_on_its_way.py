"""Reconciliation leaves a refund whose run ended while it paid for IN_FLIGHT_SECONDS after
that end, whatever the grace (a red-team trial: closed "no money moved", paid 5 s later),
and then closes it as always (it must not wait for ever)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from activities.closing_advice import IN_FLIGHT_SECONDS, payment_may_be_on_its_way

NOW = datetime(2026, 11, 29, 18, 0, tzinfo=UTC)
PAYING = {"state": "refunding", "awaiting": "payment_provider"}


def ended(seconds_ago: float, **fields: str) -> dict[str, str]:
    return {**PAYING, "closed_at": (NOW - timedelta(seconds=seconds_ago)).isoformat(), **fields}


@pytest.mark.parametrize(
    ("details", "waits"),
    [
        (ended(5), True),
        (ended(IN_FLIGHT_SECONDS - 1), True),
        (ended(IN_FLIGHT_SECONDS), False),  # then closed (or completed) as always
        (ended(3600), False),
        (ended(-30), True),  # Temporal's clock ahead of the worker's
        (ended(5, awaiting="operator"), False),  # waiting for a person: no call on its way
        (ended(5, state="pending_review", awaiting="reviewer"), False),
        ({**PAYING, "closed_at": "not a time"}, True),  # unknown: the safe side
        ({**PAYING, "closed_at": "2026-11-29T17:59:50"}, True),  # no zone: UTC
    ],
)
def test_a_refund_ended_while_paying_waits_only_while_a_call_may_be_on_its_way(
    details: dict[str, str], waits: bool
) -> None:
    said = payment_may_be_on_its_way(details, NOW)
    assert (said is not None) == waits, said
    if waits:
        assert said is not None and f"no sooner than {IN_FLIGHT_SECONDS} s after its end" in said
