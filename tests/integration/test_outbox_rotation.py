"""Secret rotation with overlap: after `subscribers rotate-secret`, every delivery is signed
with the new and the old secret (`t=...,v1=new,v1=old`, as Stripe does) until the overlap
ends, so a receiver switches secrets at its own pace without refusing an event.

Real stack: the worker's dispatcher signs; a real HTTP subscriber on 127.0.0.1 verifies
with the README's receiver code, which accepts any valid v1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import eventually, run_cli
from tests.integration.loopback_subscriber import LoopbackSubscriber, loopback_subscriber
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


async def cli_json(stack: DevStack, *args: str) -> Any:
    code, out, err = await run_cli(stack.env(), *args, "--json")
    assert code == 0, err
    return json.loads(out)


async def signatures_of_a_new_refund(
    refunds: RefundClient, sandbox: Sandbox, sub: LoopbackSubscriber, amount: int
) -> list[int]:
    """A refund's four events, all taken by `sub` with the secret it holds now (a refused
    signature would be retried and never arrive); how many v1 each one carried."""
    status = await refunds.request(make_request(await sandbox.order(amount=amount)))

    async def taken() -> list[int]:
        return sub.accepted(status.refund_id)

    await eventually(taken, lambda seqs: len(seqs) == 4, timeout=60)
    return [s.signature.count("v1=") for s in sub.seen if s.refund_id == status.refund_id]


async def test_the_old_secret_keeps_signing_for_the_overlap_then_stops(
    refunds_v2: RefundClient, sandbox: Sandbox, db: asyncpg.Pool, stack: DevStack
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db)
        first_secret = sub.secret
        assert await signatures_of_a_new_refund(refunds_v2, sandbox, sub, 2500) == [1] * 4

        rotated = await cli_json(stack, "subscribers", "rotate-secret", name, "--overlap", "1h")
        second_secret = rotated["secret"]
        assert second_secret.startswith("whsec_") and second_secret != first_secret
        until = datetime.fromisoformat(rotated["previous_secret_valid_until"])
        assert abs(until - (datetime.now(UTC) + timedelta(hours=1))) < timedelta(minutes=1)
        # The receiver still on the old secret takes every event: two v1 each.
        assert await signatures_of_a_new_refund(refunds_v2, sandbox, sub, 2501) == [2] * 4
        # It switches whenever it likes within the overlap: the new secret works too.
        sub.secret = second_secret
        assert await signatures_of_a_new_refund(refunds_v2, sandbox, sub, 2502) == [2] * 4
        assert sub.forged_seen == 0
        listed = await cli_json(stack, "subscribers", "list")
        (mine,) = [s for s in listed if s["name"] == name]
        assert mine["previous_secret_valid_until"] == rotated["previous_secret_valid_until"]

        # A second graceful rotation within the overlap would stop the first secret at once,
        # breaking what the first promised (a trial): refused, nothing changed.
        kept = await db.fetchrow("SELECT * FROM refundflow.subscribers WHERE name = $1", name)
        code, out, err = await run_cli(
            stack.env(), "subscribers", "rotate-secret", name, "--overlap", "1h"
        )
        assert (code, out) == (1, ""), err  # refused by its state, not a usage mistake
        assert "previous secret still signs deliveries until" in err and "--overlap 0" in err
        assert kept == await db.fetchrow(
            "SELECT * FROM refundflow.subscribers WHERE name = $1", name
        )

        # No overlap: the replaced secret stops at once, and only the new one signs.
        rotated = await cli_json(stack, "subscribers", "rotate-secret", name, "--overlap", "0")
        assert rotated["previous_secret_valid_until"] is None
        sub.secret = third_secret = rotated["secret"]
        assert await signatures_of_a_new_refund(refunds_v2, sandbox, sub, 2503) == [1] * 4
        last = sub.seen[-1]
        with pytest.raises(sub.forged):
            sub.verify(second_secret, last.signature, last.body)

        # Re-adding an active subscriber rotates too, never at once: 24 h of overlap.
        readded = await cli_json(stack, "subscribers", "add", name, sub.url)
        until = datetime.fromisoformat(readded["previous_secret_valid_until"])
        assert abs(until - (datetime.now(UTC) + timedelta(hours=24))) < timedelta(minutes=1)
        # Adding it again within that overlap would stop the secret it promised: refused.
        code, out, err = await run_cli(stack.env(), "subscribers", "add", name, sub.url)
        assert (code, out) == (1, "") and "adding it again now gives it a new secret" in err

        # Secrets are shown once, when made: never listed, never logged.
        code, text, _ = await run_cli(stack.env(), "subscribers", "list")
        assert code == 0 and "secret rotated: the previous one also signs until" in text
        shown = [first_secret, second_secret, third_secret, readded["secret"]]
        listing = json.dumps(await cli_json(stack, "subscribers", "list")) + text
        logs = "".join(p.read_text(errors="replace") for p in stack.logs.glob("*.log"))
        assert "outbox_dispatcher_leading" in logs  # the right log: the check is not vacuous
        for secret in shown:
            assert secret not in listing and secret not in logs

        # Unless asked for no overlap (a leaked secret): then both old ones stop at once.
        leaked = await cli_json(stack, "subscribers", "add", name, sub.url, "--overlap", "0")
        assert leaked["previous_secret_valid_until"] is None
        sub.secret = leaked["secret"]
        assert await signatures_of_a_new_refund(refunds_v2, sandbox, sub, 2504) == [1] * 4


async def test_a_rotation_that_cannot_be_made_changes_nothing(
    db: asyncpg.Pool, stack: DevStack
) -> None:
    async with loopback_subscriber(db) as sub:
        name = await sub.subscribe(db)

        async def stored() -> dict[str, Any]:
            row = await db.fetchrow(
                "SELECT secret, previous_secret, previous_secret_until"
                " FROM refundflow.subscribers WHERE name = $1",
                name,
            )
            return dict(row)

        before = await stored()
        refusals = {
            (name, "--overlap", "8d"): (2, "the overlap must be between 0 and 7 days, got 8 days"),
            (name, "--overlap", "soon"): (2, "expected a duration such as 90s, 30m, 24h or 7d"),
            ("no-such-subscriber",): (1, "no subscriber named no-such-subscriber"),  # not found
        }
        for args, (status_code, said) in refusals.items():
            code, out, err = await run_cli(stack.env(), "subscribers", "rotate-secret", *args)
            assert code == status_code and out == "" and said in err, (args, err)
            assert err.count("\n") == 1
        assert await stored() == before
