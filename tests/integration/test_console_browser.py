"""The console, the customer's tracking page and the report page in a real browser
(Playwright driving Debian's Chromium): a lead approves a refund found in the queue and
the customer's link then says it is paid, in Chinese; a support member's approval above
their authority is refused on the page with nothing changed; markup in a note stays text;
axe-core finds no serious accessibility violation. A missing browser fails, never skips.

REFUNDFLOW_SCREENSHOTS=DIR saves the README's pictures there as the tests pass by them.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Browser, Page, ViewportSize, async_playwright, expect

from api.pages.console import REJECT_NOTE_MAX_CHARS
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually
from workflows.vocabulary import FREE_TEXT_MAX_CHARS

pytestmark = pytest.mark.stack
WAIT_MS = 30_000


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.fail("no chromium on PATH: ./scripts/test installs it (apt-get install chromium)")
    async with async_playwright() as p:
        launched = await p.chromium.launch(executable_path=chromium)
        try:
            yield launched
        finally:
            await launched.close()


def shoot(name: str) -> Path | None:
    folder = os.environ.get("REFUNDFLOW_SCREENSHOTS")
    return Path(folder) / f"{name}.png" if folder else None


async def picture(page: Page, name: str, full: bool = True) -> None:
    path = shoot(name)
    if path is not None:
        await page.screenshot(path=str(path), full_page=full)


async def pending(api: Api, sandbox: Sandbox, amount: int = 25000) -> tuple[str, str]:
    """(refund id, customer) of a refund above support's authority, waiting for review,
    from a customer who reads Chinese."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": amount, "reason_code": "damaged"}
    made = await api.request_refund(who, {**body, "locale": "zh-CN"})
    assert made.status == 201 and made.body["status"] == "已申请", made.body
    return str(made.body["refund_id"]), who


async def signed_in(browser: Browser, api: Api, name: str) -> Page:
    """A browser of its own for NAME, signed in through the dev sign-in page."""
    context = await browser.new_context(base_url=api.base)
    page = await context.new_page()
    await page.goto("/console")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await page.get_by_role("radio", name=re.compile(f"^{name} ")).check()
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Refunds that need a person")).to_be_visible()
    return page


async def open_from_queue(page: Page, refund_id: str, customer: str) -> None:
    await page.get_by_label("Customer").fill(customer)
    await page.get_by_role("button", name="Filter").click()
    await page.get_by_role("link", name=refund_id).click()
    await expect(page.locator("#state")).to_have_text("pending_review")


async def audit_rows(db: asyncpg.Pool, refund_id: str) -> list[Any]:
    return list(
        await db.fetch("SELECT seq, event FROM refundflow.audit WHERE refund_id = $1", refund_id)
    )


async def test_a_lead_approves_from_the_queue_and_the_customer_reads_paid_in_chinese(
    browser: Browser, api: Api, sandbox: Sandbox
) -> None:
    refund_id, customer = await pending(api, sandbox)
    page = await signed_in(browser, api, "li")
    complaints: list[str] = []  # what the browser says about the page (CSP, 404s, errors)
    page.on("console", lambda message: complaints.append(message.text))
    await picture(page, "console-queue", full=False)
    await open_from_queue(page, refund_id, customer)
    await picture(page, "console-refund")
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    await approve.get_by_role("button", name="Continue").click()
    await expect(page.locator("#confirm-amount")).to_have_text("250.00 USD")
    assert await page.locator("#confirm-partial").count() == 0  # the whole amount
    # The Confirm page stands in history as the refund's page (a trial's Back from the
    # answer met the browser's "Confirm form resubmission", ERR_CACHE_MISS).
    assert page.url.endswith(f"/console/refunds/{refund_id}"), page.url
    await page.get_by_role("button", name="Confirm: Approve").click()
    # The page follows the refund by itself: approved, paid by the provider, completed.
    await expect(page.locator("#state")).to_have_text("completed", timeout=WAIT_MS)
    await page.go_back()
    await expect(page.locator("#state")).to_have_text("completed")
    await page.go_forward()

    assert complaints == [], complaints
    link = await page.locator("#tracking-link").input_value()
    phone: ViewportSize = {"width": 390, "height": 844}  # a phone, and no staff cookie
    customer_page = await (await browser.new_context(viewport=phone)).new_page()
    await customer_page.goto(link)
    await expect(customer_page.locator("#status")).to_have_text("已退款")
    assert await customer_page.locator("html").get_attribute("lang") == "zh-CN"
    await picture(customer_page, "track-zh-CN")
    await customer_page.get_by_role("link", name="English").click()
    await expect(customer_page.locator("#status")).to_have_text("paid")
    await picture(customer_page, "track-en")
    shown = await customer_page.locator("main").inner_text()
    for internal in (r"\bli\b", r"\bapi\b", "standard@v", "lead"):  # no staff, source, policy
        assert not re.search(internal, shown), (internal, shown)
    forged = link.replace("&s=", "&s=x")
    reply = await customer_page.goto(forged)
    assert reply is not None and reply.status == 403
    await customer_page.context.close()
    await page.context.close()


