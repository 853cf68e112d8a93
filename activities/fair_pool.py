"""A Postgres pool that serves its callers in the order they asked.

asyncpg's pool keeps its idle connections in an asyncio.Queue. Its `get()` returns at once
when a connection is there, without yielding. A caller the queue woke up, that finds its
connection taken meanwhile by one that asked later, goes to the back of the line
(MagicStack/asyncpg#1247). Under load, some callers wait many turns. In the bench, 1,000
status lookups, 50 at a time on 10 connections, all finished in 107 ms, yet some of them
had waited 80-97 ms.

`FairPool` puts a gate of the pool's size in front of `acquire`: an asyncio.Semaphore,
which hands a released turn to its first waiter. asyncpg's own queue then has no waiters
(but for a moment, when a cancelled caller's connection is still being reset), so there is
nothing to jump.

Its connections skip asyncpg's reset query on release (`SessionConnection`): a round trip of
four statements after every use, for session state (LISTEN, session advisory locks, SET) that
only the outbox dispatcher's lock connection and the migrations' lock ever take. Those mark
their connection, and it gets the full reset when it goes back.
"""

from __future__ import annotations

import asyncio
from types import TracebackType
from typing import Any

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

MAX_QUERIES = 50_000  # asyncpg.create_pool's defaults, for the same pool built directly
MAX_INACTIVE_S = 300.0


async def create_fair_pool(database_url: str, *, min_size: int, max_size: int) -> FairPool:
    """What `asyncpg.create_pool(database_url, min_size=…, max_size=…)` makes, served in
    turn. asyncpg builds its pools only through create_pool, so it is built here as create_pool
    builds it."""
    pool = FairPool(
        database_url,
        min_size=min_size,
        max_size=max_size,
        max_queries=MAX_QUERIES,
        max_inactive_connection_lifetime=MAX_INACTIVE_S,
        loop=None,
        connection_class=SessionConnection,
        record_class=asyncpg.Record,
    )
    await pool  # connects its first min_size connections, as create_pool does
    return pool


class SessionConnection(asyncpg.Connection):  # type: ignore[misc]  # asyncpg ships no types
    """A pooled connection that is reset on release only if it took session state. asyncpg
    still rolls back a transaction left open and forgets the listeners' callbacks either way."""

    _took_session_state = False

    def took_session_state(self) -> None:
        """This connection is about to LISTEN, take a session advisory lock or SET a setting:
        reset it fully (UNLISTEN *, pg_advisory_unlock_all(), RESET ALL) when it is released,
        so a cleanup that failed never leaves a lock or a setting for the pool's next user."""
        self._took_session_state = True

    def get_reset_query(self) -> str:
        if not self._took_session_state:
            return ""  # nothing beyond the transaction to undo: no round trip
        query: str = super().get_reset_query()
        return query

    async def reset(self, *, timeout: float | None = None) -> None:  # noqa: ASYNC109 (asyncpg's)
        """asyncpg's reset (the pool's, on release); a full one clears the mark. One that
        fails leaves the mark: the pool then terminates the connection anyway."""
        await super().reset(timeout=timeout)
        self._took_session_state = False


def took_session_state(conn: Any) -> None:
    """Mark `conn` (pooled or not) as taking session state; a connection no pool resets (one
    opened with asyncpg.connect) needs no mark."""
    mark = getattr(conn, "took_session_state", None)
    if mark is not None:
        mark()


class FairPool(asyncpg.Pool):  # type: ignore[misc]  # asyncpg ships no types
    """asyncpg's pool, with callers served first come, first served."""

    def __init__(self, *args: Any, max_size: int, **kwargs: Any) -> None:
        super().__init__(*args, max_size=max_size, **kwargs)
        self._turns = asyncio.Semaphore(max_size)

    def acquire(self, *, timeout: float | None = None) -> InTurn:
        """A connection once every caller that asked before has had one (`async with` only;
        `timeout` bounds the whole wait: the turn, then asyncpg's own)."""
        return InTurn(self, timeout)


class InTurn:
    """`async with pool.acquire() as conn`: the caller's turn, then a connection; both
    given back on the way out, whatever happened inside."""

    def __init__(self, pool: FairPool, timeout: float | None) -> None:
        self._pool = pool
        self._timeout = timeout
        self._inner: PoolAcquireContext | None = None
        self._has_turn = False  # a turn is given back once, and only if it was taken

    async def __aenter__(self) -> PoolConnectionProxy:
        left = self._timeout
        if left is None:  # the usual case: no timer to set up on this hot path
            await self._pool._turns.acquire()
        else:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + left
            async with asyncio.timeout_at(deadline):
                await self._pool._turns.acquire()
            left = max(deadline - loop.time(), 0.001)  # asyncpg gets what is left
        self._has_turn = True
        try:
            self._inner = asyncpg.Pool.acquire(self._pool, timeout=left)
            return await self._inner.__aenter__()
        except BaseException:
            self._inner = None
            self._give_back()
            raise

    def _give_back(self) -> None:
        if self._has_turn:
            self._has_turn = False
            self._pool._turns.release()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        inner, self._inner = self._inner, None
        try:
            if inner is not None:
                await inner.__aexit__(kind, error, trace)
        finally:
            self._give_back()
