"""Delivers outbox events to subscribers: signed, at least once, in order per refund.

- Signed: `Refundflow-Signature: t=<unix s>,v1=<HMAC-SHA256(secret, "<t>.<body>")>`.
- At least once: a delivery counts only on a 2xx answer; anything else is retried with
  exponential backoff (1 s, 2 s, 4 s ... at most 5 min), for as long as it takes.
  Receivers deduplicate by `Refundflow-Event-Id` (also the payload's `id`).
- In order per refund: only the oldest undelivered event of a refund is sent to a
  subscriber, so refund.completed never overtakes refund.approved.
- One lane per subscriber: a subscriber that is down or slow delays only its own events.
- One dispatcher delivers at a time (a Postgres advisory lock); other workers stand by.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
import asyncpg
import structlog

from activities.outbox import NOTIFY_CHANNEL
from activities.signing import sign

SIGNATURE_HEADER = "Refundflow-Signature"
EVENT_ID_HEADER = "Refundflow-Event-Id"
EVENT_TYPE_HEADER = "Refundflow-Event-Type"
_LOCK_ID = 0x5246_4F42  # "RFOB": the dispatcher's advisory lock
log = structlog.get_logger("refundflow.outbox")


class OutboxDispatcher:
    def __init__(
        self,
        pool: asyncpg.Pool,
        session: aiohttp.ClientSession,
        *,
        batch: int = 200,
        concurrency: int = 8,
        max_backoff_s: int = 300,
        idle_wait_s: float = 1.0,
        timeout_s: float = 10.0,
    ) -> None:
        self._pool = pool
        self._session = session
        self._batch = batch
        self._concurrency = concurrency
        """Deliveries in flight at once, per subscriber."""
        self._max_backoff_s = max_backoff_s
        self._idle_wait_s = idle_wait_s
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. A background loop: it must outlive database restarts
        and anything else, so every failure is logged and the loop starts again."""
        while not stop.is_set():
            try:
                await self._run_connected(stop)
            except Exception as err:
                log.warning("outbox_dispatcher_retrying", error=f"{type(err).__name__}: {err}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        lanes: dict[str, tuple[asyncio.Task[None], asyncio.Event]] = {}
        async with self._pool.acquire() as conn:
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
            leader = False
            try:
                while not stop.is_set():
                    if not leader:
                        leader = bool(
                            await conn.fetchval("SELECT pg_try_advisory_lock($1)", _LOCK_ID)
                        )
                    if leader:
                        await self._open_lanes(lanes, stop)
                        for _, lane_wake in lanes.values():
                            lane_wake.set()
                    wake.clear()
                    await _first_of(wake, stop, seconds=self._idle_wait_s)
            finally:
                for task, _ in lanes.values():
                    task.cancel()
                await asyncio.gather(*(task for task, _ in lanes.values()), return_exceptions=True)
                if not conn.is_closed():
                    await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
                    if leader:
                        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)

    async def _open_lanes(
        self, lanes: dict[str, tuple[asyncio.Task[None], asyncio.Event]], stop: asyncio.Event
    ) -> None:
        """One delivery lane per active subscriber: a subscriber that is down or slow only
        ever delays its own events, never another subscriber's."""
        names = await self._pool.fetch("SELECT name FROM refundflow.subscribers WHERE active")
        for row in names:
            name = row["name"]
            task = lanes.get(name, (None, None))[0]
            if task is None or task.done():
                lane_wake = asyncio.Event()
                lanes[name] = (asyncio.create_task(self._lane(name, lane_wake, stop)), lane_wake)

    async def _lane(self, subscriber: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
        limit = asyncio.Semaphore(self._concurrency)
        while not stop.is_set():
            try:
                if await self.deliver_due(subscriber, limit):
                    continue  # more may be due right away
            except Exception as err:  # the lane must survive; the next round retries
                log.warning("outbox_lane_error", subscriber=subscriber, error=str(err))
            wake.clear()
            await _first_of(wake, stop, seconds=self._idle_wait_s)

    async def deliver_due(self, subscriber: str, limit: asyncio.Semaphore) -> int:
        """One round for one subscriber: send each refund's oldest undelivered event, when
        due. Returns how many were attempted."""
        rows = await self._pool.fetch(
            """
            SELECT head.event_id, head.subscriber, head.attempts, o.type,
                   o.payload::text AS body, s.url, s.secret
            FROM (
                SELECT DISTINCT ON (refund_id) event_id, subscriber, attempts, next_try_at
                FROM refundflow.deliveries
                WHERE delivered_at IS NULL AND subscriber = $1
                ORDER BY refund_id, seq
            ) head
            JOIN refundflow.outbox o ON o.event_id = head.event_id
            JOIN refundflow.subscribers s ON s.name = head.subscriber AND s.active
            WHERE head.next_try_at <= now()
            ORDER BY head.next_try_at
            LIMIT $2
            """,
            subscriber,
            self._batch,
        )
        await asyncio.gather(*(self._deliver(dict(row), limit) for row in rows))
        return len(rows)

    async def _deliver(self, row: dict[str, Any], limit: asyncio.Semaphore) -> None:
        body: str = row["body"]
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(row["secret"], body),
            EVENT_ID_HEADER: row["event_id"],
            EVENT_TYPE_HEADER: row["type"],
        }
        error: str | None = None
        async with limit:
            try:
                async with self._session.post(
                    row["url"], data=body.encode(), headers=headers, timeout=self._timeout
                ) as response:
                    if not 200 <= response.status < 300:
                        error = f"HTTP {response.status}"
            except (aiohttp.ClientError, TimeoutError) as err:
                error = f"{type(err).__name__}: {err}"[:500]
        if error is None:
            await self._pool.execute(
                "UPDATE refundflow.deliveries SET delivered_at = now(), attempts = attempts + 1,"
                " last_error = NULL WHERE event_id = $1 AND subscriber = $2",
                row["event_id"],
                row["subscriber"],
            )
            return
        backoff = min(2 ** row["attempts"], self._max_backoff_s)
        log.info(
            "outbox_delivery_failed",
            event_id=row["event_id"],
            subscriber=row["subscriber"],
            attempt=row["attempts"] + 1,
            retry_in_s=backoff,
            error=error,
        )
        await self._pool.execute(
            "UPDATE refundflow.deliveries SET attempts = attempts + 1, last_error = $3,"
            " next_try_at = now() + make_interval(secs => $4) WHERE event_id = $1"
            " AND subscriber = $2",
            row["event_id"],
            row["subscriber"],
            error,
            float(backoff),
        )


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    """Wait until any of `events` is set, or `seconds` pass."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
