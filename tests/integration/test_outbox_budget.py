"""An outbox that cannot wedge: a subscriber's budget (attempts, age) parks an event it keeps
refusing, with a finding, and the refund's next events go on; `subscribers replay` sends it
again; a redirect is a failed attempt; subscriber URLs are https except to this machine.

Real stack: the worker's own dispatcher delivers to a real HTTP subscriber on 127.0.0.1.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import asyncpg
import pytest

from activities import outbox, subscribers
from activities.pg_store import PostgresRefundStore
from client import render_findings
from client.refund_client import RefundClient
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import eventually, run_cli
from tests.integration.loopback_subscriber import deliveries, loopback_subscriber
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from workflows.vocabulary import DISPATCHER_RUN

pytestmark = pytest.mark.stack
FIRST = "refund.pending_review"


def parked_first_then_rest_delivered(rows: list[asyncpg.Record]) -> bool:
    return (
        len(rows) == 4
        and rows[0]["parked_at"] is not None
        and all(r["delivered_at"] is not None for r in rows[1:])
    )


async def parked_finding(db: asyncpg.Pool, subscriber: str, event_id: str) -> asyncpg.Record:
    row: asyncpg.Record = await db.fetchrow(
        "SELECT run_id, kind, refund_id, order_id, details, action FROM refundflow.findings"
        " WHERE kind = $1 AND details->>'subscriber' = $2 AND details->>'event_id' = $3",
        outbox.PARKED_KIND,
        subscriber,
        event_id,
    )
    return row


async def cli_json(stack: DevStack, *args: str) -> object:
    code, out, err = await run_cli(stack.env(), *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def test_a_refused_event_is_parked_with_a_finding_and_the_next_events_go_on(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db, max_attempts=3)
        sub.answer = lambda event: 410 if event["type"] == FIRST else 204  # 4xx, for ever
        order = await sandbox.order(amount=2100)
        status = await refunds_v2.request(make_request(order))
        rows = await eventually(
            lambda: deliveries(db, status.refund_id, name), parked_first_then_rest_delivered
        )
        first = rows[0]["event_id"]
        assert (rows[0]["attempts"], rows[0]["last_error"]) == (3, "HTTP 410")
        assert rows[0]["delivered_at"] is None and sub.tries(first) == 3
        # Later events waited while the first was retried, then went on, in their order.
        assert sub.accepted(status.refund_id) == [r["seq"] for r in rows[1:]]

        # The alert: a finding, recorded with the parking, that `anomalies` lists.
        finding = await parked_finding(db, name, first)
        assert finding is not None
        assert (finding["refund_id"], finding["order_id"]) == (status.refund_id, order["order_id"])
        assert (finding["action"], finding["run_id"]) == ("escalated", outbox.FINDINGS_RUN)
        details = json.loads(finding["details"])
        assert (details["attempts"], details["last_error"]) == (3, "HTTP 410")
        assert details["type"] == FIRST
        parked = await parked_anomalies(stack, status.refund_id)
        assert [(a["details"]["event_id"], a["open"]) for a in parked] == [(first, True)]

        # `subscribers list`: a clear line for people, the same facts in --json.
        listed = await cli_json(stack, "subscribers", "list")
        assert isinstance(listed, list)
        (mine,) = [s for s in listed if s["name"] == name]
        assert (mine["parked"], mine["oldest_parked_event"], mine["pending"]) == (1, first, 0)
        assert mine["oldest_parked_at"] is not None and mine["max_attempts"] == 3
        # Parked: its error shows with it; nothing else is failing now.
        assert (mine["oldest_parked_error"], mine["last_error"]) == ("HTTP 410", None)
        code, text, _ = await run_cli(stack.env(), "subscribers", "list")
        assert code == 0 and "1 parked event, oldest parked " in text and first in text
        assert f"({first}, HTTP 410): `refundflow subscribers replay" in text

        # Fixed, the subscriber gets the parked event by replay: after the refund's others.
        sub.answer = lambda event: 204
        replayed = await cli_json(stack, "subscribers", "replay", name, "--event", first)
        assert replayed == {"subscriber": name, "event_ids": [first]}
        done = await eventually(
            lambda: deliveries(db, status.refund_id, name),
            lambda rows: all(r["delivered_at"] for r in rows),
        )
        assert done[0]["parked_at"] is None and done[0]["attempts"] == 1  # a fresh budget
        assert await parked_anomalies(stack, status.refund_id, "--open") == []  # stands no more
        assert sub.accepted(status.refund_id) == [r["seq"] for r in rows[1:]] + [rows[0]["seq"]]
        again = await cli_json(stack, "subscribers", "list")
        assert isinstance(again, list)
        assert [(s["parked"], s["last_error"]) for s in again if s["name"] == name] == [(0, None)]
        code, text, _ = await run_cli(stack.env(), "subscribers", "replay", name, "--all-parked")
        assert (code, text.strip()) == (0, f"{name}: no parked events to replay")


async def parked_anomalies(stack: DevStack, refund_id: str, *extra: str) -> list[Any]:
    """The parked-event findings `anomalies` lists for the refund."""
    found = await cli_json(stack, "anomalies", "--refund", refund_id, *extra)
    assert isinstance(found, list)
    return [a for a in found if a["kind"] == outbox.PARKED_KIND]


async def test_replay_refuses_a_wrong_subscriber_or_event_and_changes_nothing(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db, max_attempts=1)
        sub.answer = lambda event: 400 if event["type"] == FIRST else 204
        status = await refunds_v2.request(make_request(await sandbox.order(amount=2200)))
        rows = await eventually(
            lambda: deliveries(db, status.refund_id, name), parked_first_then_rest_delivered
        )
        parked, delivered = rows[0]["event_id"], rows[1]["event_id"]
        env = stack.env()
        # Not there, or not parked: refused (1); a malformed command line: a usage error (2).
        refusals = {
            ("no-such-subscriber", "--all-parked"): (1, "no subscriber named no-such-subscriber"),
            (name, "--event", f"{status.refund_id}:99"): (1, f"has no event {status.refund_id}:99"),
            (name, "--event", delivered): (1, f"event {delivered} is not parked: {name} received"),
            (name, "--event", "rf_1:2"): (2, "is not an event id"),
            (name,): (2, "one of the arguments --event --all-parked is required"),
            (name, "--event", parked, "--all-parked"): (2, "not allowed with argument"),
        }
        for args, (status_code, said) in refusals.items():
            code, out, err = await run_cli(env, "subscribers", "replay", *args)
            assert code == status_code and out == "" and said in err, (args, err)
            assert err.startswith("error: ") and err.count("\n") == 1, err
        code, out, err = await run_cli(env, "subscribers", "replay", "nope-sub", "--all-parked",
                                       "--json")  # fmt: skip
        assert code == 1 and json.loads(err) == {
            "error": "no subscriber named nope-sub", "exit_status": 1
        }  # fmt: skip
        after = await deliveries(db, status.refund_id, name)
        assert [dict(r) for r in after] == [dict(r) for r in rows]  # nothing changed

        replayed = await cli_json(stack, "subscribers", "replay", name, "--all-parked")
        assert replayed == {"subscriber": name, "event_ids": [parked]}
        # Removed: its backlog (the parked event too) is dropped, and replay says why not.
        removal = await subscribers.deactivate_subscriber(db, name)
        assert removal is not None and removal.removed_now
        code, _, err = await run_cli(env, "subscribers", "replay", name, "--all-parked")
        assert code == 1 and f"subscriber {name} was removed" in err


async def test_the_age_budget_parks_an_event_before_its_attempts_run_out(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db, max_attempts=1000, max_age=timedelta(seconds=3))
        sub.answer = lambda event: 503 if event["type"] == FIRST else 204
        status = await refunds_v2.request(make_request(await sandbox.order(amount=2300)))
        rows = await eventually(
            lambda: deliveries(db, status.refund_id, name), parked_first_then_rest_delivered
        )
        head = rows[0]
        assert 2 <= head["attempts"] < 10  # backoff 1 s, 2 s, 4 s: the age ran out first
        assert head["parked_at"] - head["first_tried_at"] >= timedelta(seconds=3)
        assert await parked_finding(db, name, head["event_id"]) is not None


async def test_a_redirect_is_a_failed_attempt_and_is_not_followed(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db, max_attempts=2)
        sub.answer = lambda event: 302 if event["type"] == FIRST else 204
        status = await refunds_v2.request(make_request(await sandbox.order(amount=2400)))
        rows = await eventually(
            lambda: deliveries(db, status.refund_id, name), parked_first_then_rest_delivered
        )
        assert rows[0]["last_error"] == "HTTP 302: redirect not followed"
        assert rows[0]["delivered_at"] is None and rows[0]["attempts"] == 2
        assert sub.redirect_followed == 0  # the Location was never requested


async def test_subscriber_urls_must_be_https_except_to_this_machine(
    db: asyncpg.Pool, stack: DevStack
) -> None:
    name = "https-rule"
    env = stack.env()

    async def stored() -> list[dict[str, object]]:
        rows = await db.fetch(
            "SELECT url, secret, active FROM refundflow.subscribers WHERE name = $1", name
        )
        return [dict(r) for r in rows]

    refused = {
        "http://crm.example.com/hook": "must use https (plain http only to 127.0.0.1, ::1 or",
        "http://127.0.0.2:9/x": "must use https",
        "http://localhost.evil.example/x": "must use https",
        "https://user:pw@crm.example.invalid/x": "must not carry credentials",
        "ftp://example": "expected an http(s) URL",
    }
    for url, said in refused.items():
        code, out, err = await run_cli(env, "subscribers", "add", name, url)
        assert code == 2 and out == "" and said in err, (url, err)
        assert err.count("\n") == 1 and "user:pw" not in err, err
    assert await stored() == []  # nothing stored
    with pytest.raises(subscribers.SubscriberRefused, match="must use https"):
        await subscribers.add_subscriber(db, name, "http://crm.example.com/hook")
    assert await stored() == []

    try:
        for url in ("http://localhost:9/x", "http://[::1]:9/x", "https://crm.example.invalid/x"):
            added = await subscribers.add_subscriber(db, name, url)
            assert added.url == url
            # A re-add rotates the secret with an overlap; a next re-add within it would be
            # refused (it would stop the secret the overlap promised): end it, as documented.
            await subscribers.rotate_secret(db, name, timedelta(0))
        before = await stored()
        # Re-adding with a plain-http URL elsewhere changes nothing, secret included.
        code, _, err = await run_cli(env, "subscribers", "add", name, "http://crm.example.com/")
        assert code == 2 and "must use https" in err
        # So does a budget out of bounds.
        budgets = {
            # Refused as the command is read, before it connects (see --help).
            ("--max-attempts", "0"): "expected a whole number from 1 to 100,000, got '0'",
            ("--max-attempts", "100001"): "from 1 to 100,000, got '100001'",
            ("--max-age", "31d"): "expected between 1s and 30d, got '31d'",
            ("--max-age", "0"): "expected between 1s and 30d, got '0'",
            ("--max-age", "soon"): "expected a duration such as 90s",
        }
        for budget, said in budgets.items():
            code, _, err = await run_cli(
                env, "subscribers", "add", name, "https://crm.example.invalid/x", *budget
            )
            assert code == 2 and said in err and err.count("\n") == 1, (budget, err)
        assert await stored() == before
    finally:
        await subscribers.deactivate_subscriber(db, name)


async def test_each_parked_event_is_first_found_when_it_was_parked(db: asyncpg.Pool) -> None:
    """A trial: a refund's events parked one after another all read "first found" at the
    first one's time; and a status note named reconciliation for the dispatcher's doing."""
    refund_id = f"rf_{unique_key('parked')[-24:]:0>24}"
    for seq, minutes_ago in ((1, 30), (2, 20)):
        await db.execute(
            "INSERT INTO refundflow.findings (run_id, kind, refund_id, order_id, details,"
            " action, created_at) VALUES ($1, 'subscriber_event_parked', $2, 'ord_p',"
            " jsonb_build_object('subscriber', 'crm', 'event_id', $3::text), 'escalated',"
            " now() - make_interval(mins => $4))",
            DISPATCHER_RUN, refund_id, f"{refund_id}:{seq}", minutes_ago,
        )  # fmt: skip
    found = await PostgresRefundStore(db).findings(refund_id=refund_id)
    assert len(found) == 2 and all(f.first_found_at == f.created_at for f in found), found
    assert render_findings.open_finding(found[0]).startswith(
        "note: the outbox dispatcher escalated"
    )
