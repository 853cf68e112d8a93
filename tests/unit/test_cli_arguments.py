"""Usage mistakes get one line naming what was expected, exit status 2, and a suggestion
where a command was mistyped."""

from __future__ import annotations

import pytest

from worker.cli import build_parser

RF = "rf_0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["staus"], "did you mean 'status'?"),
        (["aprove", RF], "did you mean 'approve'?"),
        (["approve", RF, "--reviewer", "a b"], "no spaces"),
        (["approve", RF, "--reviewer", ""], "expected a handle"),
        (["approve", RF, "--reviewer", "x", "--amount", "1_000"], "whole number of minor units"),
        (["approve", RF, "--reviewer", "x", "--amount", "42.00"], "4200 is 42.00"),
        (["reconcile", "--grace", "-5"], "0 or more"),
        (["anomalies", "--kind", "nonsense"], "invalid choice: 'nonsense'"),
        (["operator", "retry", RF, "--operator", "kim lee"], "no spaces"),
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
    assert (args.reviewer, args.amount, args.role) == ("li", 4200, "support")
