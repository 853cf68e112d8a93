"""Subscribers of the outbox's events, managed by operators (`refundflow subscribers`):
their URL (https, or plain http to this machine only), their signing secret and its rotation
with overlap, their delivery budget, their removal, and the replay of deliveries that were
parked once that budget ran out. The events and their delivery: activities.outbox and
activities.dispatcher.
"""

from __future__ import annotations

import difflib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, NoReturn
from urllib.parse import urlsplit

import asyncpg

from activities.outbox import NOTIFY_CHANNEL
from workflows.read_models import AddedSubscriber, ReplayedDeliveries, Subscriber

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
"""Where plain http may go: the traffic never leaves the machine."""
DEFAULT_OVERLAP = timedelta(hours=24)
MAX_OVERLAP = timedelta(days=7)
MAX_ATTEMPTS_LIMIT = 100_000
MAX_AGE_LIMIT = timedelta(days=30)
"""Bounds of the budget (migration 0007 checks them too): a dead letter within a month."""


class SubscriberRefused(ValueError):
    """A subscriber change or replay that cannot be made; nothing was changed. Its message
    is one sentence for the operator."""


class SubscriberMissing(SubscriberRefused):
    """What it acts on is not there, or not in the state it needs (not a usage mistake)."""


class SubscriberBusy(SubscriberMissing):
    """Its state refuses the change now: a rotation's overlap still runs (refused as the
    state is, not as a usage mistake: a trial read exit 2 where README says refused is 1)."""


def check_subscriber_url(url: str) -> str:
    """`url` if events may be sent there: https, or http to a loopback host (a receiver on
    this machine, as in development). Plain http elsewhere would expose every event, and
    its signature, to the network. Credentials in a URL would be listed and logged."""
    expected = f"expected an http(s) URL (its port, if any, from 1 to 65535), got {url!r}"
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:  # a malformed IPv6 host, say, or port 99999
        raise SubscriberRefused(expected) from None
    if parts.scheme not in ("http", "https") or not host or port == 0:
        raise SubscriberRefused(expected)
    if any(character.isspace() for character in url):  # urlsplit keeps them in the host
        raise SubscriberRefused(f"a URL has no spaces (write them %20), got {url!r}")
    if parts.username is not None or parts.password is not None:
        raise SubscriberRefused("subscriber URLs must not carry credentials (user:pass@)")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise SubscriberRefused(
            f"subscriber URLs must use https (plain http only to 127.0.0.1, ::1 or"
            f" localhost), got {url!r}"
        )
    return url


def _span(amount: timedelta) -> str:
    seconds = amount.total_seconds()
    return f"{seconds / 86400:g} days" if seconds >= 86400 else f"{seconds:g} s"


def check_budget(max_attempts: int | None, max_age: timedelta | None) -> None:
    if max_attempts is not None and not 1 <= max_attempts <= MAX_ATTEMPTS_LIMIT:
        raise SubscriberRefused(
            f"the attempts budget must be between 1 and {MAX_ATTEMPTS_LIMIT}, got {max_attempts}"
        )
    if max_age is not None and not timedelta(seconds=1) <= max_age <= MAX_AGE_LIMIT:
        raise SubscriberRefused(
            f"the age budget must be between 1 s and 30 days, got {_span(max_age)}"
        )


_SUBSCRIBER_COLUMNS = (
    "name, url, secret, active, created_at, max_attempts, max_age_seconds,"
    " CASE WHEN previous_secret_until > now() THEN previous_secret_until END"
    " AS previous_secret_valid_until"
)


def new_secret() -> str:
    return "whsec_" + secrets.token_hex(24)


