"""Delivers outbox events to subscribers: signed, at least once, in order per refund until an
event is parked, and with one dispatcher at a time.

- Signed: `Refundflow-Signature: t=<unix s>,v1=<HMAC-SHA256(secret, "<t>.<body>")>`. While
  a subscriber's secret is rotated (`subscribers rotate-secret --overlap`), one v1 per valid
  secret, the new one first; a receiver accepts the delivery if any v1 matches its secret.
- At least once: a delivery counts only on a 2xx answer. Anything else is a failed attempt,
  retried with exponential backoff (1 s, 2 s, 4 s ... at most 5 min): an error, a timeout,
  and a 3xx too, since redirects are not followed (a signed event goes to the URL the
  operator registered, not wherever a Location header points; a subscriber that moved is
  added again with its new URL). Receivers deduplicate by `Refundflow-Event-Id` (also the
  payload's `id`).
- A budget per subscriber: `max_attempts` attempts, and `max_age_seconds` from an event's
  first attempt (defaults 300 and 24 h, migration 0007). A delivery that fails past either
  is parked: a dead letter, recorded as a `subscriber_event_parked` finding (the alert,
  `refundflow anomalies`) in the same statement, shown by `subscribers list`, and queued
  again by `subscribers replay`.
- The ordering promise: per refund and subscriber, events arrive in order (only the oldest
  undelivered, unparked event of a refund is sent), until an event is parked; then the
  refund's next events go on without it, so one poison event never blocks a refund. A
  replayed event arrives after the later ones already delivered: order by `seq` if it
  matters to you.
- One lane per subscriber: a subscriber that is down or slow delays only its own events.
- One dispatcher delivers at a time: the holder of a Postgres advisory lock, taken by a
  connection of its own and checked again at least every `idle_wait_s`; when that
  connection dies or no longer holds the lock, the dispatcher stops and stands by until it
  leads again. Deliveries are claimed on that same connection, so a dispatcher whose lock
  connection died claims nothing more even before it notices (a session lock lives exactly
  as long as its connection), and the claim leases the delivery for longer than an attempt
  may take, so the new leader does not send again what the old one still has in flight.
- In chunks: `concurrency` (8) deliveries of a subscriber are leased in one statement and
  sent at once; the next chunk waits for the slowest of them (at most `timeout_s`). Those
  taken are recorded in one statement, each failure in its own (an attempt that raises is a
  failure too). A chunk cut short (the worker stopping) is sent again when its lease ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import time
from typing import Any

import aiohttp
import asyncpg
import structlog

from activities.delivery_errors import not_connected, one_line, refusal_text, start_of
from activities.delivery_sql import (
    CLAIM_SQL,
    DELIVERED_SQL,
    FAILED_SQL,
    HEADS_SQL,
    LOCK_ID,
    holds_lock_sql,
)
from activities.fair_pool import took_session_state
from activities.outbox import FINDINGS_RUN, NOTIFY_CHANNEL, PARKED_KIND
from activities.ports import error_text
from activities.signing import sign
from activities.tracking_links import TrackingLinks

SIGNATURE_HEADER = "Refundflow-Signature"
EVENT_ID_HEADER = "Refundflow-Event-Id"
EVENT_TYPE_HEADER = "Refundflow-Event-Type"
log = structlog.get_logger("refundflow.outbox")
Lanes = dict[str, tuple[asyncio.Task[None], asyncio.Event]]


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
        lease_margin_s: float = 30.0,
        tracking: TrackingLinks | None = None,
        customer_channel: str = "",
    ) -> None:
        self._pool = pool
        self._session = session
        self._batch = batch
        """Heads read per round, per subscriber."""
        self._concurrency = concurrency
        """Deliveries in flight at once, per subscriber: how many one claim leases."""
        self._max_backoff_s = max_backoff_s
        self._idle_wait_s = idle_wait_s
        self._timeout_s = timeout_s
        self._lease_s = timeout_s + lease_margin_s
        """How long a claimed delivery is left to its dispatcher: longer than an attempt can
        take, so that only a dispatcher that died mid-attempt leaves it to another."""
        self._tracking = tracking
        self._customer_channel = customer_channel
        """The subscriber that is the customer: its notifications carry a tracking link."""
        self._lock_conn: asyncpg.Connection | None = None
        """The connection holding the lock for us, while we lead: claims are made on it."""
        self._lock_conn_turn = asyncio.Lock()
        """One statement at a time on the lock connection (asyncpg refuses two at once)."""

    @property
    def is_leader(self) -> bool:
        return self._lock_conn is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until `stop` is set. A background loop: it must outlive database restarts
        and anything else, so every failure is logged and the loop starts again."""
        while not stop.is_set():
            try:
                await self._run_connected(stop)
            except Exception as err:
                log.warning("outbox_dispatcher_retrying", error=error_text(err))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=2)

    async def _run_connected(self, stop: asyncio.Event) -> None:
        """Rounds on one lock connection: lead (open the lanes, wake them) while it holds
        the lock, stand by otherwise. An error on it (it died) ends the rounds: `run`
        starts again on a new connection, which must win the lock again to lead."""
        wake = asyncio.Event()

        def on_notify(*_: object) -> None:
            wake.set()

        lanes: Lanes = {}
        async with self._pool.acquire() as conn:
            took_session_state(conn)  # a LISTEN and the lock: reset fully when given back
            await conn.add_listener(NOTIFY_CHANNEL, on_notify)
            next_check = -math.inf
            try:
                while not stop.is_set():
                    # The lock and the subscribers are asked again once per idle wait, not
                    # on every event's NOTIFY (two statements per event, under load).
                    if time.monotonic() >= next_check:
                        next_check = time.monotonic() + self._idle_wait_s
                        await self._lead_or_stand_by(conn, lanes, stop)
                    for _, lane_wake in lanes.values():
                        lane_wake.set()
                    wake.clear()
                    until_check = max(next_check - time.monotonic(), 0.0)
                    await _first_of(wake, stop, seconds=until_check)
            finally:
                was_leader = self._lock_conn is not None
                if was_leader and not stop.is_set():  # the lock connection failed
                    log.warning("outbox_dispatcher_lost_the_lock")
                # Stopping: the worker must exit promptly, and what was in flight is retried
                # when its lease ends. Otherwise: let it finish, to send nothing twice.
                grace = 0 if stop.is_set() else self._timeout_s + 1
                await self._close_lanes(lanes, grace_s=grace)
                await _release(conn, on_notify, was_leader)

    async def _lead_or_stand_by(
        self, conn: asyncpg.Connection, lanes: Lanes, stop: asyncio.Event
    ) -> None:
        """Lead (open a lane per active subscriber) while `conn` holds the lock; stop
        leading when it no longer does."""
        if await self._hold_lock(conn):
            if self._lock_conn is None:
                log.info("outbox_dispatcher_leading")
            self._lock_conn = conn
            await self._open_lanes(lanes, stop)
        elif self._lock_conn is not None:
            log.warning("outbox_dispatcher_lost_the_lock")
            await self._close_lanes(lanes, grace_s=self._timeout_s + 1)

    async def _hold_lock(self, conn: asyncpg.Connection) -> bool:
        """Whether `conn` holds the lock now: it still does, or it just took it. Asked every
        idle wait, because a lock dies with its connection without anyone being told. (CASE,
        not OR: the try must not run when the lock is held, since it would stack.)"""
        async with self._lock_conn_turn:
            held = await conn.fetchval(
                f"SELECT CASE WHEN {holds_lock_sql('pg_backend_pid()')} THEN true"
                f" ELSE pg_try_advisory_lock({LOCK_ID}) END"
            )
        return bool(held)

    async def _open_lanes(self, lanes: Lanes, stop: asyncio.Event) -> None:
        """One delivery lane per active subscriber: a subscriber that is down or slow only
        ever delays its own events, never another subscriber's."""
        names = await self._pool.fetch("SELECT name FROM refundflow.subscribers WHERE active")
        for row in names:
            name = row["name"]
            task = lanes.get(name, (None, None))[0]
            if task is None or task.done():
                lane_wake = asyncio.Event()
                lanes[name] = (asyncio.create_task(self._lane(name, lane_wake, stop)), lane_wake)

    async def _close_lanes(self, lanes: Lanes, grace_s: float) -> None:
        """Stop leading: lanes claim nothing more and end after their round, so attempts in
        flight (claimed while we led) finish and are recorded rather than left to the
        lease. Lanes still busy after `grace_s` are cancelled."""
        self._lock_conn = None
        for _, lane_wake in lanes.values():
            lane_wake.set()
        tasks = [task for task, _ in lanes.values()]
        lanes.clear()
        if not tasks:
            return
        late = set(tasks)
        if grace_s > 0:
            _, late = await asyncio.wait(tasks, timeout=grace_s)
        for task in late:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _lane(self, subscriber: str, wake: asyncio.Event, stop: asyncio.Event) -> None:
        while not stop.is_set() and self._lock_conn is not None:
            try:
                if await self.deliver_due(subscriber):
                    continue  # more may be due right away
            except Exception as err:  # the lane must survive; the next round retries
                log.warning("outbox_lane_error", subscriber=subscriber, error=str(err))
            wake.clear()
            await _first_of(wake, stop, seconds=self._idle_wait_s)

    async def deliver_due(self, subscriber: str) -> int:
        """One round for one subscriber: each refund's oldest undelivered, unparked event,
        when due, sent `concurrency` at a time. Returns how many were claimed and tried."""
        heads = await self._pool.fetch(HEADS_SQL, subscriber, self._batch)
        event_ids = [row["event_id"] for row in heads]
        tried = 0
        for start in range(0, len(event_ids), self._concurrency):
            chunk = event_ids[start : start + self._concurrency]
            tried += await self._deliver_chunk(subscriber, chunk)
        return tried

    async def _deliver_chunk(self, subscriber: str, event_ids: list[str]) -> int:
        """Lease the chunk in one statement, send it at once, record the deliveries taken in
        one statement and each failure in its own (a chunk waits for its slowest attempt,
        at most `timeout_s`)."""
        claimed = await self._claim(event_ids, subscriber)
        outcomes = await asyncio.gather(
            *(self._attempt(dict(row)) for row in claimed), return_exceptions=True
        )
        errors = [_outcome_text(outcome) for outcome in outcomes]
        tried = list(zip(claimed, errors, strict=True))
        delivered = [row["event_id"] for row, error in tried if error is None]
        if delivered:
            await self._pool.execute(DELIVERED_SQL, subscriber, delivered)
        for row, error in tried:
            if error is None:
                continue
            try:
                await self._record_failure(row["event_id"], subscriber, row["attempts"], error)
            except Exception as err:  # the others still count; this one's lease runs out
                log.warning("outbox_failure_not_recorded", event_id=row["event_id"], error=str(err))
        return len(claimed)

    async def _claim(self, event_ids: list[str], subscriber: str) -> list[asyncpg.Record]:
        """Lease those of `event_ids` still due, on the lock connection: the claim is fenced
        by the lock itself. A dead lock connection (or one given back: we stopped leading)
        claims nothing; the round that follows notices and stands by."""
        conn = self._lock_conn
        if conn is None:
            return []
        try:
            async with self._lock_conn_turn:
                rows: list[asyncpg.Record] = await conn.fetch(
                    CLAIM_SQL, event_ids, subscriber, self._lease_s
                )
                return rows
        except (asyncpg.PostgresConnectionError, asyncpg.InterfaceError, OSError) as err:
            log.warning("outbox_claim_failed", subscriber=subscriber, error=error_text(err))
            return []

    async def _attempt(self, row: dict[str, Any]) -> str | None:
        """POST the event once; None if the subscriber took it (2xx), else why not."""
        body: str = self._with_tracking_link(row)
        secrets = [row["secret"], *([row["previous_secret"]] if row["previous_secret"] else [])]
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(secrets, body),
            EVENT_ID_HEADER: row["event_id"],
            EVENT_TYPE_HEADER: row["type"],
        }
        try:
            async with self._session.post(
                row["url"],
                data=body.encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout_s),
                allow_redirects=False,
            ) as response:
                if 300 <= response.status < 400:
                    return f"HTTP {response.status}: redirect not followed"
                if not 200 <= response.status < 300:
                    # Not the customer channel's: it may echo the signed tracking link.
                    echoes_link = row["subscriber"] == self._customer_channel
                    said = b"" if echoes_link else await start_of(response)
                    return refusal_text(response.status, said)
        except aiohttp.ClientConnectorError as err:
            return one_line(not_connected(err, self._timeout_s))[:500]
        except (aiohttp.ClientError, TimeoutError) as err:
            return one_line(error_text(err, self._timeout_s))[:500]
        return None

    def _with_tracking_link(self, row: dict[str, Any]) -> str:
        """The event as stored; for the customer, with their link to the tracking page
        (signed now: the secret stays out of workflow history and the stored outbox)."""
        body: str = row["body"]
        if self._tracking is None or row["subscriber"] != self._customer_channel:
            return body
        event = json.loads(body)
        event["notification"]["tracking_url"] = self._tracking.url(
            event["refund_id"], lang=event.get("locale")
        )
        return json.dumps(event)

    async def _record_failure(
        self, event_id: str, subscriber: str, attempts: int, error: str
    ) -> None:
        backoff = min(2**attempts, self._max_backoff_s)
        row = await self._pool.fetchrow(
            FAILED_SQL,
            event_id,
            subscriber,
            error,
            float(backoff),
            FINDINGS_RUN,
            PARKED_KIND,
        )
        if row is not None and row["parked"]:
            log.warning(
                "outbox_event_parked",
                event_id=event_id,
                subscriber=subscriber,
                attempts=row["attempts"],
                error=error,
            )
            return
        log.info(
            "outbox_delivery_failed",
            event_id=event_id,
            subscriber=subscriber,
            attempt=attempts + 1,
            retry_in_s=backoff,
            error=error,
        )


