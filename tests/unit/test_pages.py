"""The pages' pure parts: signed tracking links, CSRF tokens, the customer's language, the
progress bar, amounts typed by staff, where sign-in may send a browser, the report period,
and that the templates escape what they are given."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import TypeAdapter
from starlette.requests import Request

from api.authz import Action
from api.pages import queue, queue_filters
from api.pages.actions import Refused, minor_units, reason, within_the_refund
from api.pages.console import REJECT_NOTE_MAX_CHARS, REJECT_REASONS
from api.pages.render import environment
from api.pages.report import period
from api.pages.security import (
    CSRF_COOKIE,
    csrf_ok,
    csrf_token,
    tracking_ok,
    tracking_query,
)
from api.pages.signin import safe_next
from api.pages.tracking import pick_locale, progress
from workflows.models import StatusView, TimelineEntry
from workflows.states import Awaiting, RefundState
from workflows.vocabulary import FREE_TEXT_MAX_CHARS, FreeText

SECRET = b"s" * 32
NOW = 1_800_000_000.0


def link_parts(query: str) -> tuple[str, str]:
    e, s = (part.split("=", 1)[1] for part in query.split("&"))
    return e, s


def test_a_tracking_link_opens_its_own_refund_until_it_expires() -> None:
    e, s = link_parts(tracking_query(SECRET, "rf_a", now=NOW))
    assert tracking_ok(SECRET, "rf_a", e, s, now=NOW)
    assert not tracking_ok(SECRET, "rf_b", e, s, now=NOW)  # another refund
    assert not tracking_ok(b"t" * 32, "rf_a", e, s, now=NOW)  # another secret
    assert not tracking_ok(SECRET, "rf_a", str(int(e) + 1), s, now=NOW)  # a longer life
    assert not tracking_ok(SECRET, "rf_a", e, s, now=int(e) + 1)  # expired
    assert not tracking_ok(SECRET, "rf_a", "", "", now=NOW)


def request(cookie: str = "", origin: str | None = None) -> Request:
    headers = [(b"host", b"127.0.0.1:8080")]
    if cookie:
        headers.append((b"cookie", f"{CSRF_COOKIE}={cookie}".encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    scope: dict[str, Any] = {"type": "http", "method": "POST", "path": "/", "headers": headers}
    scope.update({"scheme": "http", "server": ("127.0.0.1", 8080), "query_string": b""})
    return Request(scope)


def test_a_form_is_accepted_with_its_browsers_token_from_this_origin_only() -> None:
    seed = "c" * 40
    token = csrf_token(SECRET, seed)
    assert csrf_ok(SECRET, request(seed), token)
    assert csrf_ok(SECRET, request(seed, "http://127.0.0.1:8080"), token)
    assert not csrf_ok(SECRET, request(seed, "https://evil.example"), token)
    assert not csrf_ok(SECRET, request("d" * 40), token)  # another browser's
    assert not csrf_ok(SECRET, request(seed), "")
    assert not csrf_ok(SECRET, request(), token)  # no cookie at all


@pytest.mark.parametrize(
    ("lang", "accept", "own", "shown"),
    [
        ("zh-CN", "en-US,en", "en", "zh-CN"),
        ("", "zh-TW,zh;q=0.9", "en", "zh-CN"),
        ("", "fr-FR,en;q=0.5", "zh-CN", "en"),
        ("", "fr-FR", "zh-CN", "zh-CN"),
        ("xx", "", "en", "en"),
        # Any tag of a language spoken here means it (a trial: zh showed English).
        ("zh", "en", "en", "zh-CN"),
        ("zh-Hans-CN", "", "en", "zh-CN"),
        ("EN-gb", "zh", "zh-CN", "en"),
        ('"><script>', "zh", "en", "zh-CN"),
    ],
)
def test_the_customers_language(lang: str, accept: str, own: str, shown: str) -> None:
    assert pick_locale(lang, accept, own) == shown


def status(state: RefundState, *moves: tuple[RefundState | None, RefundState]) -> StatusView:
    at = datetime(2026, 11, 26, tzinfo=UTC)
    timeline = [
        TimelineEntry(
            seq=i + 1, event="e", from_state=a, state=b, at=at, actor="x", source="y", reason=""
        )
        for i, (a, b) in enumerate(moves)
    ]
    return StatusView(
        refund_id="rf_1", refund_key="k", order_id="o", state=state, cancel_reason=None,
        amount=100, requested_amount=100, currency="USD", awaiting=Awaiting.NOTHING,
        escalation_level=0, policy_version="p", reason_code="damaged", channel="web",
        evidence_required=False, provider_refund_id=None, timeline=timeline, next_step="",
        eta=None, message="",
    )  # fmt: skip


def test_the_progress_bar_marks_where_the_refund_is() -> None:
    waiting = progress(status(RefundState.APPROVED), "en")
    assert [(s["label"], s["mark"]) for s in waiting] == [
        ("requested", "done"),
        ("approved", "current"),
        ("on its way", ""),
        ("paid", ""),
    ]
    paid = progress(status(RefundState.COMPLETED), "zh-CN")
    assert [s["mark"] for s in paid] == ["done"] * 4 and paid[-1]["label"] == "已退款"
    rejected = status(
        RefundState.CANCELLED,
        (None, RefundState.PENDING_REVIEW),
        (RefundState.PENDING_REVIEW, RefundState.CANCELLED),
    )
    assert [s["label"] for s in progress(rejected, "en")] == ["requested", "closed"]


def test_amounts_typed_by_staff_are_minor_units_of_the_refunds_currency() -> None:
    assert minor_units("180.5", "USD") == 18050
    assert minor_units("500", "JPY") == 500
    assert minor_units("  ", "USD") is None
    # Only digits and a point: not an exponent, not other scripts' digits, not a sign.
    for bad in ("1.001", "-3", "0", "abc", "1e3", "\u0663", "+5", "1_000", "Infinity"):
        with pytest.raises(Refused):
            minor_units(bad, "USD")
    # As the page shows amounts: the refund's own currency code may follow the number.
    assert minor_units("79000 JPY", "JPY") == 79000
    assert minor_units("180.50 usd", "USD") == 18050
    # Each refusal says what is wrong in the refund's own currency.
    said = {
        ("10.5", "JPY"): "'10.5' has too many decimals: JPY has no decimals",
        ("12.3456", "KWD"): "'12.3456' has too many decimals: KWD has 3 decimals at most",
        ("-1", "USD"): "'-1' is below zero; give what to approve, such as 180.00 USD",
        ("abc", "JPY"): "'abc' is not an amount such as 180 JPY",
        ("0", "EUR"): "'0' is nothing to approve; give more than 0 EUR",
        ("JPY", "JPY"): "'JPY' is not an amount such as 180 JPY",
        ("10 USD", "JPY"): "'10 USD' is not an amount such as 180 JPY",
    }
    for (text, currency), sentence in said.items():
        with pytest.raises(Refused) as refused:
            minor_units(text, currency)
        assert str(refused.value) == f"amount: {sentence}"


def test_an_approval_above_the_refund_is_refused_on_the_form_not_at_confirm() -> None:
    pending = status(RefundState.PENDING_REVIEW).model_copy(update={"amount": 30000})
    within_the_refund(30000, pending)  # all of it
    within_the_refund(100, pending)  # less: it decides all of it
    within_the_refund(None, pending)  # empty: the whole amount
    for typed in ("300.01", "30000"):  # the second meant as minor units
        with pytest.raises(Refused) as refused:
            within_the_refund(minor_units(typed, "USD"), pending)
        assert "more than this refund's 300.00 USD; approve at most that" in str(refused.value)


def test_a_rejection_for_another_reason_must_say_which() -> None:
    with pytest.raises(Refused, match="say why"):
        reason(Action.REJECT, "other", "  ")
    assert reason(Action.REJECT, "other", "store credit given") == "other: store credit given"
    assert reason(Action.REJECT, "no_evidence", "") == "no_evidence"


def test_the_longest_note_the_console_lets_a_reviewer_type_is_one_the_api_takes() -> None:
    fits = TypeAdapter(FreeText).validate_python
    for code in REJECT_REASONS:  # the code leads a rejection's note in the audit
        fits(reason(Action.REJECT, code, "n" * REJECT_NOTE_MAX_CHARS))
    longest = max(
        len(reason(Action.REJECT, code, "n" * REJECT_NOTE_MAX_CHARS)) for code in REJECT_REASONS
    )
    assert longest == FREE_TEXT_MAX_CHARS  # and not shorter than it needs to be
    fits(reason(Action.CANCEL, "", "n" * FREE_TEXT_MAX_CHARS))


def test_a_note_past_the_limit_is_refused_before_the_confirmation_page() -> None:
    """A trial lifted the field's maxlength: a 600-character note reached the confirmation
    page as the reason to be recorded, and failed only after Confirm."""
    with pytest.raises(Refused, match="note: 600 characters; at most 493 fit here"):
        reason(Action.REJECT, "other", "n" * 600)
    with pytest.raises(Refused, match=f"at most {FREE_TEXT_MAX_CHARS} fit"):
        reason(Action.CANCEL, "", "n" * (FREE_TEXT_MAX_CHARS + 1))


def test_sign_in_sends_a_browser_only_within_the_console() -> None:
    assert safe_next("/console/refunds/rf_1") == "/console/refunds/rf_1"
    for elsewhere in ("https://evil.example/console", "//evil.example", "/console\\@evil", "/v1"):
        assert safe_next(elsewhere) == "/console"


def test_the_report_period() -> None:
    today = datetime.now(UTC).date()
    assert period("today", "", "") == (today, today)
    assert period("7d", "", "") == (today - timedelta(days=6), today)
    assert period("today", "2026-11-20", "2026-11-01") == (date(2026, 11, 1), date(2026, 11, 20))
    assert period("today", "garbage", "") == (today, today)


def test_templates_escape_markup() -> None:
    env = environment()
    # The pages' own templates, by their names: autoescaping is chosen by file name, and a
    # template made from a string is escaped whatever that choice says.
    names = env.list_templates(extensions=["html"])
    assert "base.html" in names, names
    chooses = env.autoescape
    assert callable(chooses) and all(chooses(name) for name in names)
    page = env.from_string("<td>{{ reason }}</td>").render(reason="<script>x()</script>")
    assert page == "<td>&lt;script&gt;x()&lt;/script&gt;</td>"


@pytest.mark.parametrize(
    ("kind", "label"),
    [("review", "Decision due"), ("payment", "Money arrives by"), ("return", "Item due back by")],
)
def test_staffs_page_names_what_the_eta_is(kind: str, label: str) -> None:
    """A trial: a returned item's deadline read "Decision due" on the console."""
    page = environment().get_template("refund.html")
    assert page.filename and "s.eta_kind | eta_label" in Path(page.filename).read_text()
    assert environment().from_string("{{ k | eta_label }}").render(k=kind) == label


