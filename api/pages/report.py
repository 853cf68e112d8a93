"""The report page: `refundflow report` for a period chosen on the page (today by default),
with its chart. The chart is client/report_chart.py's self-contained page, shown in a
frame of its own under a CSP that allows its inline CSS and nothing else."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse, Response

from api.deps import state
from api.pages.security import CHART_CSP, protect
from api.pages.signin import pages, signed_in, to_signin
from client.report import build_report
from client.report_chart import render_html
from workflows.read_models import RefundReport

router = APIRouter(include_in_schema=False)
Day = Annotated[str, Query(max_length=10)]
PRESETS = {"today": 0, "7d": 6, "30d": 29}
"""Days before today each preset starts; each ends at the end of today (UTC)."""


def day(text: str) -> date | None:
    """A YYYY-MM-DD from the form; empty or malformed: not given."""
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def period(preset: str, since_text: str, until_text: str) -> tuple[date, date]:
    """[first day, last day] inclusive, in UTC; a custom range wins over a preset."""
    today = datetime.now(UTC).date()
    since, until = day(since_text), day(until_text)
    if since is not None or until is not None:  # the page names a reversed one (mistakes)
        first, last = since or until or today, until or today
        return (first, last) if first <= last else (last, first)
    return today - timedelta(days=PRESETS.get(preset, 0)), today


async def _report(request: Request, first: date, last: date) -> RefundReport:
    pool = (await state(request).refunds.store()).pool
    start = datetime.combine(first, time.min, UTC)
    end = datetime.combine(last + timedelta(days=1), time.min, UTC)
    return await build_report(pool, start, end)


def mistakes(preset: str, since_text: str, until_text: str) -> str | None:
    """What is wrong with the period asked for in the address, in one sentence (None: it is
    fine). A hand-edited address must not quietly show another period than it names."""
    wrong = [
        f"{label} {text!r} is not a day (YYYY-MM-DD)"
        for label, text in (("from", since_text), ("to", until_text))
        if text and day(text) is None
    ]
    today = datetime.now(UTC).date()
    since, until = day(since_text), day(until_text)
    wrong += [
        f"{label} {given} is after today ({today}, UTC)"
        for label, given in (("from", since), ("to", until))
        if given is not None and given > today
    ]
    if since is not None and until is not None and since > until:
        wrong.append(f"from {since} is after to {until}")
    if preset not in PRESETS:
        wrong.append(f"period {preset!r} is not one of {', '.join(PRESETS)}")
    if not wrong:
        return None
    said = "; ".join(wrong)
    return f"{said[:1].upper()}{said[1:]}: showing today."


def _ending_today(since_text: str, until_text: str) -> tuple[str, str | None]:
    """A period that ends after today ends today, said so: "to the end of the month" is a
    period the page can show so far (a trial's was refused whole, with today shown)."""
    today = datetime.now(UTC).date()
    since, until = day(since_text), day(until_text)
    if until is None or until <= today or (since is not None and since > today):
        return until_text, None
    return today.isoformat(), f"To {until} is after today: the period ends today ({today}, UTC)."


@router.get("/console/report")
async def report_page(
    request: Request,
    preset: Annotated[str, Query(max_length=8)] = "today",
    since: Day = "",
    until: Day = "",
) -> Response:
    who = await signed_in(request)
    if who is None:
        return to_signin(request)
    until, note = _ending_today(since, until)
    error = mistakes(preset, since, until)
    if error is not None:
        preset, since, until, note = "today", "", "", None
    first, last = period(preset, since, until)
    return pages(request).render(
        request,
        "report.html",
        status_code=200 if error is None else 400,
        who=who,
        error=error,
        note=note,
        first=first.isoformat(),
        last=last.isoformat(),
        preset=preset if not (day(since) or day(until)) else "",
        presets={"today": "Today", "7d": "Last 7 days", "30d": "Last 30 days"},
    )


@router.get("/console/report/chart")
async def report_chart(request: Request, since: Day = "", until: Day = "") -> Response:
    who = await signed_in(request)
    if who is None:
        return protect(HTMLResponse("sign in first", status_code=401))
    first, last = period("today", since, until)
    report = await _report(request, first, last)
    return protect(HTMLResponse(render_html(report)), CHART_CSP)
