"""Who a CLI command acts as and through which API, without a stack: --as and its older
synonyms, a token from the environment, the dev stack's tokens, and the one-line refusals."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from client.cli.acting import Credentials, acting_name, credentials, requester
from client.cli.app import run
from client.cli.arguments import UserError
from client.cli.commands import CLIENT_COMMANDS, build_parser
from client.errors import RefundflowError

RF = "rf_0123456789abcdef01234567"


def parse(*argv: str) -> argparse.Namespace:
    return build_parser(CLIENT_COMMANDS).parse_args(argv)


def dev_stack(name: str | None) -> Credentials:
    """A stand-in for the worker's dev token signer: who was asked for is in the token."""
    who = name or "alice"
    kind = "customer" if who.startswith("cust") else "staff"
    return Credentials("http://127.0.0.1:8080", f"token-for-{who}", who, kind)


def with_tokens(args: argparse.Namespace, tokens: object) -> argparse.Namespace:
    args.dev_tokens = tokens
    return args


@pytest.fixture
def nowhere(tmp_path: Path) -> dict[str, str]:
    """An environment with no dev stack and no token."""
    return {"REFUNDFLOW_HOME": str(tmp_path)}


def test_as_and_its_synonyms_name_who_acts() -> None:
    assert acting_name(parse("--as", "li", "approve", RF)) == "li"
    assert acting_name(parse("approve", RF, "--reviewer", "li")) == "li"
    assert acting_name(parse("operator", "retry", RF, "--operator", "omar")) == "omar"
    assert acting_name(parse("cancel", RF, "--actor", "cust_1", "--reason", "x")) == "cust_1"
    assert acting_name(parse("received", RF)) == "warehouse"  # only the warehouse may
    assert acting_name(parse("status", RF)) is None  # the directory's default member
    with pytest.raises(UserError, match="--reviewer li and --as bob name different people"):
        acting_name(parse("--as", "bob", "approve", RF, "--reviewer", "li"))


def test_in_the_dev_stack_the_named_member_acts(nowhere: dict[str, str]) -> None:
    args = with_tokens(parse("--as", "li", "approve", RF), dev_stack)
    assert credentials(args, nowhere).token == "token-for-li"
    default = with_tokens(parse("status", RF), dev_stack)
    assert credentials(default, nowhere).name == "alice"


def test_a_token_from_the_environment_says_who_acts_and_naming_someone_is_refused(
    nowhere: dict[str, str],
) -> None:
    env = {**nowhere, "REFUNDFLOW_TOKEN": "t0k", "REFUNDFLOW_API_URL": "https://api.example/"}
    found = credentials(with_tokens(parse("status", RF), dev_stack), env)
    assert (found.api_url, found.token, found.kind) == ("https://api.example", "t0k", None)
    assert "t0k" not in repr(found)  # never in a log line or a traceback
    for argv in (("--as", "li", "status", RF), ("approve", RF, "--reviewer", "li")):
        with pytest.raises(UserError, match="REFUNDFLOW_TOKEN says who you are"):
            credentials(with_tokens(parse(*argv), dev_stack), env)


def test_an_api_url_other_than_the_dev_stack_s_is_never_silently_replaced(
    nowhere: dict[str, str],
) -> None:
    elsewhere = {**nowhere, "REFUNDFLOW_API_URL": "http://127.0.0.1:9"}
    with pytest.raises(RefundflowError, match="not this dev stack's API"):
        credentials(with_tokens(parse("status", RF), dev_stack), elsewhere)
    same = {**nowhere, "REFUNDFLOW_API_URL": "http://127.0.0.1:8080/"}
    assert credentials(with_tokens(parse("status", RF), dev_stack), same).name == "alice"