def test_the_queue_cursor_round_trips_and_a_forged_one_starts_at_the_top() -> None:
    due = datetime(2026, 11, 27, 6, 24, tzinfo=UTC)
    cursor = queue.encode_cursor({"due_at": due, "refund_id": "rf_" + "a" * 24})
    assert queue.decode_cursor(cursor) == (due, "rf_" + "a" * 24)
    assert queue.decode_cursor("bm90IGpzb24") is None
    assert queue.Filters(amount_min=Decimal(1)).awaiting_values() == ["reviewer", "operator"]


@pytest.mark.parametrize(
    ("amount", "currency", "applied", "said"),
    [
        ("10.50", "USD", Decimal("10.50"), None),
        ("10.5", "USD", Decimal("10.5"), None),
        ("8000.00", "JPY", Decimal(8000), None),  # trailing zeros are no decimals
        ("1.250", "KWD", Decimal("1.250"), None),
        ("1.250", "", Decimal("1.250"), None),  # some currency has 3 decimals
        ("10.005", "USD", None, "Amount from '10.005' has more decimals than an amount can:"
         " USD has 2"),
        ("80.5", "JPY", None, "Amount from '80.5' has more decimals than an amount can: JPY has 0"),
        ("0.0001", "", None, "no currency has more than 3"),
    ],
)  # fmt: skip
def test_an_amount_finer_than_the_currencys_minor_unit_is_named_not_applied(
    amount: str, currency: str, applied: Decimal | None, said: str | None
) -> None:
    read = queue_filters.read(queue_filters.Typed(amount_min=amount, currency=currency))
    assert read.filters.amount_min == applied
    assert read.filters.currency == (currency or None)  # the currency itself still applies
    if said is None:
        assert read.ignored == []
    else:
        assert len(read.ignored) == 1 and said in read.ignored[0], read.ignored