async def test_support_approving_above_their_authority_is_refused_and_nothing_changes(
    browser: Browser, api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    refund_id, customer = await pending(api, sandbox)
    before = await audit_rows(db, refund_id)
    page = await signed_in(browser, api, "alice")
    await open_from_queue(page, refund_id, customer)
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    # Not offered, nor for less within her limit: approving less decides all of it (a
    # trial typed 200.00 into a form left open, to be refused after Continue).
    await expect(approve).to_contain_text("Not for you: alice (support) may approve up to")
    await expect(approve).to_contain_text("approving less decides all of it too")
    await expect(approve.get_by_role("button", name="Continue")).to_be_disabled()
    # A form sent anyway (an old page, a crafted POST) is refused by the API, nothing changes.
    token = await approve.locator('input[name="csrf"]').get_attribute("value")
    sent = await page.request.post(
        f"/console/refunds/{refund_id}/act",
        form={"csrf": token or "", "action": "approve", "amount": "150", "note": ""},
    )
    assert "(approving less than its 250.00 USD decides all of it)" in await sent.text()
    await expect(page.locator("#state")).to_have_text("pending_review")
    await page.context.close()
    # A lead may, and the confirmation says what the customer gives up.
    page = await signed_in(browser, api, "li")
    await page.goto(f"/console/refunds/{refund_id}")
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    await approve.get_by_label("Amount to approve").fill("150")
    await approve.get_by_role("button", name="Continue").click()
    await expect(page.locator("#confirm-amount")).to_have_text("150.00 USD")
    await expect(page.locator("#confirm-partial")).to_contain_text(
        "250.00 USD requested: the rest is not refunded"
    )
    await page.get_by_role("link", name="Back, change nothing").click()
    # More than the refund, such as its amount typed in minor units: refused on the form.
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    await approve.get_by_label("Amount to approve").fill("25000")
    await approve.get_by_role("button", name="Continue").click()
    await expect(page.locator("#error")).to_contain_text(
        "amount: 25000.00 USD is more than this refund's 250.00 USD; approve at most that"
    )
    assert await page.locator("#confirm-amount").count() == 0
    assert await audit_rows(db, refund_id) == before
    status = await api.call("GET", f"/v1/refunds/{refund_id}", as_="li")
    assert status.body["state"] == "pending_review"
    await page.context.close()


async def test_a_first_approval_says_a_second_person_must_approve_and_bars_a_second_go(
    browser: Browser, api: Api, sandbox: Sandbox
) -> None:
    # 1500.00 USD: above the lead's authority and above the four-eyes threshold (1000.00).
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=150000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 150000, "reason_code": "damaged"}
    made = await api.request_refund(who, body)
    assert made.status == 201, made.body
    refund_id = str(made.body["refund_id"])
    page = await signed_in(browser, api, "fang")
    await page.goto(f"/console/refunds/{refund_id}")
    await expect(page.locator("#evidence")).to_have_text("required; none recorded yet")
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    # As long as the API takes (a rejection's note leaves room for its code).
    evidence = approve.get_by_label("Evidence you checked (required)")
    await expect(evidence).to_have_attribute("maxlength", str(FREE_TEXT_MAX_CHARS))
    reject = page.locator("form.action", has=page.get_by_role("heading", name="Reject"))
    note = reject.get_by_label("Note (staff only)")
    await expect(note).to_have_attribute("maxlength", str(REJECT_NOTE_MAX_CHARS))
    # Two lines: the browser sends CRLF, which the audit keeps as one line break.
    long_link = "https://evidence.example/" + "a1b2" * 100  # one word, wider than the page
    await approve.get_by_label("Evidence you checked (required)").fill(f"photos\n{long_link}")
    await approve.get_by_role("button", name="Continue").click()
    await page.get_by_role("button", name="Confirm: Approve").click()
    await expect(page.get_by_role("status")).to_have_text(
        "Your approval is recorded. A second, different person must approve before any money moves."
    )
    await expect(page.locator("#state")).to_have_text("pending_review")
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    await expect(approve).to_contain_text("fang approved it already")
    await expect(approve.get_by_role("button", name="Continue")).to_be_disabled()
    await expect(page.locator("#evidence")).to_have_text(f"fang: photos\n{long_link}")
    # Wrapped where it must be: the page never scrolls sideways (a trial's was 5265 px wide).
    wide = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert wide <= 0, wide
    await page.context.close()

    second = await signed_in(browser, api, "mei")
    await second.goto(f"/console/refunds/{refund_id}")
    approve = second.locator("form.action", has=second.get_by_role("heading", name="Approve"))
    await approve.get_by_role("button", name="Continue").click()
    await second.get_by_role("button", name="Confirm: Approve").click()
    await expect(second.locator("#state")).to_have_text("completed", timeout=WAIT_MS)
    await second.context.close()


MARKUP = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=1</script><b>bold</b>'


