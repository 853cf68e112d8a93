"""Errors in logs, delivery records and the CLI's last-resort line say something: an
error without a message (a TimeoutError from asyncio) was printed as "TimeoutError: " (issue 17)."""

from __future__ import annotations

import aiohttp

from activities.ports import error_text


def test_a_timeout_says_how_long_was_waited_and_other_errors_keep_their_message() -> None:
    assert error_text(TimeoutError(), 10) == "no answer within 10 s (timed out)"
    assert error_text(TimeoutError(), 2.5) == "no answer within 2.5 s (timed out)"
    assert error_text(TimeoutError()) == "TimeoutError"
    refused = aiohttp.ClientConnectionError("Cannot connect to host 127.0.0.1:9")
    assert error_text(refused) == "ClientConnectionError: Cannot connect to host 127.0.0.1:9"
    assert not error_text(RuntimeError()).endswith(": ")


def test_a_reconciliation_that_found_nothing_says_what_it_left_for_the_next_run() -> None:
    """A refund terminated seconds ago is within the grace: the operator must know why
    `reconcile` found nothing."""
    from client.render_findings import reconciliation
    from workflows.read_models import Reconciliation

    report = Reconciliation(
        run_id="rc_1", refunds=3, provider_refunds=2, findings={}, healed=0, escalated=0,
        seconds=0.1, details=[],
    )  # fmt: skip
    assert reconciliation(report, 60).endswith(
        "no findings\n(refunds changed in the last 60 s are left for the next run, --grace)"
    )
    assert reconciliation(report, 0).endswith("no findings")


def test_a_reconciliation_of_one_refund_is_not_one_refunds() -> None:
    from client.render_findings import reconciliation
    from workflows.read_models import Reconciliation

    report = Reconciliation(
        run_id="rc_1", refunds=1, provider_refunds=0, findings={}, healed=0, escalated=0,
        seconds=0.1, details=[],
    )  # fmt: skip
    assert reconciliation(report).startswith("reconciliation rc_1: 1 refund, 0 provider refunds,")