async def add_subscriber(
    pool: asyncpg.Pool,
    name: str,
    url: str,
    *,
    max_attempts: int | None = None,
    max_age: timedelta | None = None,
    overlap: timedelta = DEFAULT_OVERLAP,
) -> AddedSubscriber:
    """Subscribe `url` to events from now on, with a new signing secret (shown once) and
    the delivery budget given (the defaults of migration 0007 otherwise).

    Adding an existing name again points it at `url`, resumes it, sets the budget given
    and rotates its secret: an active subscriber's old secret keeps signing for `overlap`
    (none: it stops now), as with rotate_secret, so its receiver does not lose events
    meanwhile. Refused, as a rotation is, while an earlier overlap still runs.
    """
    check_subscriber_url(url)
    check_budget(max_attempts, max_age)
    _check_overlap(overlap)
    async with pool.acquire() as conn, conn.transaction():
        # One add of a name at a time: two at once both passed the overlap check, and the
        # second stopped the secret the first had promised to keep (a review).
        await conn.execute("SELECT 1 FROM refundflow.subscribers WHERE name = $1 FOR UPDATE", name)
        if overlap > timedelta(0):  # none: both old secrets stop now, as rotate_secret's
            await _refuse_during_overlap(conn, name, adding=True)
        created = await conn.fetchval(  # xmax is 0 only for a row this statement inserted
            "INSERT INTO refundflow.subscribers (name, url, secret) VALUES ($1, $2, $3)"
            " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url, secret = EXCLUDED.secret,"
            " active = true,"
            " previous_secret = CASE WHEN subscribers.active AND $5 THEN subscribers.secret END,"
            " previous_secret_until = CASE WHEN subscribers.active AND $5"
            " THEN now() + $4::interval END"
            " RETURNING xmax = 0",
            name,
            url,
            new_secret(),
            overlap,
            overlap > timedelta(0),
        )
        row = await conn.fetchrow(
            "UPDATE refundflow.subscribers SET max_attempts = coalesce($2, max_attempts),"
            " max_age_seconds = coalesce($3, max_age_seconds)"
            f" WHERE name = $1 RETURNING {_SUBSCRIBER_COLUMNS}",
            name,
            max_attempts,
            None if max_age is None else int(max_age.total_seconds()),
        )
    return AddedSubscriber.model_validate({**dict(row), "subscribed_before": not created})


async def rotate_secret(
    pool: asyncpg.Pool, name: str, overlap: timedelta = DEFAULT_OVERLAP
) -> AddedSubscriber:
    """Give `name` a new signing secret (returned, shown once). The current one keeps
    signing deliveries, beside the new one, for `overlap` (none: it stops now), so at most
    two are ever valid. While an earlier rotation's overlap runs, only `overlap` 0 is taken
    (both old secrets stop now: a leaked secret): a second graceful rotation would stop the
    secret whose overlap was promised without a word (a trial)."""
    _check_overlap(overlap)
    keep = overlap > timedelta(0)
    row = await pool.fetchrow(
        "UPDATE refundflow.subscribers SET previous_secret = CASE WHEN $3::boolean THEN secret END,"
        " previous_secret_until = CASE WHEN $3::boolean THEN now() + $4::interval END,"
        " secret = $2"
        " WHERE name = $1 AND active"
        " AND NOT ($3 AND coalesce(previous_secret_until > now(), false))"
        f" RETURNING {_SUBSCRIBER_COLUMNS}",
        name,
        new_secret(),
        keep,
        overlap,
    )
    if row is None:
        await _refuse_during_overlap(pool, name)
        await _refuse_unknown_or_removed(pool, name)
    return AddedSubscriber.model_validate(dict(row))


def _check_overlap(overlap: timedelta) -> None:
    if not timedelta(0) <= overlap <= MAX_OVERLAP:
        raise SubscriberRefused(f"the overlap must be between 0 and 7 days, got {_span(overlap)}")


