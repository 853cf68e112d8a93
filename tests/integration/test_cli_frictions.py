"""First-hour frictions (issue 17), as a newcomer meets them: asking again says it was asked
before, an unknown role is a usage error with a suggestion, policy amounts read as money,
one timestamp format in every listing, an unknown refund's inbox is not "empty"; --json
before or after the command, errors as JSON; pasted refund ids; a mistyped staff name; a
reader that stops early; policy diff and report in the one format."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from client.settings import PROJECT_ROOT
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
    # A reviewer of the dev directory: a customer (cust_…) may not reject.
    cli(stack, "reject", refund_id, "--reviewer", "bob", "--reason", "not damaged")
    again = cli(stack, *ask, "--key", "friction-1")
    assert again.returncode == 0
    note = again.stderr.strip()
    assert re.fullmatch(
        rf"note: this request was already made {MOMENT} \(key friction-1\): refund"
        rf" {refund_id} is cancelled \(rejected\); to ask again, give a new --key",
        note,
    ), note
    # A customer asking again for their own order is told how to ask anew too (a trial:
    # told "you can ask again" after an expiry, the same request gave the closed refund).
    own = cli_json(stack, "sandbox", "order", "--amount", "30000", "--customer", "cust_77")
    mine = ["--as", "cust_77", "request", "--order", own["order_id"], "--amount", "100"]
    assert cli(stack, *mine, "--reason", "damaged").returncode == 0
    theirs = cli(stack, *mine, "--reason", "damaged")
    assert theirs.returncode == 0, theirs.stderr
    assert theirs.stderr.strip().endswith(
        "; if it closed without a refund, ask again with a new --key"
    ), theirs.stderr


def test_a_request_the_policy_declines_prints_why_and_exits_1(stack: DevStack) -> None:
    late = cli_json(stack, "sandbox", "order", "--amount", "30000", "--delivered-days-ago", "400")
    ask = ["request", "--order", late["order_id"], "--amount", "30000", "--reason", "damaged"]
    declined = cli(stack, *ask, "--channel", "web")
    assert declined.returncode == 1, declined.stderr
    assert "cancelled (ineligible)" in declined.stdout and "return window" in declined.stdout
    # The same with --json: the status on stdout, for a script to read why.
    again = cli(stack, "--json", *ask, "--channel", "web")
    assert again.returncode == 1
    assert json.loads(again.stdout)["cancel_reason"] == "ineligible"
    # A request on its way is still a success.
    fine = cli_json(stack, "sandbox", "order", "--amount", "30000")
    on_its_way = cli(stack, "request", "--order", fine["order_id"], "--amount", "30000",
                     "--reason", "damaged", "--channel", "web")  # fmt: skip
    assert on_its_way.returncode == 0, on_its_way.stderr


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


def _refund(stack: DevStack, amount: str = "30000") -> Any:
    order = cli_json(stack, "sandbox", "order", "--amount", amount)
    return cli_json(
        stack, "request", "--order", order["order_id"], "--amount", amount,
        "--reason", "damaged", "--channel", "web",
    )  # fmt: skip


def _json_error(result: subprocess.CompletedProcess[str], status: int) -> str:
    """The one JSON line a failed command prints with --json; its message."""
    assert result.returncode == status and result.stdout == "", result
    said = json.loads(result.stderr)
    assert said["exit_status"] == status, said
    return str(said["error"])


def test_json_before_or_after_the_command_and_errors_as_json(stack: DevStack) -> None:
    refund_id = _refund(stack)["refund_id"]
    # A refund id pasted with spaces around it, in upper case, is the same id.
    pasted = f"  {refund_id.upper()} "
    for words in (["--json", "status", pasted], ["status", pasted, "--json"]):
        shown = cli(stack, *words)
        assert shown.returncode == 0, shown.stderr
        assert json.loads(shown.stdout)["refund_id"] == refund_id
    missing = "rf_000000000000000000000000"
    for words in (["--json", "status", missing], ["status", missing, "--json"]):
        assert _json_error(cli(stack, *words), 1) == f"no refund {missing}"
    malformed = _json_error(cli(stack, "--json", "status", "rf_123"), 2)
    assert "'rf_123' is not a refund id (they look like rf_ and 24 hex digits)" in malformed
    plain = cli(stack, "track", "rf_123")
    assert plain.returncode == 2 and plain.stderr.count("\n") == 1, plain
    assert plain.stderr.startswith("error: argument refund_id: 'rf_123' is not a refund id")


def test_a_mistyped_staff_name_is_refused_not_taken_for_a_customer(stack: DevStack) -> None:
    typo = cli(stack, "--as", "alcie", "list")
    assert typo.returncode == 2 and typo.stdout == "", typo
    assert typo.stderr.startswith(
        "error: 'alcie' is not in the dev stack's staff directory; did you mean alice?"
    )
    assert typo.stderr.count("\n") == 1 and "cust_" in typo.stderr
    token = _json_error(cli(stack, "token", "--as", "lii", "--json"), 2)
    assert "did you mean li?" in token
    # A customer is named by an id: cust_ alone, or with a space, is nobody's.
    for nobody_id in ("cust_", "cust_a b"):
        refused = _json_error(cli(stack, "token", "--as", nobody_id, "--json"), 2)
        assert refused.startswith(f"{nobody_id!r} is not a customer id: cust_ then"), refused
    # CUST_42 would be a customer of its own, with no orders: refused, cust_42 suggested.
    shouted = _json_error(cli(stack, "token", "--as", "CUST_42", "--json"), 2)
    assert shouted.startswith("'CUST_42' is not a customer id: customer ids start with cust_")
    assert shouted.endswith("did you mean cust_42?"), shouted
    # `token` takes --as where every other command does, too; once, or the same twice.
    before = cli(stack, "--as", "li", "token")
    assert before.returncode == 0 and before.stdout.count(".") == 2, before.stderr
    both = cli(stack, "--as", "li", "token", "--as", "bob")
    assert (both.returncode, both.stderr) == (2, "error: --as names bob and li: give one\n")
    nobody = cli(stack, "token")
    assert nobody.returncode == 2 and "refundflow --as NAME token" in nobody.stderr
    for ttl in ("-5", "0", "86401"):
        assert cli(stack, "--as", "li", "token", "--ttl", ttl).returncode == 2, ttl
    # A customer is named by id; a member's name in capitals is still the member.
    assert cli_json(stack, "--as", "cust_nobody", "list") == []
    assert cli(stack, "--as", "Alice", "list").returncode == 0


def test_a_reader_that_stops_early_ends_the_command_quietly(stack: DevStack) -> None:
    _refund(stack, "1500")
    listing = subprocess.Popen(
        [sys.executable, "-m", "worker.cli", "list"],
        env=stack.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert listing.stdout is not None
    listing.stdout.close()  # as `| head -1` does once it has its line: nobody reads any more
    _, err = listing.communicate(timeout=60)
    assert (listing.returncode, err) == (0, "")


def test_policy_diff_and_report_in_the_one_format(stack: DevStack, tmp_path: Path) -> None:
    diff = cli(stack, "policy", "diff", "standard-v2", "standard-v3").stdout
    assert re.search(r"added +approval\.second_approver_above +- -> 1000\.00 \(100000", diff)
    assert "budgets.auto_approve_per_order     - -> 100.00 (10000 minor units)" in diff
    report = cli(stack, "report", "--since", "2026-01-01", "--chart", str(tmp_path / "c.html"))
    assert report.returncode == 0, report.stderr
    assert "period                 2026-01-01 00:00:00 UTC .. now" in report.stdout
    assert re.search(rf"generated +{MOMENT}\n", report.stdout), report.stdout
    assert not re.search(r"\d\dT\d\d:\d\d", report.stdout), report.stdout
    assert report.stdout.rstrip().endswith(f"chart written to {tmp_path / 'c.html'}")


def test_report_writes_a_chart_only_where_asked(stack: DevStack, tmp_path: Path) -> None:
    here = tmp_path / "elsewhere"
    here.mkdir()
    plain = subprocess.run(
        [sys.executable, "-m", "worker.cli", "report", "--since", "2026-01-01"],
        env=stack.env(), cwd=here, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert plain.returncode == 0, plain.stderr
    assert "chart written" not in plain.stdout and list(here.iterdir()) == []
    # Refused before the report is made (a usage mistake, exit 2), not after.
    nowhere = cli(stack, "report", "--chart", str(tmp_path / "no" / "such" / "c.html"))
    assert nowhere.returncode == 2
    assert nowhere.stderr == (
        f"error: argument --chart: the folder {(tmp_path / 'no' / 'such').resolve()} does not"
        " exist (see `refundflow report --help`)\n"
    )


def test_eligibility_says_once_what_can_still_be_refunded_and_why(stack: DevStack) -> None:
    order = cli_json(
        stack, "sandbox", "order",
        "--line", "TV-55:1:30000:electronics", "--line", "GIFT:1:5000:final_sale",
    )  # fmt: skip
    asked = ["eligibility", "--order", order["order_id"], "--reason", "changed_mind"]
    shown = cli(stack, *asked, "--amount", "34000").stdout
    statement = (
        "300.00 USD of this order (350.00 USD paid) can still be refunded now: for"
        " changed_mind, final-sale lines (GIFT) are refunded only when the seller is at fault."
    )
    assert f"  refundable     {statement}" in shown.splitlines(), shown
    assert f"    FAIL refundable       {statement}" in shown.splitlines(), shown
    assert "up to" not in shown and "350.00 USD of this order" not in shown, shown
    # Nothing held, nothing out of reach: the whole order, said the same way.
    whole = cli(stack, *asked, "--line", "TV-55:1").stdout
    assert (
        "  refundable     350.00 USD of this order can still be refunded now: nothing of it is"
        " held or refunded yet."
    ) in whole.splitlines(), whole


def test_the_report_says_how_much_money_and_counts_in_words(stack: DevStack) -> None:
    """Money totals per currency (there were none), "1 completed refund" (not "refunds"),
    no bare "(0.0)" beside a duration, no rows for hours without refunds."""
    since = datetime.now(UTC).replace(microsecond=0).isoformat()
    paid = _refund(stack, "4200")["refund_id"]  # below the auto-approval limit: it is paid
    _refund(stack, "30000")  # waits for a reviewer
    deadline = time.monotonic() + 30
    while cli_json(stack, "status", paid)["state"] != "completed":
        assert time.monotonic() < deadline, "the auto-approved refund was not paid"
        time.sleep(0.2)
    report = cli(stack, "report", "--since", since, "--chart", "/dev/null")
    assert report.returncode == 0, report.stderr
    shown = report.stdout
    assert (
        "  money USD              42.00 USD refunded, 300.00 USD open,"
        " 0.00 USD not paid (cancelled)"
    ) in shown.splitlines(), shown
    assert "(1 completed refund measured)" in shown and "(0.0" not in shown, shown
    rows = re.findall(r"^  \d{4}-\d\d-\d\d \d\d:\d\d  ", shown, re.M)
    assert len(rows) == 1 and "without refunds left out" not in shown, shown
    totals = cli_json(stack, "report", "--since", since, "--chart", "/dev/null")["money"]
    assert totals == [{"currency": "USD", "refunded": 4200, "open": 30000, "not_paid": 0}]


def test_asking_for_more_than_the_order_shows_no_made_up_amounts(stack: DevStack) -> None:
    order = cli_json(stack, "sandbox", "order", "--amount", "4200")
    asked = ["eligibility", "--order", order["order_id"], "--reason", "damaged"]
    shown = cli(stack, *asked, "--amount", "4201")
    # Printed all the same, and exit status 1: the answer is no (as a declined request's).
    assert shown.returncode == 1 and shown.stdout.startswith("Not eligible"), shown
    # Not "requested 0.00 USD" beside a sentence saying 42.01 was asked for (issue 17).
    assert not re.search(r"(?<![\d.])0\.00 USD", shown.stdout), shown.stdout
    assert "  requested " not in shown.stdout, shown.stdout


def test_the_readmes_fault_injection_commands_run_as_written(stack: DevStack) -> None:
    """Every command of the README's fault-injection block is accepted (exit 0), so the
    fault names a reader copies exist (the notifications example included)."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme.split("Fault injection, at run time", 1)[1].split("```bash\n", 1)[1]
    commands = [
        shlex.split(line.split("  #", 1)[0])[1:]
        for line in block.split("```", 1)[0].splitlines()
        if line.startswith("refundflow ")
    ]
    assert any("notifications.error_rate=1" in words for words in commands), commands
    try:
        for words in commands:
            done = cli(stack, *words)
            assert done.returncode == 0, (words, done.stderr)
    finally:
        assert cli(stack, "sandbox", "faults", "clear").returncode == 0


