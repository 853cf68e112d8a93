"""A dispatcher round leases deliveries a chunk at a time and records every outcome: an
attempt that raises (a bug, an error the HTTP client does not class as its own) is a failed
attempt of its event alone; the other events of its chunk, and of the round, are recorded
delivered, once.

A real dispatcher on a database of its own, delivering to a real HTTP subscriber on
127.0.0.1. The raising attempt is the dispatcher's own code made to raise for one event.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import asyncpg
import pytest

from activities.dispatcher import OutboxDispatcher
from client.settings import Settings
from tests.integration.helpers import eventually
from tests.integration.test_outbox_leadership import (
    Receiver,
    all_delivered,
    dispatcher,
    enqueue,
    subscribed,
)

pytestmark = pytest.mark.stack


class RaisesFor(OutboxDispatcher):
    """Raises, instead of answering, for one event (as a bug in `_attempt` would)."""

    def __init__(self, *args: Any, poison: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.poison = poison

    async def _attempt(self, row: dict[str, Any]) -> str | None:
        if row["event_id"] == self.poison:
            raise KeyError("notification")
        return await super()._attempt(row)


async def test_an_attempt_that_raises_fails_alone_and_its_chunk_is_recorded(
    settings: Settings,
) -> None:
    receiver = Receiver()
    async with subscribed(settings, "rounds", receiver) as (db, url):
        await one_poisoned_round(db, url, receiver)


async def one_poisoned_round(db: asyncpg.Pool, url: str, receiver: Receiver) -> None:
    ids = await enqueue(db, "p", 12)  # two chunks of at most 8
    poison, healthy = ids[3], [i for i in ids if i != ids[3]]
    async with dispatcher(url, "rounds", 0.2, RaisesFor, poison=poison):
        await eventually(lambda: all_delivered(db, healthy), bool, timeout=20)
        failed = await eventually(lambda: delivery(db, poison), lambda r: r["attempts"] >= 1)
    assert failed["delivered_at"] is None
    assert (
        failed["last_error"].startswith("attempt failed: ")
        and "notification" in (failed["last_error"])
    )
    sent = Counter(event for event, _ in receiver.got)
    assert sorted(sent) == sorted(healthy) and set(sent.values()) == {1}, sent


async def delivery(db: asyncpg.Pool, event_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT attempts, delivered_at, last_error FROM refundflow.deliveries WHERE event_id = $1",
        event_id,
    )
    return row