async def _refuse_during_overlap(db: Any, name: str, adding: bool = False) -> None:
    """Raise when `name`'s previous secret still signs beside its current one: a new
    secret now (a rotation, or adding the name again) would stop it at once."""
    until = await db.fetchval(
        "SELECT previous_secret_until FROM refundflow.subscribers"
        " WHERE name = $1 AND active AND previous_secret_until > now()",
        name,
    )
    if until is None:
        return
    moment = until.isoformat(timespec="seconds").replace("+00:00", "Z")
    promised = (
        f"{name}'s previous secret still signs deliveries until {moment}, as the last"
        " rotation promised; "
    )
    if adding:
        raise SubscriberBusy(
            promised + "adding it again now gives it a new secret and would stop that one at"
            " once. Add it again once receivers use the current secret, or with --overlap 0"
            " to stop both old secrets now (a leaked secret)"
        )
    raise SubscriberBusy(
        promised + "rotating again now would stop it at once. Rotate once receivers use the"
        " current secret, or with --overlap 0 to stop both old secrets now (a leaked secret)"
    )


async def _refuse_unknown_or_removed(db: Any, name: str) -> NoReturn:
    """Raise the reason `name` cannot be acted on: it does not exist, or it was removed."""
    active = await db.fetchval("SELECT active FROM refundflow.subscribers WHERE name = $1", name)
    if active is None:
        raise SubscriberMissing(f"no subscriber named {name}{await meant_subscriber(db, name)}")
    if not active:
        raise SubscriberMissing(f"subscriber {name} was removed; add it again first")
    raise SubscriberMissing(f"subscriber {name} changed meanwhile; try again")


async def meant_subscriber(db: Any, name: str) -> str:
    """'; did you mean crm?' for a name one typo from an active subscriber's; '' else."""
    names = await db.fetch("SELECT name FROM refundflow.subscribers WHERE active")
    close = difflib.get_close_matches(name, [r["name"] for r in names], n=1, cutoff=0.75)
    return f"; did you mean {close[0]}?" if close else ""


async def ensure_configured_subscriber(
    pool: asyncpg.Pool, name: str, url: str, secret: str | None
) -> None:
    """A subscriber the deployment configures (the customer channel): its url and, when
    configured, its secret follow the configuration; otherwise the stored secret is kept,
    so restarting a worker never changes it. An operator's removal is respected.

    Its url is not held to check_subscriber_url: the deployment chose it (docker-compose
    reaches the sandbox over its private network by plain http)."""
    await pool.execute(
        "INSERT INTO refundflow.subscribers (name, url, secret) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO UPDATE SET url = EXCLUDED.url,"
        " secret = CASE WHEN $4 THEN EXCLUDED.secret ELSE subscribers.secret END",
        name,
        url,
        secret or new_secret(),
        bool(secret),
    )


async def list_subscribers(pool: asyncpg.Pool) -> list[Subscriber]:
    """Subscribers with their backlog, parked deliveries and budget; secrets are never
    listed (only until when a replaced one still signs)."""
    rows = await pool.fetch(
        """
        SELECT s.name, s.url, s.active, s.created_at,
            count(d.event_id) FILTER (WHERE d.delivered_at IS NULL AND d.parked_at IS NULL)
                AS pending,
            count(d.event_id) FILTER (WHERE d.delivered_at IS NOT NULL) AS delivered,
            count(d.event_id) FILTER (WHERE d.parked_at IS NOT NULL) AS parked,
            min(d.parked_at) AS oldest_parked_at,
            (array_agg(d.event_id ORDER BY d.parked_at, d.event_id)
                FILTER (WHERE d.parked_at IS NOT NULL))[1] AS oldest_parked_event,
            (array_agg(d.last_error ORDER BY d.parked_at, d.event_id)
                FILTER (WHERE d.parked_at IS NOT NULL))[1] AS oldest_parked_error,
            -- Failing now: of the events still retried, the one tried most often.
            (array_agg(d.last_error ORDER BY d.attempts DESC, d.event_id) FILTER (WHERE
                d.delivered_at IS NULL AND d.parked_at IS NULL AND d.last_error IS NOT NULL))[1]
                AS last_error,
            max(d.attempts) FILTER (WHERE
                d.delivered_at IS NULL AND d.parked_at IS NULL AND d.last_error IS NOT NULL)
                AS last_error_attempts,
            s.max_attempts, s.max_age_seconds,
            CASE WHEN s.previous_secret_until > now() THEN s.previous_secret_until END
                AS previous_secret_valid_until
        FROM refundflow.subscribers s
        LEFT JOIN refundflow.deliveries d ON d.subscriber = s.name
        GROUP BY s.name ORDER BY s.name
        """
    )
    return [Subscriber.model_validate(dict(r)) for r in rows]


