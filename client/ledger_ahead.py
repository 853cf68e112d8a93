"""The order's ledger, read while the order itself is looked up.

A new request's answer used to wait for the order system and then for the ledger, one after
the other. The ledger read needs only the order's id and the refund's (both in the request),
so the API starts it first and the answer waits for the slower of the two. Nothing read
ahead is trusted more than before: the hold that follows locks the order and reads its
ledger again (activities/reserving.py), and a request the early check would refuse is
checked again on a fresh read (RefundClient.request_again_or_new), since the holds read
ahead may be as old as the order's look-up.
"""

from __future__ import annotations

import asyncio

from activities.order_ledger import LedgerRead
from activities.pg_store import PostgresRefundStore
from client.timings import step

_RUNNING: set[asyncio.Future[LedgerRead]] = set()
"""Reads still running: the event loop keeps only a weak reference to a task, and one whose
request has been answered must not be collected mid-query."""


class LedgerReadAhead:
    def __init__(self, store: PostgresRefundStore, order_id: str, refund_id: str) -> None:
        self.order_id, self.refund_id = order_id, refund_id
        self._read = asyncio.ensure_future(store.state_and_holds(order_id, refund_id))
        _RUNNING.add(self._read)
        self._read.add_done_callback(_RUNNING.discard)

    def answers(self, order_id: str, refund_id: str) -> bool:
        """Whether this read is the one the request needs (the order system may name the
        order differently from the caller: then it is read again)."""
        return (order_id, refund_id) == (self.order_id, self.refund_id)

    async def result(self) -> LedgerRead:
        # Shielded: a request cancelled while it waits leaves the query to finish.
        with step("ledger"):  # read ahead: only what the answer still waits for it
            return await asyncio.shield(self._read)

    def discard(self) -> None:
        """The request is answered (or refused before it needed the ledger). A read still
        running finishes on its own, in milliseconds: cancelled mid-query, it would cost
        the pool its connection. Its error, if any, is read here, never left unread."""
        self._read.add_done_callback(_read_its_error)


def _read_its_error(read: asyncio.Future[LedgerRead]) -> None:
    if not read.cancelled():
        read.exception()