async def test_continue_refuses_what_confirm_would_missing_evidence_and_a_closed_refund(
    browser: Browser, api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    """A trial reached "Confirm: Approve" of a 600.00 refund with no evidence, and "Confirm:
    Reject" of a refund completed meanwhile, each refused only after Confirm: Continue says
    so, as it does for authority."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=70000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 60000, "reason_code": "damaged"}
    refund_id = str((await api.request_refund(who, body)).body["refund_id"])
    before = await audit_rows(db, refund_id)
    page = await signed_in(browser, api, "li")
    await page.goto(f"/console/refunds/{refund_id}")
    approve = page.locator("form.action", has=page.get_by_role("heading", name="Approve"))
    evidence = approve.get_by_label("Evidence you checked (required)")
    assert await evidence.get_attribute("required") is not None  # the browser asks first
    token = await approve.locator('input[name="csrf"]').get_attribute("value") or ""
    sent = await page.request.post(
        f"/console/refunds/{refund_id}/act", form={"csrf": token, "action": "approve"}
    )
    said = await sent.text()
    assert sent.status == 422 and "evidence is required for this refund" in said, said
    assert "Confirm: Approve" not in said

    # Rejected from the page while someone else approved it meanwhile (paid: completed).
    approved = await api.call(
        "POST", f"/v1/refunds/{refund_id}/approve", as_="li", json={"evidence": "photos"}
    )
    assert approved.status == 200, approved.body
    await eventually(
        lambda: api.call("GET", f"/v1/refunds/{refund_id}", as_="li"),
        lambda reply: reply.body["state"] == "completed",
    )
    sent = await page.request.post(
        f"/console/refunds/{refund_id}/act",
        form={"csrf": token, "action": "reject", "code": "other", "note": "no"},
    )
    said = await sent.text()
    assert sent.status == 409, said
    assert "Refused: it is now completed: Reject is not possible any more" in said, said
    assert "Confirm: Reject" not in said
    events = [row["event"] for row in await audit_rows(db, refund_id)]
    assert events[: len(before)] == [row["event"] for row in before]
    assert "reject" not in events and "approve" in events, events  # the API's, nothing else
    await page.context.close()


async def test_markup_in_a_note_is_text_and_forms_need_their_csrf_token(
    browser: Browser, api: Api, sandbox: Sandbox
) -> None:
    refund_id, customer = await pending(api, sandbox)
    page = await signed_in(browser, api, "li")
    await open_from_queue(page, refund_id, customer)
    reject = page.locator("form.action", has=page.get_by_role("heading", name="Reject"))
    await reject.get_by_label("Reason").select_option("other")
    await reject.get_by_label("Note (staff only)").fill(MARKUP)
    await reject.get_by_role("button", name="Continue").click()
    await page.get_by_role("button", name="Confirm: Reject").click()
    await expect(page.locator("#state")).to_have_text("cancelled", timeout=WAIT_MS)
    await expect(page.locator("p.notice")).to_have_text("Done: rejected.")
    cell = page.locator("#audit td.reason", has_text="other:")
    await expect(cell).to_have_text(f"other: {MARKUP}")
    assert await cell.locator("b, img, script").count() == 0
    assert await page.evaluate("window.__pwned") is None
    csp = (await page.request.get(f"/console/refunds/{refund_id}")).headers
    assert "script-src 'self'" in csp["content-security-policy"]

    # The same form without its token, from a browser signed in all the same: refused.
    forged = await page.request.post(
        f"/console/refunds/{refund_id}/act", form={"action": "cancel", "note": "x"}
    )
    assert forged.status == 403 and "nothing was done" in await forged.text()
    await page.context.close()


SERIOUS = ("serious", "critical")


async def test_the_pages_have_no_serious_accessibility_violations(
    browser: Browser, api: Api, sandbox: Sandbox
) -> None:
    refund_id, customer = await pending(api, sandbox)
    axe = Axe()
    context = await browser.new_context(base_url=api.base)
    page = await context.new_page()
    await page.goto("/console/signin")
    found = {"sign-in": await axe.run(page)}
    # By keyboard alone: into the list of staff, down to fang, Enter submits.
    await page.get_by_role("radio", name=re.compile("^alice ")).focus()
    for _ in range(3):  # alice, bob, li, fang
        await page.keyboard.press("ArrowDown")
    await expect(page.get_by_role("radio", name=re.compile("^fang "))).to_be_checked()
    await page.keyboard.press("Enter")
    await expect(page.get_by_text("Signed in as fang")).to_be_visible()
    found["queue"] = await axe.run(page)
    await open_from_queue(page, refund_id, customer)
    found["refund"] = await axe.run(page)
    link = await page.locator("#tracking-link").input_value()
    await page.goto("/console/report")
    found["report"] = await axe.run(page)
    await picture(page, "console-report", full=False)
    await page.goto(link)
    found["tracking"] = await axe.run(page)
    serious = {
        name: [
            (v["id"], v["help"]) for v in result.response["violations"] if v["impact"] in SERIOUS
        ]
        for name, result in found.items()
    }
    assert serious == {name: [] for name in found}, serious
    await context.close()
