"""The app's Postgres pool serves callers in the order they asked (activities/fair_pool.py):
nobody waits for another caller twice, a caller cancelled while waiting takes no turn with
it, and a turn comes back whatever happened while it was held. A connection goes back
without a reset round trip, unless it took session state: then fully reset."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from activities.fair_pool import took_session_state
from activities.pg_store import create_pool
from client.settings import Settings

pytestmark = pytest.mark.stack


CALLERS = 40


async def _longest_wait_in_turns(pool: asyncpg.Pool, rounds: int = 50) -> int:
    """CALLERS callers each take a connection `rounds` times, one short query each time.
    The longest any of them waited, counted in connections handed to others meanwhile."""
    handed_out = 0
    longest = 0
    # Every connection opened first: a caller whose turn comes with a connection still to
    # open waits for the handshake meanwhile, and that is not a turn lost.
    async with contextlib.AsyncExitStack() as held:
        for _ in range(pool.get_max_size()):
            await held.enter_async_context(pool.acquire())

    async def caller() -> None:
        nonlocal handed_out, longest
        for _ in range(rounds):
            asked_at = handed_out
            async with pool.acquire() as conn:
                longest = max(longest, handed_out - asked_at)
                handed_out += 1
                await conn.fetchval("SELECT 1")

    await asyncio.gather(*(caller() for _ in range(CALLERS)))
    return longest


@pytest.fixture
async def one_connection(settings: Settings) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(settings.require_database_url(), migrate=False, max_size=1)
    yield pool
    await pool.close()


async def test_no_caller_waits_longer_than_everyone_else_once(settings: Settings) -> None:
    pool = await create_pool(settings.require_database_url(), migrate=False, max_size=2)
    try:
        # In turn, a caller waits at most for each of the others once.
        assert await _longest_wait_in_turns(pool) <= CALLERS - 1
    finally:
        await pool.close()
    # Why it is not asyncpg's own pool: `python -m tests.asyncpg_fairness_canary` (not in
    # the suite: a race in a library, which a loaded run may not show).


async def test_a_caller_cancelled_in_line_takes_no_turn_with_it(
    one_connection: asyncpg.Pool,
) -> None:
    async def wait_in_line() -> None:
        async with one_connection.acquire():
            pytest.fail("the cancelled caller was served")

    async with one_connection.acquire():
        cancelled = asyncio.create_task(wait_in_line())
        await asyncio.sleep(0.05)
        cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
    async with asyncio.timeout(5), one_connection.acquire() as conn:
        assert await conn.fetchval("SELECT 1") == 1


async def test_a_turn_comes_back_after_an_error_and_after_a_failed_query(
    one_connection: asyncpg.Pool,
) -> None:
    for _ in range(3):
        with pytest.raises(ValueError):
            async with one_connection.acquire():
                raise ValueError("inside")
        with pytest.raises(asyncpg.PostgresError):
            await one_connection.fetchval("SELECT 1/0")
    async with asyncio.timeout(5):
        assert await one_connection.fetchval("SELECT 2") == 2


async def test_a_timeout_bounds_the_whole_wait_and_gives_the_turn_back(
    one_connection: asyncpg.Pool,
) -> None:
    async with one_connection.acquire():
        with pytest.raises(TimeoutError):
            async with one_connection.acquire(timeout=0.1):
                pytest.fail("served while the only connection was held")
    async with asyncio.timeout(5), one_connection.acquire(timeout=5) as conn:
        assert await conn.fetchval("SELECT 3") == 3


async def test_a_connection_goes_back_without_a_round_trip_unless_it_took_session_state(
    one_connection: asyncpg.Pool,
) -> None:
    sent: list[str] = []

    def log_query(record: asyncpg.connection.LoggedQuery) -> None:
        sent.append(record.query)

    async with one_connection.acquire() as conn:
        conn.add_query_logger(log_query)
        await conn.fetchval("SELECT 1")
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(7)")
    async with one_connection.acquire() as conn:  # the same connection: max_size 1
        await conn.fetchval("SELECT 2")
    # Only the caller's statements: no reset between the two uses.
    assert [q for q in sent if "BEGIN" not in q and "COMMIT" not in q] == [
        "SELECT 1", "SELECT pg_advisory_xact_lock(7)", "SELECT 2"
    ]  # fmt: skip

    # A connection marked as taking session state is reset when it goes back: a session
    # lock and a setting left behind (as a cleanup that failed would leave them) are gone.
    async with one_connection.acquire() as conn:
        took_session_state(conn)
        await conn.execute("SELECT pg_advisory_lock(8)")
        await conn.execute("SET application_name = 'left behind'")
        backend = conn.get_server_pid()
    async with one_connection.acquire() as conn:
        assert conn.get_server_pid() == backend
        assert await conn.fetchval("SHOW application_name") != "left behind"
        locks = "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = $1"
        assert await conn.fetchval(locks, backend) == 0
        await conn.execute("SET application_name = 'not marked'")  # the mark was used up
    async with one_connection.acquire() as conn:
        assert await conn.fetchval("SHOW application_name") == "not marked"
