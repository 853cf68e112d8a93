"""Usage mistakes get one line naming what was expected, exit status 2, and a suggestion
where a command was mistyped."""

from __future__ import annotations

import argparse
import json
import re
import sys

import pytest

from client.cli.app import guarded
from client.errors import RefundflowError
from worker.cli import build_parser

RF = "rf_0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["staus"], "did you mean 'status'?"),
        # A required option mistyped: the typo is named, not only the missing option.
        (
            ["request", "--ordr", "ord_1", "--amount", "5", "--reason", "damaged"],
            "the following arguments are required: --order ('--ordr' is not an option: did you"
            " mean '--order'?)",
        ),
        # A refund id copied without its prefix: not pointed at an order's refunds.
        (
            ["status", RF[3:]],
            f"is not a refund id (they look like rf_ and 24 hex digits); did you mean {RF}?",
        ),
        (["aprove", RF], "did you mean 'approve'?"),
        (["approve", RF, "--reviewer", "a b"], "no spaces"),
        (["approve", RF, "--reviewer", ""], "expected a handle"),
        (["approve", RF, "--reviewer", "x", "--amount", "1_000"], "the currency's minor units"),
        (["approve", RF, "--reviewer", "x", "--amount", "42.00"], "4200 is 42.00"),
        (["reconcile", "--grace", "-5"], "0 or more"),
        (["anomalies", "--kind", "nonsense"], "invalid choice: 'nonsense'"),
        (["operator", "retry", RF, "--operator", "kim lee"], "no spaces"),
        # The start of a name suggests that name, not a merely similar one ('refunding').
        (["list", "--state", "pending"], "did you mean 'pending_review'?"),
        (["list", "--state", "Pending"], "did you mean 'pending_review'?"),
        # A mistyped option: the command's own options are searched too.
        (["status", RF, "--jsno"], "unrecognized arguments: --jsno; did you mean '--json'?"),
        (["list", "--escalatd"], "did you mean '--escalated'?"),
        # The help that lists it: the command's, not the top level's.
        (["list", "--limti", "3"], "'--limit'? (see `refundflow list --help`)"),
        (["staus"], "did you mean 'status'? (see `refundflow --help`)"),
        # A value that starts with '-' is read as an option: say how to give it.
        (
            ["subscribers", "rotate-secret", "crm", "--overlap", "-5m"],
            "expected one argument; '-5m' reads as an option: if it is the value, write"
            " --overlap=-5m",
        ),
        # A reason the audit keeps for good must say something.
        (["reject", RF, "--reason", "   "], "--reason: must say something"),
        (["cancel", RF, "--reason", ""], "--reason: must say something"),
        (["operator", "paid-elsewhere", RF, "--proof", " "], "--proof: must say something"),
        (["reject", RF, "--reason", "ok \u2066x"], "--reason: must not contain bidirectional"),
        (["reject", RF, "--reason", "ok \u200fx"], "--reason: must not contain bidirectional"),
        (["reject", RF, "--reason", "ok \x85x"], "--reason: must not contain control"),
        # Only invisible characters say nothing (a trial met the evidence rule with U+200B).
        (["approve", RF, "--evidence", "\u200b\u2060"], "--evidence: must say something"),
        # A reason code is checked before anything is asked, a near miss named.
        (
            ["request", "--order", "ord_1", "--amount", "5", "--reason", "damagd"],
            "unknown reason code 'damagd' (did you mean 'damaged'?); the codes are damaged,",
        ),
        (["eligibility", "--order", "o", "--amount", "5", "--reason", "x"], "the codes are"),
        # A group without its command names the commands, when they are few.
        (["operator"], "a command is required: one of retry, cancel, paid-elsewhere (see"),
        (["sandbox", "faults"], "one of set, clear, show (see `refundflow sandbox faults --help`)"),
        # Two identities on one line: refused, not acted on as the last (a trial).
        (["--as", "li", "--as", "bob", "list"], "--as given twice (li, then bob): give it once"),
        # After the command, its name read as the refund id: where --as goes (a trial).
        (["status", "--as", "li", RF], "; --as goes before the command: `refundflow --as"),
        # Not where moving it would be refused too (a trial was sent back and forth).
        (["reconcile", "--as", "omar"], "; --as has no effect on `reconcile`, which works on"),
        # An order id where a refund id goes: where an order's refunds are (a trial).
        (["status", "ord_9b7"], "; an order's refunds: `refundflow list --order ord_9b7`"),
        # A duration first (a trial): not pointed at `list --order 25h`.
        (["sandbox", "fast-forward", "25h", RF], "'25h' is a duration: the refund's id comes"),
        (
            ["anomalies", "--refund", "ord_9b7"],
            "; an order's findings: `refundflow anomalies --order ord_9b7`",
        ),
    ],
)
def test_a_mistake_is_one_line_with_exit_status_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args(argv)
    err = capsys.readouterr().err
    assert ended.value.code == 2
    assert says in err and err.count("\n") == 1 and err.startswith("error: ")