def test_the_channel_defaults_to_where_the_asker_asks_from(stack: DevStack) -> None:
    """Staff at the support desk, a customer on the web; a channel that does not exist is
    refused by name, with nothing requested."""
    for acting, channel in ((None, "support"), ("cust_77", "web")):
        order = cli_json(stack, "sandbox", "order", "--amount", "9000", "--customer", "cust_77")
        who = ["--as", acting] if acting else []
        ask = ["request", "--order", order["order_id"], "--amount", "9000", "--reason", "damaged"]
        refund_id = cli_json(stack, *who, *ask)["refund_id"]
        assert cli_json(stack, "status", refund_id)["channel"] == channel
    wrong = cli(stack, *ask, "--channel", "phone")
    assert wrong.returncode == 2 and "invalid choice: 'phone'" in wrong.stderr
    assert "Traceback" not in wrong.stderr


def test_a_customer_id_in_other_case_is_asked_about(stack: DevStack) -> None:
    """A trial: `list --customer CUST_42` said "no refunds match" of cust_42's refunds."""
    listed = cli(stack, "list", "--customer", "CUST_NOBODY_7")
    assert listed.returncode == 0 and listed.stdout.strip() == "no refunds match", listed
    said = "note: customer ids are exact; did you mean --customer cust_nobody_7?"
    assert listed.stderr.strip() == said, listed
    exact = cli(stack, "list", "--customer", "cust_nobody_7")
    assert exact.returncode == 0 and exact.stderr == "", exact


def test_an_order_id_in_other_case_is_asked_about_where_that_order_has_refunds(
    stack: DevStack,
) -> None:
    """A trial pasted an order id in capitals: "no refunds match", nothing more."""
    order = cli_json(stack, "sandbox", "order", "--amount", "3000")["order_id"]
    cli_json(stack, "request", "--order", order, "--amount", "1000", "--reason", "damaged")
    listed = cli(stack, "list", "--order", order.upper())
    assert listed.returncode == 0 and listed.stdout.strip() == "no refunds match", listed
    assert listed.stderr.strip() == f"note: order ids are exact; did you mean --order {order}?"
    # An order of nobody's in capitals: no guess (order ids may differ only in case).
    unknown = cli(stack, "list", "--order", "ORD_NOBODY_7")
    assert unknown.returncode == 0 and unknown.stderr == "", unknown
