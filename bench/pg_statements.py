"""Postgres statements per refund, from pg_stat_statements in the bench's own Postgres (loaded
at its start: `STATEMENT_SETTINGS`). Only top-level statements are counted: each is a round
trip from some process (the API, the worker, the sandbox, the bench's status polls through
the API), and a round trip costs client and server CPU whatever the statement does, which
is where the CPU of a refund's Postgres work goes (the note of issue 15)."""

from __future__ import annotations

from typing import Any

import asyncpg

STATEMENT_SETTINGS = {
    "shared_preload_libraries": "pg_stat_statements",
    "pg_stat_statements.track": "top",
}
TOP = 8
"""The most frequent statements reported, with their share."""
SHOWN_CHARS = 110


class StatementMeter:
    """Counts what the refunds of some legs ran: `start` before each leg, `stop` once the
    stack has settled after it (notices still going out are the leg's own work)."""

    def __init__(self, owner_url: str) -> None:
        self._owner_url = owner_url
        self._calls: dict[str, float] = {}
        self._exec_ms: dict[str, float] = {}
        self.counting = False
        """pg_stat_statements answered at the last start."""

    async def start(self) -> None:
        conn = await asyncpg.connect(self._owner_url)
        try:
            await conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            await conn.execute("SELECT pg_stat_statements_reset()")
            self.counting = True
        except asyncpg.PostgresError:  # a Postgres without it loaded: the figure is left out
            self.counting = False
        finally:
            await conn.close()

    async def stop(self) -> None:
        if not self.counting:
            return
        conn = await asyncpg.connect(self._owner_url)
        try:
            rows = await conn.fetch(
                "SELECT query, calls, total_exec_time FROM pg_stat_statements"
                " WHERE query NOT LIKE '%pg_stat_statements%'"
            )
        finally:
            await conn.close()
        for row in rows:
            text = " ".join(row["query"].split())
            self._calls[text] = self._calls.get(text, 0) + row["calls"]
            self._exec_ms[text] = self._exec_ms.get(text, 0.0) + row["total_exec_time"]

    def per_refund(self, refunds: int) -> dict[str, Any] | None:
        """Statements and their execution time per refund, and the most frequent (None:
        nothing was counted)."""
        if not self._calls or not refunds:
            return None
        top = sorted(self._calls, key=lambda text: -self._calls[text])[:TOP]
        return {
            "per_refund": round(sum(self._calls.values()) / refunds, 1),
            "exec_ms_per_refund": round(sum(self._exec_ms.values()) / refunds, 2),
            "top": [
                {
                    "per_refund": round(self._calls[text] / refunds, 2),
                    "exec_ms_per_refund": round(self._exec_ms[text] / refunds, 3),
                    "statement": text[:SHOWN_CHARS],
                }
                for text in top
            ],
        }