def test_refusals_are_one_sentence(nowhere: dict[str, str]) -> None:
    with pytest.raises(RefundflowError, match="set REFUNDFLOW_API_URL too"):
        credentials(with_tokens(parse("status", RF), None), {**nowhere, "REFUNDFLOW_TOKEN": "t"})
    # No stack to sign for li: "stack not running" (exit 1), saying where it looked.
    with pytest.raises(RefundflowError, match="acting as li needs the dev stack") as acting:
        credentials(with_tokens(parse("--as", "li", "status", RF), lambda _: None), nowhere)
    assert f"none runs from REFUNDFLOW_HOME={nowhere['REFUNDFLOW_HOME']}" in str(acting.value)
    with pytest.raises(RefundflowError) as no_api:
        credentials(with_tokens(parse("status", RF), lambda _: None), nowhere)
    # REFUNDFLOW_HOME was set on purpose: the refusal says where it looked.
    home = nowhere["REFUNDFLOW_HOME"]
    assert str(no_api.value).startswith(
        f"no API to talk to: no dev stack runs from REFUNDFLOW_HOME={home} (start"
    )
    assert "\n" not in str(no_api.value)


def test_an_api_named_without_a_token_is_told_what_is_missing(nowhere: dict[str, str]) -> None:
    """A trial: REFUNDFLOW_API_URL set and REFUNDFLOW_TOKEN empty read "no API to talk to"."""
    named = {**nowhere, "REFUNDFLOW_API_URL": "http://127.0.0.1:9", "REFUNDFLOW_TOKEN": " "}
    with pytest.raises(RefundflowError, match="but REFUNDFLOW_TOKEN is empty or unset"):
        credentials(with_tokens(parse("status", RF), lambda _: None), named)


def test_whom_a_request_is_for(nowhere: dict[str, str]) -> None:
    ask = ("request", "--order", "o1", "--amount", "100", "--reason", "damaged", "--channel", "web")
    customer = with_tokens(parse("--as", "cust_9", *ask), dev_stack)
    assert requester(customer, staff_default="support-cli") == "cust_9"
    staff = with_tokens(parse(*ask), dev_stack)
    assert requester(staff, staff_default="support-cli") == "support-cli"
    named = with_tokens(parse(*ask, "--requested-by", "cust_3"), dev_stack)
    assert requester(named, staff_default="support-cli") == "cust_3"


def test_as_after_the_command_says_where_it_goes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        parse("approve", RF, "--as", "li")
    err = capsys.readouterr().err
    assert ended.value.code == 2 and err.count("\n") == 1
    assert "--as goes before the command: `refundflow --as NAME COMMAND …`" in err


@pytest.mark.parametrize(
    "argv",
    [
        ("--as", "cust_1", "subscribers", "remove", "crm"),
        ("--as", "li", "report"),
        ("--as", "omar", "reconcile", "--no-heal"),
        ("--as", "cust_1", "audit", "--verify"),
    ],
)
def test_as_on_a_command_that_works_on_the_stack_directly_is_refused(
    argv: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing would check the claim (they use the stack's own credentials): refused before
    anything runs, never silently ignored."""
    assert run(list(argv)) == 2
    said = capsys.readouterr().err.strip()
    assert said.startswith("error: --as has no effect on") and "\n" not in said


def test_evidence_pasted_with_windows_line_breaks_is_kept_as_the_console_keeps_it() -> None:
    args = parse("approve", RF, "--evidence", "photos\r\nreceipt\rticket 9")
    assert args.evidence == "photos\nreceipt\nticket 9"
    assert parse("reject", RF, "--reason", "not\r\nreturned").reason == "not\nreturned"


def test_a_stopped_home_is_refused_not_taken_for_the_default_ports(
    nowhere: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Commands that work on the stack directly would fall back to 8088 and 7233, where
    another stack may run: with REFUNDFLOW_HOME naming a stopped stack, they refuse."""
    monkeypatch.setenv("REFUNDFLOW_HOME", nowhere["REFUNDFLOW_HOME"])
    for name in ("TEMPORAL_ADDRESS", "TEMPORAL_PROFILE", "TEMPORAL_CONFIG_FILE", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("SANDBOX_URL", raising=False)
    for argv in (["sandbox", "order", "--amount", "100"], ["reconcile"], ["subscribers", "list"]):
        assert run(argv) == 1
        said = capsys.readouterr().err
        assert said.startswith(
            f"error: no dev stack runs from REFUNDFLOW_HOME={nowhere['REFUNDFLOW_HOME']}"
        ), said
    # Local files only: the policies are there whatever runs.
    assert run(["policy", "show"]) == 0
