"""The bench's verdicts: a target it did not measure is said so, never "met" or "MISSED"."""

from __future__ import annotations

from bench.report import TARGETS, _findings, _verdict

LOOKUP_TARGET = "status lookup p99 <= 25 ms at 50 concurrent"


def test_lookups_fewer_than_50_at_a_time_are_not_judged() -> None:
    judged = TARGETS[LOOKUP_TARGET]
    assert judged({"status_lookup": {"concurrency_10": {"p99_ms": 3.0}}}) is None
    assert judged({"status_lookup": {"concurrency_50": {"p99_ms": 3.0}}}) is True
    assert judged({"status_lookup": {"concurrency_50": {"p99_ms": 30.0}}}) is False
    assert [_verdict(None), _verdict(True), _verdict(False)] == ["n/a   ", "met   ", "MISSED"]


def test_reconciliation_findings_name_what_is_expected() -> None:
    naive = {"provider_refunded_not_completed": 9}
    assert _findings(naive, 9).endswith("paid outside refundflow, as expected")
    other = _findings({**naive, "paid_above_capture": 1}, 9)
    assert other.startswith("provider_refunded_not_completed 9, paid_above_capture 1 (expected:")


def test_the_acknowledgement_is_judged_at_concurrency_20_only() -> None:
    judged = TARGETS["request acknowledged p99 <= 150 ms at concurrency 20"]
    figures = {"refunds": {"ack_p99_ms": 90.0}, "config": {"concurrency": 20}}
    assert judged(figures) is True
    assert judged({**figures, "config": {"concurrency": 5}}) is None