def test_good_arguments_parse() -> None:
    args = build_parser().parse_args(["approve", RF, "--reviewer", "li", "--amount", "4200"])
    # No role unless given: it comes from the directory or the token (--role only warns).
    assert (args.reviewer, args.amount, args.role) == ("li", 4200, None)
    pasted = build_parser().parse_args(["approve", RF, "--amount", " 4200 "])
    assert pasted.amount == 4200  # a pasted amount's spaces are not money (a trial)
    acting = build_parser().parse_args(["--as", "cust_1", "approve", RF])
    assert (acting.acting_as, acting.reviewer) == ("cust_1", None)
    repeated = build_parser().parse_args(["--as", "li", "--as", "li", "list"])
    assert repeated.acting_as == "li"  # the same name twice is still one identity
    asked = build_parser().parse_args(
        ["request", "--order", "o", "--amount", "5", "--reason", "Damaged"]
    )
    assert asked.reason == "damaged"


def test_with_json_a_usage_mistake_is_json_too(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "argv", ["refundflow", "staus", "--json"])
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args(["staus", "--json"])
    said = json.loads(capsys.readouterr().err)
    assert ended.value.code == 2 and said["exit_status"] == 2
    assert "did you mean 'status'?" in said["error"]


def test_failures_are_one_line_or_json_and_ctrl_c_says_what_may_have_happened(
    capsys: pytest.CaptureFixture[str],
) -> None:
    def refused() -> int:
        raise RefundflowError("refund rf_x not found")

    def interrupted() -> int:
        raise KeyboardInterrupt

    assert guarded(refused) == 1
    assert capsys.readouterr().err == "error: refund rf_x not found\n"
    assert guarded(refused, as_json=True) == 1
    assert json.loads(capsys.readouterr().err) == {
        "error": "refund rf_x not found",
        "exit_status": 1,
    }
    assert guarded(interrupted) == 130
    assert "asking again is safe" in capsys.readouterr().err


def test_an_order_id_with_a_space_is_refused_on_the_command_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["request", "--order", "ord x", "--amount", "1"])
    assert "'ord x' is not an order id" in capsys.readouterr().err


def test_every_command_and_option_says_what_it_is_for() -> None:
    """`--help` of any command explains each of its options (issue 17: dev's ports, the
    sandbox order's --currency/--rail, list --state, every --json were bare names)."""
    bare: list[str] = []

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest: a.help for a in action._choices_actions}
                for name, sub in action.choices.items():
                    if not helped.get(name):
                        bare.append(f"{path} {name}".strip())
                    walk(sub, f"{path} {name}".strip())
            elif action.option_strings and not action.help:
                bare.append(f"{path} {action.option_strings[-1]}")

    walk(build_parser(), "")
    assert bare == []


