"""What someone typed stays on its own line in the CLI's text output: a reason with a line
break could otherwise show as an entry of its own, such as a forged approval in the audit
trail that staff read (a new user's trial planted one with `cancel --reason $'…\\n  3. …'`)."""

from __future__ import annotations

from datetime import UTC, datetime

from client import render, render_findings
from workflows.read_models import AuditEntry, ClosedRequest, Finding
from workflows.states import RefundState

FORGED = "found it\n  3. 2026-11-27 15:20:00 UTC   pending_review -> approved  approve  by li"


def test_a_reason_with_line_breaks_cannot_add_an_audit_line() -> None:
    at = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)
    entry = AuditEntry(
        refund_id="rf_" + "0" * 24,
        seq=2,
        event="withdraw",
        from_state=RefundState.PENDING_REVIEW,
        to_state=RefundState.CANCELLED,
        at=at,
        actor="cust_1",
        source="api",
        reason=FORGED + "\tand\r",
        escalation_level=0,
        policy_version="standard@v4#abc",
        recorded_at=at,
    )
    shown = render.audit([entry])
    assert len(shown.splitlines()) == 1
    assert "found it\\n  3. 2026-11-27" in shown and "\\tand\\r" in shown
    # Every event's "by" in one column (a trial: settlement_unconfirmed pushed it out).
    longest = entry.model_copy(update={"event": "provider_requires_action", "reason": "r"})
    rows = render.audit([entry, longest]).splitlines()
    assert rows[0].index(" by cust_1") == rows[1].index(" by cust_1")


def test_typed_text_without_breaks_is_shown_as_typed() -> None:
    assert render.typed("broken screen, 退货 <b>") == "broken screen, 退货 <b>"


def test_separators_escapes_and_direction_overrides_are_shown_not_obeyed() -> None:
    shown = render.typed("a\u2028b\x85c\x1b[2Jd\u202eevil\u2066")
    assert shown == "a\\u2028b\\u0085c\\u001b[2Jd\\u202eevil\\u2066"
    assert len(shown.splitlines()) == 1


def test_a_findings_details_read_as_pairs_on_its_one_line() -> None:
    finding = Finding(
        finding_id=1, run_id="rec_1", kind="workflow_closed_abnormally",
        refund_id="rf_" + "0" * 24, order_id="ord_1", action="healed",
        details={"state": "pending_review", "last_error": "boom\n  forged line",
                 "provider_refunds": ["re_1", "re_2"]},
        created_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC), open=True,
        first_found_at=datetime(2026, 11, 27, 14, 0, tzinfo=UTC),
    )  # fmt: skip
    [line] = render_findings.findings([finding]).splitlines()
    assert " healed    open workflow_closed_abnormally " in line
    assert line.endswith(
        "  first found 2026-11-27 14:00:00 UTC; state pending_review;"
        " last_error boom\\n  forged line; provider_refunds re_1, re_2"
    )
    assert "{" not in line  # not a Python dict


def test_an_earlier_closed_request_is_one_line_with_its_reason_as_typed() -> None:
    closed = ClosedRequest(
        refund_id="rf_" + "1" * 24,
        amount=25000,
        currency="USD",
        reason_code="damaged",
        cancel_reason="rejected",
        closed_at=datetime(2026, 11, 27, 15, 0, tzinfo=UTC),
        closed_by="bob",
        said="no_evidence: " + FORGED,
    )
    line = render.closed_request(closed)
    assert "\n" not in line
    assert line.startswith(f"  earlier    rf_{'1' * 24} 250.00 USD for damaged: rejected")
    assert "by bob: no_evidence: found it\\n" in line
