"""Apply numbered SQL migrations once each, safely from several processes at a time."""

from __future__ import annotations

import hashlib
from pathlib import Path

import asyncpg


async def apply_migrations(conn: asyncpg.Connection, directory: Path, schema: str) -> list[str]:
    """Apply the .sql files in `directory` not yet recorded in `<schema>.schema_migrations`.

    An advisory lock keyed by the schema name serialises concurrent starters (worker,
    sandbox, CLI); each file runs in its own transaction. Returns the names applied now.
    """
    lock_key = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
    applied_now: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
        }
        for path in sorted(directory.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', path.name
                )
            applied_now.append(path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied_now
