"""The `refundflow` CLI as support staff use it: real processes against the real stack."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import asyncpg
import pytest

from activities.pg_store import MIGRATIONS
from client.refund_client import RefundClient
from client.settings import Settings
from tests.integration.helpers import fresh_database, run_cli
from worker.devstack import DevStack, redact_url

pytestmark = pytest.mark.stack


def cli(stack: DevStack, *args: str) -> subprocess.CompletedProcess[str]:
    """`refundflow ARGS`, as the console script runs it."""
    return subprocess.run(
        [sys.executable, "-m", "worker.cli", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def cli_json(stack: DevStack, *args: str) -> Any:
    result = cli(stack, *args, "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_request_approve_status_and_ledger_from_the_command_line(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "12000", "--currency", "USD")
    assert order["captured_amount"] == 12000 and order["payment_reference"].startswith("pay_")

    def request_from(channel: str) -> Any:
        return cli_json(
            stack, "request", "--order", order["order_id"], "--amount", "12000",
            "--reason", "damaged", "--channel", channel,
        )  # fmt: skip

    requested = request_from("web")
    assert (requested["state"], requested["awaiting"]) == ("pending_review", "reviewer")
    refund_id = requested["refund_id"]
    # The same request again, from another channel: the same refund.
    assert request_from("support")["refund_id"] == refund_id

    # Without --as the CLI acted as alice, the dev directory's default member, so she
    # submitted it for the customer and may not approve it (four eyes): bob does.
    approved = cli(stack, "approve", refund_id, "--reviewer", "bob")
    assert approved.returncode == 0, approved.stderr
    assert "approved" in approved.stdout

    status = cli_json(stack, "status", refund_id)
    for _ in range(100):
        if status["state"] == "completed":
            break
        status = cli_json(stack, "status", refund_id)
    assert status["state"] == "completed"
    required = {
        "refund_id",
        "order_id",
        "state",
        "amount",
        "currency",
        "awaiting",
        "escalation_level",
        "policy_version",
        "timeline",
        "next_step",
        "eta",
        "message",
    }
    assert required <= status.keys()
    assert {"state", "at", "actor", "source", "reason"} <= status["timeline"][0].keys()
    # The order ledger the text shows, for scripts too (a trial found it only in the text).
    assert (status["order_ledger"]["refunded"], status["order_ledger"]["held"]) == (12000, 0)

    ledger = cli_json(stack, "sandbox", "refunds", "--order", order["order_id"])
    assert len(ledger) == 1
    assert ledger[0]["idempotency_key"] == f"{refund_id}:refund"
    assert {"id", "payment_reference", "amount", "status"} <= ledger[0].keys()

    listed = cli_json(stack, "list", "--order", order["order_id"])
    assert [r["refund_id"] for r in listed] == [refund_id]
    trail = cli_json(stack, "audit", refund_id)
    assert [r["to_state"] for r in trail] == [
        "pending_review",
        "approved",
        "refunding",
        "completed",
    ]


def request_args(**overrides: str) -> list[str]:
    """`request` with valid arguments, but for the ones a case gets wrong."""
    values = {"order": "ord_x", "amount": "100", "reason": "damaged", "channel": "web"}
    values.update(overrides)
    return ["request"] + [part for key, value in values.items() for part in (f"--{key}", value)]


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (request_args(order="ord_nope"), 2, "error: unknown order ord_nope"),
        (request_args(amount="0"), 2, "argument --amount: amount must be more than 0, got '0'"),
        (request_args(amount="12.50"), 2, "the currency's minor units"),
        (request_args(reason="bored"), 2, "unknown reason code 'bored'; the codes are damaged"),
        (request_args(channel="fax"), 2, "--channel: invalid choice: 'fax' (choose from 'web',"),
        (["status", "rf_000000000000000000000000"], 1, "error: no refund rf_0000"),
        (["approve", "rf_000000000000000000000000", "--reviewer", "bob"], 1, "error: no refund"),
        (["sandbox", "order", "--amount", "-5"], 2, "amount must be more than 0"),
    ],
)
def test_mistakes_are_one_clear_line_and_a_non_zero_exit(
    stack: DevStack, args: list[str], status: int, message: str
) -> None:
    result = cli(stack, *args)
    assert result.returncode == status, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_cli_without_a_stack_says_how_to_get_one(tmp_path: Any) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "REFUNDFLOW_HOME": str(tmp_path),
        "TEMPORAL_ADDRESS": "127.0.0.1:1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "client", "status", "rf_" + "0" * 24],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "refundflow dev" in result.stderr and "Traceback" not in result.stderr


def test_faults_are_set_shown_and_cleared_from_the_command_line(stack: DevStack) -> None:
    try:
        shown = cli_json(
            stack, "sandbox", "faults", "set", "payment.latency_ms=5", "orders.error_rate=0.25"
        )
        assert shown["payment"]["latency_ms"] == 5 and shown["orders"]["error_rate"] == 0.25
        assert cli_json(stack, "sandbox", "faults", "show")["payment"]["latency_ms"] == 5
        human = cli(stack, "sandbox", "faults", "show")
        assert "latency_ms=5" in human.stdout and "error_rate=0.25" in human.stdout
        bad = cli(stack, "sandbox", "faults", "set", "payment.nonsense=1")
        assert bad.returncode == 2 and "unknown fault 'payment.nonsense'" in bad.stderr
        worse = cli(stack, "sandbox", "faults", "set", "payment.error_rate=2")
        assert worse.returncode == 2 and "less than or equal to 1" in worse.stderr
    finally:
        cleared = cli_json(stack, "sandbox", "faults", "clear")
    assert cleared["payment"]["latency_ms"] == 0 and cleared["orders"]["error_rate"] == 0


def test_a_slow_sandbox_is_called_slow_not_stopped(stack: DevStack) -> None:
    try:
        cli_json(stack, "sandbox", "faults", "set", "orders.latency_ms=9000")
        slow = cli(stack, "sandbox", "order", "--amount", "3000")
    finally:
        cli_json(stack, "sandbox", "faults", "clear")
    assert slow.returncode == 1 and "Traceback" not in slow.stderr
    assert "no answer within" in slow.stderr and "did not answer in time" in slow.stderr
    assert "is `refundflow dev` running" not in slow.stderr


def test_actions_answer_in_json_too(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "9000", "--customer", "cust_77")
    requested = cli_json(
        stack, "request", "--order", order["order_id"], "--amount", "9000",
        "--reason", "wrong_item", "--channel", "app", "--requested-by", "cust_77",
    )  # fmt: skip
    rejected = cli_json(
        stack, "reject", requested["refund_id"], "--reviewer", "bob", "--reason", "not wrong"
    )
    assert (rejected["state"], rejected["cancel_reason"]) == ("cancelled", "rejected")
    assert rejected["timeline"][-1]["actor"] == "bob"


def test_a_first_of_two_approvals_says_a_second_person_must_approve(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "150000", "--customer", "cust_78")
    requested = cli_json(
        stack, "request", "--order", order["order_id"], "--amount", "150000",
        "--reason", "damaged", "--requested-by", "cust_78",
    )  # fmt: skip
    refund_id = requested["refund_id"]
    assert requested["action_by"] == "two different reviewers with the finance role or above"
    # Above 500.00 USD the approver says what they checked; without it nothing changes.
    unchecked = cli(stack, "--as", "fang", "approve", refund_id)
    assert unchecked.returncode == 1
    assert "evidence is required above 500.00 USD: say what you checked" in unchecked.stderr
    first = cli(stack, "--as", "fang", "approve", refund_id, "--evidence", "photos, ticket 9")
    assert first.returncode == 0, first.stderr
    assert "evidence   fang: photos, ticket 9" in first.stdout
    assert "note: fang's approval is recorded; a second, different person must approve" in (
        first.stderr
    )
    assert "who acts   a second reviewer with the finance role or above, not fang" in first.stdout
    again = cli(stack, "--as", "fang", "approve", refund_id)
    assert again.returncode == 1 and "fang has already approved this refund" in again.stderr
    second = cli_json(stack, "--as", "mei", "approve", refund_id)  # fang's evidence serves
    assert second["state"] in {"approved", "refunding", "completed"}
    # Answered as recorded by then (paid, as a rule): fang's evidence is in its timeline.
    [by_fang] = [e for e in second["timeline"] if e["actor"] == "fang"]
    assert by_fang["reason"].endswith("; evidence checked: photos, ticket 9")


def test_list_filters_by_customer_and_says_when_more_match(stack: DevStack) -> None:
    made = []
    for amount in ("1000", "2000"):
        order = cli_json(stack, "sandbox", "order", "--amount", amount, "--customer", "cust_79")
        made.append(
            cli_json(
                stack, "request", "--order", order["order_id"], "--amount", amount,
                "--reason", "damaged", "--requested-by", "cust_79",
            )["refund_id"]
        )  # fmt: skip
    theirs = cli_json(stack, "list", "--customer", "cust_79")
    assert sorted(r["refund_id"] for r in theirs) == sorted(made)
    one = cli(stack, "list", "--customer", "cust_79", "--limit", "1", "--json")
    assert one.returncode == 0 and [r["refund_id"] for r in json.loads(one.stdout)] == made[1:]
    assert json.loads(one.stderr)["note"].startswith("the newest 1 shown; more match")
    everything = cli(stack, "list", "--customer", "cust_79", "--limit", "2")
    assert everything.returncode == 0 and "more match" not in everything.stderr


def test_request_no_wait_answers_once_started_and_status_shows_what_follows(
    stack: DevStack,
) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "12000", "--currency", "USD")
    asked = [
        "request", "--order", order["order_id"], "--amount", "12000", "--reason", "damaged",
        "--channel", "web", "--no-wait",
    ]  # fmt: skip
    started = cli_json(stack, *asked)
    assert (started["state"], started["awaiting"]) == ("pending_review", "nothing")
    assert [e["event"] for e in started["timeline"]] == ["requested"]
    # The refund goes on to its first step (a reviewer, for 120.00) without the caller.
    for _ in range(100):
        status = cli_json(stack, "status", started["refund_id"])
        if status["awaiting"] == "reviewer":
            break
    assert (status["state"], status["awaiting"]) == ("pending_review", "reviewer")
    text = cli(stack, *asked)
    assert text.returncode == 0 and "already" in text.stdout + text.stderr


async def test_only_migrate_migrates_and_it_says_what_it_applied(stack: DevStack) -> None:
    """Clients (the CLI's direct reads, RefundClient) never change the schema; `refundflow migrate`
    brings a database up to date once and says so."""
    assert stack.database_url is not None
    async with fresh_database(stack.database_url, "migrate") as url:
        env = {**stack.env(), "DATABASE_URL": url}
        # `list` asks the API now; `anomalies`, an operator's read, still reads Postgres.
        code, _, err = await run_cli(env, "anomalies")
        assert code == 1 and "run `refundflow migrate`" in err, err
        client = await RefundClient.connect(Settings.from_env(env))
        try:
            await client.store()
        finally:
            await client.close()
        conn = await asyncpg.connect(url)
        try:
            assert not await conn.fetchval("SELECT to_regnamespace('refundflow') IS NOT NULL")
        finally:
            await conn.close()

        code, out, err = await run_cli(env, "migrate", "--json")
        assert code == 0, err
        assert json.loads(out)["applied"] == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
        code, out, err = await run_cli(env, "migrate")
        assert (code, out.strip()) == (0, f"{redact_url(url)} is up to date; nothing to apply")
        code, out, err = await run_cli(env, "anomalies", "--json")
        assert (code, json.loads(out)) == (0, []), err


def test_a_retry_refused_again_exits_3_and_says_an_operator_is_still_needed(
    stack: DevStack,
) -> None:
    """A trial's script read a retry the provider refused again as done: it exited 0."""
    try:
        cli_json(stack, "sandbox", "faults", "set", "payment.refuse=expired_card")
        order = cli_json(stack, "sandbox", "order", "--amount", "3000")
        requested = cli_json(
            stack, "request", "--order", order["order_id"], "--amount", "3000", "--reason",
            "damaged",
        )  # fmt: skip
        refund_id = requested["refund_id"]
        for _ in range(100):
            if cli_json(stack, "status", refund_id)["awaiting"] == "operator":
                break
        # Without --operator the dev stack's default member acts, and is told so.
        unnamed = cli(stack, "operator", "retry", refund_id)
        assert unnamed.returncode == 1 and "only the operator role may" in unnamed.stderr
        assert "(you acted as alice, this dev stack's default" in unnamed.stderr, unnamed
        again = cli(stack, "operator", "retry", refund_id, "--operator", "omar")
        assert again.returncode == 3, again
        assert "note: the retry did not pay; the refund still waits for an operator" in (
            again.stderr
        )
    finally:
        cli_json(stack, "sandbox", "faults", "clear")
    paid = cli(stack, "operator", "retry", refund_id, "--operator", "omar")
    assert paid.returncode == 0 and "completed" in paid.stdout, paid


def test_the_sandbox_refunds_of_an_order_it_does_not_have_are_a_mistake(stack: DevStack) -> None:
    """A trial: "no provider refunds" of ord_nope, exit 0."""
    nope = cli(stack, "sandbox", "refunds", "--order", "ord_nope")
    assert nope.returncode == 2 and "no order ord_nope" in nope.stderr, nope
    fresh = cli_json(stack, "sandbox", "order", "--amount", "500")
    none = cli(stack, "sandbox", "refunds", "--order", fresh["order_id"])
    assert none.returncode == 0 and none.stdout.strip() == (
        f"no provider refunds for order {fresh['order_id']}"
    ), none