def test_version_says_which_refundflow(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as ended:
        build_parser().parse_args(["--version"])
    assert ended.value.code == 0
    assert re.fullmatch(r"refundflow \d+\.\d+\.\d+\n", capsys.readouterr().out)


def test_an_option_of_another_command_is_not_suggested(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["track", RF, "--escalatd"])  # --escalated is list's
    err = capsys.readouterr().err
    assert "unrecognized arguments: --escalatd" in err and "did you mean" not in err


def test_no_refusal_code_is_none_not_a_code_named_none() -> None:
    """A trial: `sandbox faults set payment.refuse=none` refused every refund as "none"."""
    from sandbox.faults import PaymentFaults

    for written in ("none", "off", "None", ""):
        assert PaymentFaults.model_validate({"refuse": written}).refuse == ""
    assert PaymentFaults.model_validate({"refuse": "expired_card"}).refuse == "expired_card"


def test_a_probability_that_is_not_a_number_is_said_so() -> None:
    """A trial: `sandbox faults set payment.error_rate=NaN` said "less than or equal to 1"."""
    from sandbox.faults import Faults

    for written in ("NaN", "nan", "inf"):
        with pytest.raises(ValueError, match="finite number"):
            Faults().apply({"payment.error_rate": written})
    assert Faults().apply({"payment.error_rate": "0.5"}).payment.error_rate == 0.5


def test_a_sandbox_order_is_placed_by_a_customer_the_dev_stack_can_sign_in_as(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `sandbox order --customer CUST_9` made an order no `--as` could act on."""
    ok = build_parser().parse_args(["sandbox", "order", "--customer", "cust_9"])
    assert ok.customer == "cust_9"
    for written, said in [("CUST_9", "did you mean cust_9?"), ("bob", "such as cust_42")]:
        with pytest.raises(SystemExit) as exit_:
            build_parser().parse_args(["sandbox", "order", "--customer", written])
        assert exit_.value.code == 2
        assert said in capsys.readouterr().err, written


def test_reconcile_check_exits_3_only_when_a_run_left_something_for_a_person() -> None:
    from client.cli.operations import exit_for_check

    assert [exit_for_check(n, check) for n, check in [(0, True), (2, True), (2, False)]] == [
        0,
        3,
        0,
    ]


def test_what_a_person_acknowledged_or_a_run_healed_needs_nobody() -> None:
    from types import SimpleNamespace as Row

    from client.cli.operations import left_for_a_person

    run = [
        Row(action="escalated", acknowledged_by=None),
        Row(action="escalated", acknowledged_by="omar"),  # dealt with outside refundflow
        Row(action="reported", acknowledged_by=None),  # --no-heal: found, for a person
        Row(action="healed", acknowledged_by=None),
    ]
    assert left_for_a_person(run) == 2
    assert left_for_a_person(run[1::2]) == 0


def test_the_faults_set_takes_are_in_its_help(capsys: pytest.CaptureFixture[str]) -> None:
    """A trial found them only in the README."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "faults", "set", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert "payment.{latency_ms," in shown and "refuse" in shown, shown
    assert "notifications.{latency_ms," in shown


def test_a_refund_id_that_is_no_order_id_either_is_not_pointed_at_the_order_list(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `status ../../etc/passwd` suggested `list --order ../../etc/passwd`, which
    is refused in its turn."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", "../../etc/passwd"])
    err = capsys.readouterr().err
    assert "is not a refund id" in err and "--order" not in err, err


def test_a_missing_option_is_not_blamed_on_an_option_the_command_has(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `acknowledge … --refund rf_… --by omar` without --reason was told "'--refund'
    is not an option: did you mean '--reason'?"."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["acknowledge", "amount_mismatch", "--refund", RF, "--by", "x"])
    err = capsys.readouterr().err
    assert "the following arguments are required: --reason" in err and "not an option" not in err


def test_a_misspelt_option_of_a_required_choice_is_named(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `acknowledge KIND --refnd rf_…` was told only that one of --refund and
    --order is required."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["acknowledge", "amount_mismatch", "--refnd", RF, "--by", "x", "--reason", "y"]
        )
    err = capsys.readouterr().err
    assert "one of the arguments --refund --order is required" in err, err
    assert "'--refnd' is not an option: did you mean '--refund'?" in err, err


@pytest.mark.parametrize(
    ("line", "pointer"),
    [
        (["sandbox", "inbox", "--jsn"], "`refundflow sandbox inbox --help`"),
        (["sandbox", "faults", "set", "--jsn"], "`refundflow sandbox faults set --help`"),
        (["status", RF, "--jsn"], "`refundflow status --help`"),
    ],
)
def test_a_mistake_points_at_the_help_of_the_subcommand_it_was_made_in(
    capsys: pytest.CaptureFixture[str], line: list[str], pointer: str
) -> None:
    """A trial: `sandbox inbox --jsn` pointed at `sandbox --help`, which lists no options."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(line)
    assert pointer in capsys.readouterr().err


def test_a_negative_duration_is_named_as_read_as_an_option(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `sandbox fast-forward rf_… -5h` said only that DURATION is required."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["sandbox", "fast-forward", RF, "-5h"])
    err = capsys.readouterr().err
    assert "required: DURATION; '-5h' reads as an option, not as DURATION" in err, err


def test_a_command_that_takes_as_itself_is_not_told_to_move_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `token --as li --ttl 0` was told "--as goes before the command", which
    `token` takes after it too (its --help says so); only the --ttl was wrong."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["token", "--as", "li", "--ttl", "0"])
    err = capsys.readouterr().err
    assert "--ttl: expected a whole number of at least 1" in err and "goes before" not in err


def test_a_refund_key_is_checked_as_the_option_it_is(capsys: pytest.CaptureFixture[str]) -> None:
    """A trial: `request … --key 'bad key'` read "refund_key must be …" (the contract's
    field), not the option given."""
    line = ["request", "--order", "ord_1", "--amount", "5", "--reason", "damaged"]
    with pytest.raises(SystemExit):
        build_parser().parse_args([*line, "--key", "bad key"])
    err = capsys.readouterr().err
    assert "argument --key: 'bad key' is not a refund key (at most 64 letters" in err, err
    assert build_parser().parse_args([*line, "--key", "ticket-8812"]).key == "ticket-8812"


def test_an_option_only_somewhat_like_one_is_not_taken_for_a_typo(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A trial: `status rf_… --reason x` was asked "did you mean '--json'?"."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(["status", RF, "--reason", "x"])
    err = capsys.readouterr().err
    assert "unrecognized arguments: --reason x" in err and "did you mean" not in err, err


@pytest.mark.parametrize("amount", ["0", "-100"])
def test_an_amount_of_nothing_is_the_option_s_mistake(
    capsys: pytest.CaptureFixture[str], amount: str
) -> None:
    """A trial: `eligibility --amount -100` read "amount must be greater than 0" (the
    request's words), where `--amount 12.5` reads as the option's mistake."""
    with pytest.raises(SystemExit):
        build_parser().parse_args(
            ["eligibility", "--order", "o", "--amount", amount, "--reason", "damaged"]
        )
    assert (
        f"argument --amount: amount must be more than 0, got '{amount}'" in capsys.readouterr().err
    )
