"""Why the app's Postgres pool is not asyncpg's own (activities/fair_pool.py): there, a
caller it woke up loses its turn to one that asked later (MagicStack/asyncpg#1247). Run by
hand, not in the suite: it is a race in a library, 74-106 turns in six quiet runs here but
37, within the fair bound, three times in a row in a loaded run (a clone's whole suite on
two cores), which failed CI for a reason outside refundflow.

    DATABASE_URL=postgresql://… .venv/bin/python -m tests.asyncpg_fairness_canary

Exits 0 while asyncpg is still unfair (the app's pool is still needed), 1 when it served
in turn in every try: then try again on a quiet machine, and if it holds, asyncpg serves in
turn itself and activities/fair_pool.py can go.
"""

from __future__ import annotations

import asyncio
import os
import sys

import asyncpg

from tests.integration.test_fair_pool import CALLERS, _longest_wait_in_turns

TRIES = 5


async def longest_waits(database_url: str) -> list[int]:
    plain = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        waits: list[int] = []
        for _ in range(TRIES):
            waits.append(await _longest_wait_in_turns(plain))
            if waits[-1] > CALLERS - 1:
                break
        return waits
    finally:
        await plain.close()


def main() -> int:
    url = os.environ.get("DATABASE_URL")
    if not url:
        print("error: set DATABASE_URL to a PostgreSQL database", file=sys.stderr)
        return 2
    waits = asyncio.run(longest_waits(url))
    unfair = max(waits) > CALLERS - 1
    print(
        f"asyncpg's own pool: longest wait {max(waits)} turns with {CALLERS} callers"
        f" (fair: at most {CALLERS - 1}); {'still unfair' if unfair else 'in turn every try'}"
    )
    return 0 if unfair else 1


if __name__ == "__main__":
    sys.exit(main())
