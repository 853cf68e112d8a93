"""`refundflow subscribers ...`: add, list, remove, rotate-secret, replay.

The grammar is in commands.add_subscribers; this module holds what it needs beyond the
shared argument types (URLs subscribers may have, durations, event ids), the handler and how
the results read. The rules themselves (https, budgets, overlap, what can be replayed) are
activities.subscribers': refused there with one sentence, before anything is stored.
"""

from __future__ import annotations

import argparse
import re
from datetime import datetime, timedelta
from typing import Any

from client.cli.arguments import EXIT_OK, UserError
from client.cli.backends import with_store
from client.cli.output import emit
from client.errors import RefundflowError
from workflows import vocabulary
from workflows.read_models import AddedSubscriber, ReplayedDeliveries, Subscriber

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
EVENT_ID_PATTERN = r"rf_[0-9a-f]{24}:[0-9]+"


def subscriber_url(value: str) -> str:
    """A URL events may be sent to (activities.subscribers.check_subscriber_url)."""
    from activities.subscribers import SubscriberRefused, check_subscriber_url

    try:
        return check_subscriber_url(value)
    except SubscriberRefused as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def duration(value: str) -> timedelta:
    """90s, 30m, 24h, 7d, or 0."""
    found = re.fullmatch(r"([0-9]{1,7})([smhd])", value)
    if value == "0":
        return timedelta(0)
    if not found:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90s, 30m, 24h or 7d, got {value!r}"
        )
    return timedelta(seconds=int(found.group(1)) * _UNITS[found.group(2)])


# The store's bounds of a delivery budget (activities.subscribers.check_budget, migration
# 0007), said here too so that a command refuses them before it connects, with its --help.
MOST_ATTEMPTS = 100_000
LONGEST_AGE = timedelta(days=30)


def age_budget(value: str) -> timedelta:
    """--max-age: a duration from 1 s to 30 days."""
    age = duration(value)
    if not timedelta(seconds=1) <= age <= LONGEST_AGE:
        raise argparse.ArgumentTypeError(f"expected between 1s and 30d, got {value!r}")
    return age


def attempts_budget(value: str) -> int:
    """--max-attempts: a whole number from 1 to 100,000."""
    if not re.fullmatch(r"[0-9]{1,7}", value) or not 1 <= int(value) <= MOST_ATTEMPTS:
        raise argparse.ArgumentTypeError(
            f"expected a whole number from 1 to {MOST_ATTEMPTS:,}, got {value!r}"
        )
    return int(value)


