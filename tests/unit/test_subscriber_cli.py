"""`refundflow subscribers ...` as parsed and shown: what each argument accepts, and the
line `subscribers list` gives parked events."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta

import pytest

from client import render
from client.cli import subscribers as cli
from client.cli.commands import CLIENT_COMMANDS, build_parser
from workflows.read_models import AddedSubscriber, Delivery, OutboxEvent, Subscriber


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(CLIENT_COMMANDS).parse_args(["subscribers", *argv])


@pytest.mark.parametrize(
    ("text", "seconds"), [("0", 0), ("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800)]
)
def test_durations(text: str, seconds: int) -> None:
    assert cli.duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "1.5h", "-1h", "24 h", "1w", "h"])
def test_what_is_not_a_duration(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="expected a duration such as"):
        cli.duration(text)


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [("--max-age", "0", "between 1s and 30d"), ("--max-age", "31d", "between 1s and 30d"),
     ("--max-attempts", "0", "from 1 to 100,000"),
     ("--max-attempts", "100001", "from 1 to 100,000")],
)  # fmt: skip
def test_a_budget_the_store_would_refuse_is_refused_as_the_command_is_read(
    option: str, value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # A trial: `--max-age 0` was refused only after connecting, without "(see --help)".
    with pytest.raises(SystemExit):
        parse("add", "crm", "https://crm.example.com/hook", option, value)
    assert said in capsys.readouterr().err


def test_the_commands_budget_bounds_are_the_stores() -> None:
    from activities import subscribers as store

    assert (cli.MOST_ATTEMPTS, cli.LONGEST_AGE) == (store.MAX_ATTEMPTS_LIMIT, store.MAX_AGE_LIMIT)
    edges = parse("add", "crm", "https://x.example/h", "--max-age", "30d", "--max-attempts", "1")
    assert (edges.max_age, edges.max_attempts) == (timedelta(days=30), 1)
    # The store still refuses them for any other caller (the API, a script of ours).
    store.check_budget(1, timedelta(days=30))
    with pytest.raises(store.SubscriberRefused, match="between 1 and 100000, got 0"):
        store.check_budget(0, None)
    with pytest.raises(store.SubscriberRefused, match="between 1 s and 30 days, got 31 days"):
        store.check_budget(None, timedelta(days=31))


@pytest.mark.parametrize(
    "url",
    ["https://crm.example.com/hook", "http://127.0.0.1:9000/", "http://[::1]:9/x",
     "http://localhost/x", "https://10.0.0.5/x"],
)  # fmt: skip
def test_urls_events_may_go_to(url: str) -> None:
    assert cli.subscriber_url(url) == url


@pytest.mark.parametrize(
    ("url", "said"),
    [
        ("http://crm.example.com/hook", "must use https"),
        ("http://127.0.0.2/x", "must use https"),
        ("http://localhost.example.com/x", "must use https"),
        ("http://10.0.0.5/x", "must use https"),
        ("https://a:b@crm.example.com/x", "must not carry credentials"),
        ("ftp://example", "expected an http(s) URL"),
        ("https://", "expected an http(s) URL"),
        ("http://[::1/x", "expected an http(s) URL"),
        ("http://127.0.0.1:99999/", "its port, if any, from 1 to 65535"),
        ("http://127.0.0.1:0/", "its port, if any, from 1 to 65535"),
        ("http://127.0.0.1:http/", "its port, if any, from 1 to 65535"),
        ("https://exa mple.com/", "a URL has no spaces"),
        ("https://example.com/a b", "a URL has no spaces"),
    ],
)
def test_urls_refused(url: str, said: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(said)):
        cli.subscriber_url(url)


def test_replay_takes_one_event_or_all_parked() -> None:
    one = parse("replay", "crm", "--event", "rf_" + "a" * 24 + ":3")
    assert (one.event, one.all_parked) == ("rf_" + "a" * 24 + ":3", False)
    assert parse("replay", "crm", "--all-parked").event is None
    for wrong in (["replay", "crm"], ["replay", "crm", "--event", "rf_x:1", "--all-parked"]):
        with pytest.raises(SystemExit):
            parse(*wrong)


def test_rotation_overlaps_a_day_unless_told() -> None:
    assert parse("rotate-secret", "crm").overlap == timedelta(hours=24)
    assert parse("rotate-secret", "crm", "--overlap", "0").overlap == timedelta(0)


def listed(
    parked: int, oldest: datetime | None, event: str | None, **failing: object
) -> Subscriber:
    return Subscriber(
        name="crm", url="https://crm.example.com/", active=True,
        created_at=datetime(2025, 1, 1, tzinfo=UTC), pending=0, delivered=5, parked=parked,
        oldest_parked_at=oldest, oldest_parked_event=event, max_attempts=300,
        max_age_seconds=86400, previous_secret_valid_until=None, **failing,
    )  # fmt: skip


def test_the_parked_line() -> None:
    oldest = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert cli.parked_line(listed(3, oldest, "rf_x:2")) == (
        "3 parked events, oldest parked 2025-03-04T05:06:07Z (rf_x:2):"
        " `refundflow subscribers replay crm --all-parked` sends them again"
    )
    assert cli.parked_line(listed(1, oldest, "rf_x:2")).startswith("1 parked event, oldest")
    why = listed(1, oldest, "rf_x:2", oldest_parked_error="HTTP 410")
    assert "(rf_x:2, HTTP 410): `refundflow subscribers replay" in cli.parked_line(why)
    assert cli.parked_line(listed(0, None, None)) == ""


def test_the_failing_line() -> None:
    assert cli.failing_line(listed(0, None, None)) == ""
    failing = listed(0, None, None, last_error="HTTP 503", last_error_attempts=4)
    assert cli.failing_line(failing) == (
        "last error: HTTP 503 (an event still retried, tried 4 times)"
    )
    once = listed(0, None, None, last_error="timed out after 10 s", last_error_attempts=1)
    assert cli.failing_line(once).endswith("tried 1 time)")


def test_events_behind_a_failing_one_say_they_wait_for_it() -> None:
    """The ordering promise: a refund's later events wait while an earlier one is retried,
    so their own next try (already past) is not what happens next."""

    def event(seq: int, crm: Delivery, inbox: Delivery) -> OutboxEvent:
        return OutboxEvent(
            event_id=f"rf_x:{seq}", seq=seq, type="refund.approved",
            occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
            payload={"notification": {"body": "Your refund ..."}}, deliveries=[crm, inbox],
        )  # fmt: skip

    def delivery(
        subscriber: str, attempts: int, error: str | None = None, done: bool = False
    ) -> Delivery:
        return Delivery(
            subscriber=subscriber, attempts=attempts, last_error=error,
            delivered_at="2025-01-01T00:00:02+00:00" if done else None,
            next_try_at="2025-01-01T00:00:09+00:00",
        )  # fmt: skip

    rows = [
        event(1, delivery("crm", 4, "HTTP 500"), delivery("inbox", 1, done=True)),
        event(2, delivery("crm", 0), delivery("inbox", 1, done=True)),
        event(3, delivery("crm", 0), delivery("inbox", 0)),
    ]
    text = render.events(rows)
    assert "-> crm                      pending, next try" in text and "(HTTP 500)" in text
    assert text.count("waiting behind rf_x:1") == 2  # crm's events 2 and 3
    assert "-> inbox                    pending, next try" in text  # its own head: event 3


@pytest.mark.parametrize(
    "argv",
    [("remove", "customer-notifications"), ("rotate-secret", "customer-notifications"),
     ("add", "customer-notifications", "http://127.0.0.1:8088/notifications/v1/inbox")],
)  # fmt: skip
async def test_the_customer_channel_is_not_changed_by_hand(argv: tuple[str, ...]) -> None:
    """A trial removed it (every customer's notices stopped, silently, until the worker
    restarted) and added it back with a new secret the inbox refused. Refused before any
    store is reached: no stack is needed to see it."""
    from client.cli.arguments import UserError

    with pytest.raises(UserError, match="REFUNDFLOW_CUSTOMER_NOTIFY_URL"):
        await cli.handle(parse(*argv))


def test_adding_a_subscriber_again_says_its_secret_was_replaced() -> None:
    """Re-adding a name read like a first subscription while its secret changed (a trial)."""
    now = datetime(2026, 11, 28, 9, tzinfo=UTC)
    first = AddedSubscriber(
        name="crm", url="https://crm.example/e", secret="whsec_new", active=True,
        created_at=now, max_attempts=300, max_age_seconds=86400,
    )  # fmt: skip
    assert cli._added(first).splitlines()[0] == "subscribed crm -> https://crm.example/e"
    again = cli._added(
        first.model_copy(update={"previous_secret_valid_until": now, "subscribed_before": True})
    )
    lines = again.splitlines()
    assert lines[0] == "crm was subscribed before: now -> https://crm.example/e, with a new secret"
    assert lines[-1].startswith("  the previous secret also signs deliveries until 2026-11-28")


def test_removing_says_what_it_dropped_even_when_nothing() -> None:
    """README: `subscribers remove` says how many undelivered events it dropped; a trial's
    subscriber with none read only "no longer receives events"."""
    from client.cli.subscribers import _removed

    said = _removed({"name": "loc", "dropped_pending": 0, "dropped_parked": 0})
    assert (
        said
        == "loc: no longer receives events; nothing undelivered was dropped (0 pending, 0 parked)"
    )
    said = _removed({"name": "crm", "dropped_pending": 22, "dropped_parked": 1})
    assert said.endswith("dropped what it had not received: 22 pending, 1 parked")
