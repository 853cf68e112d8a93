"""How commands reach the system: Postgres alone for reads, RefundClient for the rest.

Neither migrates the database: that is the worker's job (at its start, or `refundflow
migrate`), so a client needs no more than the rights to read and write rows.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from client.errors import RefundflowError
from client.settings import Settings


async def with_store(
    action: Callable[[Any], Awaitable[Any]], database_url: str | None = None
) -> Any:
    """Run `action` on a PostgresRefundStore, for commands that need Postgres but no
    Temporal (list, audit, ...). The database is the settings' unless given."""
    import asyncpg

    from activities.pg_store import PostgresRefundStore, create_pool

    url = database_url or Settings.from_env().require_database_url()
    try:
        pool = await create_pool(url, migrate=False)
    except (OSError, asyncpg.PostgresError) as err:
        raise RefundflowError(f"cannot reach the database: {err}") from None
    try:
        return await action(PostgresRefundStore(pool))
    except asyncpg.UndefinedTableError:
        raise RefundflowError(
            "the database has no refundflow tables yet: run `refundflow migrate`"
            " (a worker also migrates when it starts)"
        ) from None
    finally:
        await pool.close()


async def with_client(action: Callable[[Any], Awaitable[Any]]) -> Any:
    """Run `action` on a RefundClient connected as the settings say."""
    from client.refund_client import RefundClient

    client = await RefundClient.connect(Settings.from_env())
    try:
        return await action(client)
    finally:
        await client.close()