def event_id(value: str) -> str:
    if not re.fullmatch(EVENT_ID_PATTERN, value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not an event id (they look like rf_<24 hex digits>:<seq>;"
            " `refundflow events rf_…` lists a refund's)"
        )
    return value


async def handle(args: argparse.Namespace) -> int:
    from activities import subscribers

    command = args.subscribers_command
    if command in ("add", "remove", "rotate-secret") and args.name == vocabulary.CUSTOMER_CHANNEL:
        raise UserError(
            f"{args.name} is the customers' notification channel: the worker configures it at"
            " every start from REFUNDFLOW_CUSTOMER_NOTIFY_URL and REFUNDFLOW_CUSTOMER_NOTIFY_SECRET"
            " (change those and restart the worker). By hand, removing it stops every"
            " customer's notices and a new secret is one their inbox refuses"
        )

    async def act(store: Any) -> Any:
        pool = store.pool
        try:
            if command == "add":
                return await subscribers.add_subscriber(
                    pool,
                    args.name,
                    args.url,
                    max_attempts=args.max_attempts,
                    max_age=args.max_age,
                    overlap=args.overlap,
                )
            if command == "rotate-secret":
                return await subscribers.rotate_secret(pool, args.name, args.overlap)
            if command == "replay":
                return await subscribers.replay_parked(pool, args.name, args.event)
            if command == "remove":
                removed = await subscribers.deactivate_subscriber(pool, args.name)
                if removed is None:
                    meant = await subscribers.meant_subscriber(pool, args.name)
                    raise RefundflowError(f"no subscriber named {args.name}{meant}")
                return {
                    "name": args.name,
                    "active": False,
                    "removed_before": not removed.removed_now,
                    "dropped_pending": removed.dropped_pending,
                    "dropped_parked": removed.dropped_parked,
                }
            return await subscribers.list_subscribers(pool)
        except subscribers.SubscriberMissing as err:  # not found, or not in that state: 1
            raise RefundflowError(str(err)) from None
        except subscribers.SubscriberRefused as err:  # a usage mistake: 2
            raise UserError(str(err)) from None

    emit(args, await with_store(act), _HUMAN[command])
    return EXIT_OK


def _span(seconds: float) -> str:
    """86400 -> 24h, 5400 -> 90m: the largest unit that divides it."""
    whole = int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if whole and whole % size == 0 and (unit != "d" or whole > 86400):
            return f"{whole // size}{unit}"
    return f"{whole}s"


def _utc(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def _budget(max_attempts: int, max_age_seconds: int) -> str:
    return (
        f"an event is parked after {max_attempts} failed attempts or"
        f" {_span(max_age_seconds)} from its first attempt"
    )


def _overlap(until: datetime | None) -> str:
    if until is None:
        return "  the previous secret no longer signs deliveries"
    return (
        f"  the previous secret also signs deliveries until {_utc(until)}:"
        " switch your receiver to the new one before then"
    )


def _added(data: AddedSubscriber) -> str:
    lines = [
        f"{data.name} was subscribed before: now -> {data.url}, with a new secret"
        if data.subscribed_before
        else f"subscribed {data.name} -> {data.url}",
        f"  {_budget(data.max_attempts, data.max_age_seconds)}",
        f"  signing secret (shown once; verify Refundflow-Signature with it): {data.secret}",
    ]
    if data.previous_secret_valid_until is not None:
        lines.append(_overlap(data.previous_secret_valid_until))
    return "\n".join(lines)


def _rotated(data: AddedSubscriber) -> str:
    return (
        f"{data.name}: new signing secret (shown once): {data.secret}\n"
        f"{_overlap(data.previous_secret_valid_until)}"
    )


def _removed(data: dict[str, Any]) -> str:
    if data.get("removed_before"):
        return f"{data['name']}: was removed before; it receives no events"
    pending, parked = data["dropped_pending"], data["dropped_parked"]
    dropped = (  # said either way, as README says it is (a trial met the line without it)
        f"; dropped what it had not received: {pending} pending, {parked} parked"
        if pending or parked
        else "; nothing undelivered was dropped (0 pending, 0 parked)"
    )
    return f"{data['name']}: no longer receives events{dropped}"


def parked_line(row: Subscriber) -> str:
    """What `subscribers list` says of a subscriber's dead letters, if any."""
    if not row.parked or row.oldest_parked_at is None:
        return ""
    plural = "event" if row.parked == 1 else "events"
    return (
        f"{row.parked} parked {plural}, oldest parked {_utc(row.oldest_parked_at)}"
        f" ({row.oldest_parked_event}"
        + (f", {row.oldest_parked_error}" if row.oldest_parked_error else "")
        + f"): `refundflow subscribers replay {row.name}"
        " --all-parked` sends them again"
    )


def failing_line(row: Subscriber) -> str:
    """What `subscribers list` says of deliveries failing now, if any: the receiver's answer
    to the undelivered event tried most often."""
    if not row.last_error:
        return ""
    tried = row.last_error_attempts or 1
    return (
        f"last error: {row.last_error} (an event still retried, tried"
        f" {tried} time{'' if tried == 1 else 's'})"
    )


def _listing(rows: list[Subscriber]) -> str:
    if not rows:
        return "no subscribers"
    lines = []
    for r in rows:
        lines.append(f"{r.name:<24} {'active ' if r.active else 'removed'} {r.url}")
        lines.append(f"    pending {r.pending}, delivered {r.delivered}, parked {r.parked}")
        if parked := parked_line(r):
            lines.append(f"    {parked}")
        if failing := failing_line(r):
            lines.append(f"    {failing}")
        if r.active:
            lines.append(f"    {_budget(r.max_attempts, r.max_age_seconds)}")
        if r.previous_secret_valid_until is not None:
            until = _utc(r.previous_secret_valid_until)
            lines.append(f"    secret rotated: the previous one also signs until {until}")
    return "\n".join(lines)


def _replayed(data: ReplayedDeliveries) -> str:
    if not data.event_ids:
        return f"{data.subscriber}: no parked events to replay"
    plural = "event" if len(data.event_ids) == 1 else "events"
    return f"{data.subscriber}: {len(data.event_ids)} parked {plural} queued again: " + ", ".join(
        data.event_ids
    )


_HUMAN: dict[str, Any] = {
    "add": _added,
    "rotate-secret": _rotated,
    "replay": _replayed,
    "remove": _removed,
    "list": _listing,
}
