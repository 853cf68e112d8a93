"""The README's newcomer walkthrough, command by command, as real processes:
eligibility -> request -> track -> approve -> events -> audit -> report."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.integration.test_cli import cli, cli_json
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


def until(stack: DevStack, accept: Any, *args: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        value = cli_json(stack, *args)
        if accept(value) or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def test_newcomer_walkthrough(stack: DevStack, tmp_path: Path) -> None:
    started = datetime.now(UTC).replace(microsecond=0, tzinfo=None).isoformat()
    order = cli_json(
        stack, "sandbox", "order", "--amount", "30000", "--rail", "wallet", "--customer", "cust_42"
    )
    assert order["customer_id"] == "cust_42"
    assert order["payment_rail"] == "wallet"
    ask = ["--order", order["order_id"], "--amount", "30000", "--reason", "damaged"]

    answer = cli_json(stack, "eligibility", *ask)
    assert (answer["eligible"], answer["outcome"], answer["approval_by"]) == (
        True, "needs_review", "lead",
    )  # fmt: skip
    assert answer["refund_amount"] == 30000 and answer["policy_version"].startswith("standard@v4")
    human = cli(stack, "eligibility", *ask)
    assert human.returncode == 0
    assert human.stdout.startswith("Eligible: 300.00 USD, once a reviewer (role lead or above)")

    # The customer asks in their own name (as the storefront would, with their token).
    requested = cli_json(
        stack, "--as", "cust_42", "request", *ask, "--channel", "web", "--locale", "zh-CN"
    )
    refund_id = requested["refund_id"]
    # The customer's own view (as `track`): their words and language, no staff fields.
    assert requested["status"] == "已申请" and requested["eta_kind"] == "review"
    assert "support_reply" not in requested

    # Asking again about the request just made: its own hold does not count against it.
    again = cli_json(stack, "eligibility", *ask)
    assert (again["outcome"], again["max_refundable"]) == ("needs_review", 30000)

    track = cli_json(stack, "track", refund_id)
    assert track["message"] == requested["message"] and track["status"] == "已申请"
    assert "alice" not in json.dumps(track)

    # Above their authority: one line, exit 1, nothing changed.
    refused = cli(stack, "approve", refund_id, "--reviewer", "alice")
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr.strip() == (
        "error: refused: alice (support) may approve up to 200.00 USD; approving 300.00 USD"
        " needs the lead role"
    )
    assert cli_json(stack, "status", refund_id)["state"] == "pending_review"
    approved = cli(stack, "--as", "li", "approve", refund_id)
    assert approved.returncode == 0 and approved.stderr == "", approved.stderr

    status = until(stack, lambda s: s["state"] == "completed", "status", refund_id)
    assert status["state"] == "completed"
    human_status = cli(stack, "status", refund_id).stdout
    assert status["support_reply"] in human_status  # the reply the agent gives

    def all_delivered(rows: list[dict[str, Any]]) -> bool:
        return len(rows) == 4 and all(d["delivered_at"] for e in rows for d in e["deliveries"])

    events = until(stack, all_delivered, "events", refund_id)
    assert [e["type"] for e in events][-1] == "refund.completed"
    inbox = cli_json(stack, "sandbox", "inbox", "--refund", refund_id)
    assert [n["body"] for n in inbox] == [e["payload"]["notification"]["body"] for e in events]

    audit = cli_json(stack, "audit", refund_id)
    approve_row = next(r for r in audit if r["event"] == "approve")
    assert (approve_row["actor"], approve_row["from_state"], approve_row["to_state"]) == (
        "li", "pending_review", "approved",
    )  # fmt: skip
    assert approve_row["policy_version"] == status["policy_version"]

    chart = tmp_path / "report.html"
    # Since this test began, as the README's `--since`: the stack also holds the duplicates
    # other tests make on purpose (reconciliation's), whichever files ran on it before.
    report = cli_json(stack, "report", "--since", started, "--chart", str(chart))
    assert report["duplicate_refunds"] == 0 and report["by_state"]["completed"] == 1
    assert chart.read_text().count("<svg") >= 1


def test_policy_show_and_diff(stack: DevStack) -> None:
    shown = cli_json(stack, "policy", "show")
    assert shown["label"].startswith("standard@v4#")
    assert shown["settings"]["authority.support"] == 20000
    assert shown["settings"]["currency"] == "USD"
    assert shown["settings"]["currencies.JPY.auto_approve_limit"] == 7500
    diff = cli_json(stack, "policy", "diff", "standard-v1", "standard@v2")
    assert {c["setting"] for c in diff["changes"]} >= {
        "authority.lead", "fees.restocking_bps.electronics", "settlement.card.max",
    }  # fmt: skip
    text = cli(stack, "policy", "diff", "standard-v1", "standard-v2").stdout
    assert "added    authority.support" in text
    missing = cli(stack, "policy", "show", "standard-v9")
    assert missing.returncode == 1 and missing.stderr.startswith("error: policy 'standard-v9'")


def test_eligibility_and_subscriber_mistakes_are_one_line(stack: DevStack) -> None:
    bad = cli(stack, "eligibility", "--order", "ord_nope", "--amount", "100", "--reason", "damaged")
    # Bad input the API rejects (a 422 problem): exit 2, one line, as a usage mistake.
    assert bad.returncode == 2 and bad.stderr.strip() == "error: unknown order ord_nope"
    reason = cli(stack, "eligibility", "--order", "ord_x", "--amount", "100", "--reason", "meh")
    assert reason.returncode == 2 and "unknown reason code 'meh'" in reason.stderr
    url = cli(stack, "subscribers", "add", "crm", "ftp://example")
    assert url.returncode == 2 and "expected an http(s) URL" in url.stderr
    added = cli_json(stack, "subscribers", "add", "walkthrough-crm", "http://127.0.0.1:9/x")
    assert added["secret"].startswith("whsec_") and added["subscribed_before"] is False
    listed = cli_json(stack, "subscribers", "list")
    # The secret is shown once, when added: never listed (by value or under any key).
    assert added["secret"] not in json.dumps(listed)
    assert not any(
        "secret" in key and row[key]
        for row in listed
        for key in row
        if key != "previous_secret_valid_until"
    )
    typo = cli(stack, "subscribers", "replay", "walkthrough-crn", "--all-parked")
    assert typo.returncode == 1 and "did you mean walkthrough-crm?" in typo.stderr, typo.stderr
    readded = cli_json(stack, "subscribers", "add", "walkthrough-crm", "http://127.0.0.1:9/y")
    assert readded["subscribed_before"] is True and readded["url"] == "http://127.0.0.1:9/y"
    removed = cli_json(stack, "subscribers", "remove", "walkthrough-crm")
    assert (removed["active"], removed["removed_before"]) == (False, False)
    again = cli(stack, "subscribers", "remove", "walkthrough-crm")  # nothing to do: said so
    assert (again.returncode, again.stdout) == (
        0,
        "walkthrough-crm: was removed before; it receives no events\n",
    )
    gone = cli(stack, "subscribers", "remove", "no-such-crm")  # not found: 1, as everywhere
    assert (gone.returncode, gone.stderr) == (1, "error: no subscriber named no-such-crm\n")