def test_a_parameter_that_is_no_filter_is_named() -> None:
    read = queue_filters.read(queue_filters.Typed(), unknown=["stat", "zzz"])
    assert read.ignored == [
        "'stat' is not a filter of the queue (did you mean 'state'?)",
        "'zzz' is not a filter of the queue",
    ]


def test_a_filter_given_twice_is_named_with_the_value_that_applies() -> None:
    typed = queue_filters.Typed(state="refunding")
    read = queue_filters.read(typed, {"state": "refunding", "cursor": "x" * 50})
    assert read.filters.state == "refunding"
    assert read.ignored == [
        "State was given more than once: only 'refunding' applies",
        f"The page marker was given more than once: only '{'x' * 40}…' applies",
    ]


def test_closed_refunds_are_found_when_their_state_is_chosen() -> None:
    """They wait for nobody, so the default "waiting for a person" would hide them all."""
    assert queue.Filters(state="completed").awaiting_values() is None
    assert queue.Filters(state="cancelled").awaiting_values() is None
    assert queue.Filters(state="pending_review").awaiting_values() == ["reviewer", "operator"]
    assert queue.Filters(state="cancelled", awaiting="reviewer").awaiting_values() == ["reviewer"]


@pytest.mark.parametrize(
    ("action", "label"),
    [("operator_paid_elsewhere", "Payment reference recorded"), ("reject", "Reason recorded")],
)
def test_the_confirmation_names_what_the_note_is(action: str, label: str) -> None:
    """Marking paid elsewhere records the payment's reference, not a reason."""
    from types import SimpleNamespace

    page = environment().get_template("confirm.html").render(
        s=SimpleNamespace(refund_id="rf_1", order_id="ord_1", state="refunding"),
        who=SimpleNamespace(actor="li", approver_role="lead", roles=["lead"]),
        action=action, label="…", amount_text="", reason="bank transfer 4711",
        amount="", code="", note="", csrf_field="csrf", csrf="x", lang="en",
    )  # fmt: skip
    assert f'<dt>{label}</dt><dd class="reason">bank transfer 4711</dd>' in page