@dataclass(frozen=True)
class Removal:
    removed_now: bool
    """False: it had been removed before (nothing changed)."""
    dropped_pending: int = 0
    dropped_parked: int = 0
    """Deliveries it had not received, dropped with it (a trial: dropped without a word)."""


async def deactivate_subscriber(pool: asyncpg.Pool, name: str) -> Removal | None:
    """Stop deliveries to `name`; what it had not received yet (parked included) is
    dropped, not kept for later (subscribers receive events from the moment they are
    added), and no secret of its signs anything. None: no such subscriber."""
    async with pool.acquire() as conn, conn.transaction():
        was_active = await conn.fetchval(
            "SELECT active FROM refundflow.subscribers WHERE name = $1 FOR UPDATE", name
        )
        if not was_active:
            return None if was_active is None else Removal(removed_now=False)
        await conn.execute(
            "UPDATE refundflow.subscribers SET active = false, previous_secret = NULL,"
            " previous_secret_until = NULL WHERE name = $1",
            name,
        )
        dropped = await conn.fetchrow(
            "WITH gone AS (DELETE FROM refundflow.deliveries WHERE subscriber = $1"
            " AND delivered_at IS NULL RETURNING parked_at)"
            " SELECT count(*) FILTER (WHERE parked_at IS NULL) AS pending,"
            " count(*) FILTER (WHERE parked_at IS NOT NULL) AS parked FROM gone",
            name,
        )
    return Removal(True, dropped["pending"], dropped["parked"])


async def replay_parked(
    pool: asyncpg.Pool, name: str, event_id: str | None = None
) -> ReplayedDeliveries:
    """Queue `name`'s parked deliveries again (only `event_id`, if given), each with a fresh
    budget. A replayed event goes before its refund's events not yet delivered, after
    those already delivered. Refused, changing nothing, for an unknown or removed
    subscriber, and for an event it has no parked delivery of."""
    async with pool.acquire() as conn, conn.transaction():
        active = await conn.fetchval(
            "SELECT active FROM refundflow.subscribers WHERE name = $1 FOR UPDATE", name
        )
        if not active:
            await _refuse_unknown_or_removed(conn, name)
        if event_id is not None:
            await _check_parked(conn, name, event_id)
        rows = await conn.fetch(
            "UPDATE refundflow.deliveries SET parked_at = NULL, attempts = 0,"
            " first_tried_at = NULL, next_try_at = now()"
            " WHERE subscriber = $1 AND parked_at IS NOT NULL"
            " AND ($2::text IS NULL OR event_id = $2) RETURNING event_id, refund_id, seq",
            name,
            event_id,
        )
        if rows:
            await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")
    ordered = sorted(rows, key=lambda r: (r["refund_id"], r["seq"]))
    return ReplayedDeliveries(subscriber=name, event_ids=[r["event_id"] for r in ordered])


async def _check_parked(conn: asyncpg.Connection, name: str, event_id: str) -> None:
    row = await conn.fetchrow(
        "SELECT delivered_at, parked_at FROM refundflow.deliveries"
        " WHERE subscriber = $1 AND event_id = $2",
        name,
        event_id,
    )
    if row is None:
        raise SubscriberMissing(f"subscriber {name} has no event {event_id}")
    if row["delivered_at"] is not None:
        raise SubscriberMissing(
            f"event {event_id} is not parked: {name} received it at"
            f" {row['delivered_at'].isoformat(timespec='seconds')}"
        )
    if row["parked_at"] is None:
        raise SubscriberMissing(f"event {event_id} is not parked: it is still being delivered")
