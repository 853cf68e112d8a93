"""First-hour frictions (issue 17), as a newcomer meets them: asking again says it was asked
before, an unknown role is a usage error with a suggestion, policy amounts read as money,
one timestamp format in every listing, an unknown refund's inbox is not "empty"."""

from __future__ import annotations

import re

import pytest

from tests.integration.test_cli import cli, cli_json
from worker.devstack import DevStack

pytestmark = pytest.mark.stack
MOMENT = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC"


def test_asking_again_says_the_request_was_made_before(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "30000")
    ask = [
        "request",
        "--order",
        order["order_id"],
        "--amount",
        "30000",
        "--reason",
        "damaged",
        "--channel",
        "web",
    ]
    first = cli(stack, *ask, "--key", "friction-1")
    assert first.returncode == 0 and "already made" not in first.stderr
    refund_id = cli_json(stack, *ask, "--key", "friction-1")["refund_id"]
    # A reviewer of the dev directory: any other name is a customer, who may not reject.
    cli(stack, "reject", refund_id, "--reviewer", "bob", "--reason", "not damaged")
    again = cli(stack, *ask, "--key", "friction-1")
    assert again.returncode == 0
    note = again.stderr.strip()
    assert re.fullmatch(
        rf"note: this request was already made {MOMENT} \(key friction-1\): refund"
        rf" {refund_id} is cancelled \(rejected\); to ask again, give a new --key",
        note,
    ), note


def test_an_unknown_role_is_a_usage_error_with_a_suggestion(stack: DevStack) -> None:
    wrong = cli(
        stack, "approve", "rf_0123456789abcdef01234567", "--reviewer", "x", "--role", "finanse"
    )
    assert wrong.returncode == 2
    assert "unknown role 'finanse'" in wrong.stderr and "did you mean 'finance'?" in wrong.stderr


def test_policy_amounts_read_as_money(stack: DevStack) -> None:
    shown = cli(stack, "policy", "show", "standard-v3").stdout
    assert "approval.auto_approve_limit         50.00 (5000 minor units)" in shown
    assert "fees.restocking_bps.electronics     15.00 % (1500 bps)" in shown


def test_one_timestamp_format_in_status_audit_events_and_track(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "4200")
    refund_id = cli_json(
        stack,
        "request",
        "--order",
        order["order_id"],
        "--amount",
        "4200",
        "--reason",
        "damaged",
        "--channel",
        "web",
    )["refund_id"]
    for command in ("status", "audit", "events", "track"):
        shown = cli(stack, command, refund_id).stdout
        assert re.search(MOMENT, shown), (command, shown)
        assert not re.search(r"\d\dT\d\d:\d\d", shown), (command, shown)


def test_an_unknown_refunds_inbox_is_not_called_empty(stack: DevStack) -> None:
    shown = cli(stack, "sandbox", "inbox", "--refund", "rf_0123456789abcdef01234567")
    assert shown.stdout.strip() == (
        "no notification for rf_0123456789abcdef01234567 in the customer inbox"
    )