def _outcome_text(outcome: str | BaseException | None) -> str | None:
    """An attempt's outcome as `_attempt` words it; an attempt that raised (a bug, or an
    error the HTTP client does not class as its own) is a failed attempt, recorded as
    such, never a reason to leave the chunk's other outcomes unrecorded."""
    if isinstance(outcome, Exception):
        log.warning("outbox_attempt_raised", error=error_text(outcome))
        return one_line(f"attempt failed: {error_text(outcome)}")[:500]
    if isinstance(outcome, BaseException):
        raise outcome  # cancelled: the lane is stopping
    return outcome


async def _release(conn: asyncpg.Connection, on_notify: Any, was_leader: bool) -> None:
    """Tidy the lock connection if it still works. A dead one is left to the pool (asyncpg
    detaches it, so even is_closed() raises), and holds no lock anyway."""
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        if conn.is_closed():
            return
        await conn.remove_listener(NOTIFY_CHANNEL, on_notify)
        if was_leader:
            await conn.execute(f"SELECT pg_advisory_unlock({LOCK_ID})")


async def _first_of(*events: asyncio.Event, seconds: float) -> None:
    """Wait until any of `events` is set, or `seconds` pass."""
    waiters = [asyncio.create_task(e.wait()) for e in events]
    try:
        await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
