"""The pages' boundaries over plain HTTP (no browser needed): nothing for staff without a
staff session, sign-in only for staff and only back into the console, a tracking link
that opens its own refund only while its signature and expiry hold, and the headers
every page carries."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from yarl import URL

from api.pages.queue import PAGE_SIZE
from api.pages.security import tracking_query
from api.pages.settings import dev_secret
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually

pytestmark = pytest.mark.stack


async def sign_in(http: aiohttp.ClientSession, api: Api, name: str, next_: str) -> tuple[int, str]:
    status, location, _ = await sign_in_answer(http, api, name, next_)
    return status, location


async def sign_in_answer(
    http: aiohttp.ClientSession, api: Api, name: str, next_: str = "/console"
) -> tuple[int, str, str]:
    """(status, where it sends the browser, the page it answers with)."""
    async with http.get(f"{api.base}/console/signin") as page:
        assert page.status == 200
        assert "script-src 'self'" in page.headers["Content-Security-Policy"]
        assert page.headers["Referrer-Policy"] == "no-referrer"
        csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
    assert csrf is not None
    form = {"csrf": csrf.group(1), "name": name, "next": next_}
    async with http.post(f"{api.base}/console/signin", data=form, allow_redirects=False) as answer:
        return answer.status, answer.headers.get("Location", ""), await answer.text()


async def html_page(http: aiohttp.ClientSession, api: Api, path: str) -> tuple[int, str]:
    """(status, the page's text unescaped) of an HTML page at `path`."""
    async with http.get(f"{api.base}{path}") as r:
        assert r.content_type == "text/html", (path, r.status, r.content_type)
        return r.status, html.unescape(await r.text())


async def test_the_console_takes_names_as_the_cli_does(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    """A typo is not a customer called alcie: the closest member is suggested, as
    `refundflow --as alcie` does; a member's name in capitals is the member."""
    status, _, page = await sign_in_answer(browserless, api, "alcie")
    assert status == 400 and "alcie is not in the staff directory; did you mean alice?" in page
    status, _, page = await sign_in_answer(browserless, api, "cust_42")
    assert status == 400 and "cust_42 is not a member of staff" in page
    # The list to choose from again, not "sign-in is not configured" (a trial).
    assert 'value="alice"' in page and "not configured" not in page, page
    assert (await sign_in_answer(browserless, api, "Alice"))[:2] == (303, "/console")


async def test_the_console_is_for_signed_in_staff_only(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    async with browserless.get(f"{api.base}/console", allow_redirects=False) as r:
        assert r.status == 303 and r.headers["Location"].startswith("/console/signin")
    assert (await sign_in(browserless, api, "cust_42", "/console"))[0] == 400
    assert (await sign_in(browserless, api, "warehouse", "/console"))[0] == 400
    # No name chosen: the page says so (it was FastAPI's JSON, a trial).
    status, _, page = await sign_in_answer(browserless, api, "  ")
    assert status == 400 and "Choose who you sign in as." in page, page
    status, location = await sign_in(browserless, api, "fang", "https://evil.example/console")
    assert (status, location) == (303, "/console")  # never back out of the console
    session = next(c for c in browserless.cookie_jar if c.key == "rf_session")
    assert session["httponly"] and session["samesite"].lower() == "strict"
    async with browserless.get(f"{api.base}/console") as r:
        assert r.status == 200 and "Refunds that need a person" in await r.text()
        assert r.headers["X-Frame-Options"] == "DENY"

    # A customer's own valid token in the cookie opens nothing either.
    browserless.cookie_jar.clear()
    browserless.cookie_jar.update_cookies({"rf_session": api.token("cust_42")}, URL(api.base))
    async with browserless.get(f"{api.base}/console", allow_redirects=False) as r:
        assert r.status == 303


async def test_the_queue_pages_soonest_deadline_first(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    made = []
    for _ in range(PAGE_SIZE + 1):  # each on an order of its own, each waiting for review
        order = await sandbox.order(amount=30000, category="general", customer_id=who)
        body = {"order_id": order["order_id"], "amount": 9000, "reason_code": "damaged"}
        made.append((await api.request_refund(who, body)).body["refund_id"])
    assert (await sign_in(browserless, api, "bob", "/console"))[0] == 303
    seen: list[str] = []
    url = f"{api.base}/console?customer={who}"
    for _ in range(2):
        async with browserless.get(url) as r:
            page = await r.text()
        seen += re.findall(r'<th scope="row"><a href="/console/refunds/(rf_[0-9a-f]+)">', page)
        more = re.search(r'href="(/console\?[^"]*cursor=[^"]+)">Next page', page)
        if more is None:
            break
        url = api.base + more.group(1).replace("&amp;", "&")
    # Requested one after another under one policy: due one after another, oldest first.
    assert seen == made, (len(seen), len(made))
    # Whose each refund is, under its order (from the status the refund recorded).
    assert '<th scope="col">Order, customer</th>' in page and f"<br>{who}</td>" in page


async def test_the_queue_compares_amounts_within_a_currency_and_says_what_it_ignored(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    made = {}
    for currency, amount in (("JPY", 80000), ("USD", 80000)):  # both wait for a reviewer
        order = await sandbox.order(amount=amount, currency=currency, customer_id=who)
        body = {"order_id": order["order_id"], "amount": amount, "reason_code": "damaged"}
        made[currency] = (await api.request_refund(who, body)).body["refund_id"]
    assert (await sign_in(browserless, api, "bob", "/console"))[0] == 303

    async def listed(query: str) -> tuple[set[str], str]:
        async with browserless.get(f"{api.base}/console?customer={who}&{query}") as r:
            page = await r.text()
        found = re.findall(r'<th scope="row"><a href="/console/refunds/(rf_[0-9a-f]+)">', page)
        return set(found), page

    # 800.00 USD and 80,000 yen both lie between 500 and 90000 "of something".
    assert (await listed("amount_min=500&amount_max=90000"))[0] == set(made.values())
    assert (await listed("amount_min=500&amount_max=90000&currency=jpy"))[0] == {made["JPY"]}
    found, page = await listed("amount_min=abc&currency=zzz")
    assert found == set(made.values())  # nothing applied, and the page says so
    assert (
        html.unescape(page).count(
            "Not applied: Amount from 'abc' is not a number (an amount in the currency's units,"
            " such as 150);"
            " Currency 'zzz' is not a currency code such as USD."
        )
        == 1
    )
    # A state, a waiting-for or an id that cannot be one: said too, not silently dropped.
    found, page = await listed("state=bogus&awaiting=nobody&order=a%20b")
    assert found == set(made.values())
    said = html.unescape(page)
    assert "State 'bogus' is not one of pending_review, approved," in said
    assert "Waiting for 'nobody' is not a choice of the list" in said
    assert "Order 'a b' is not an id" in said and 'class="warning"' in said
    # What broke the page, or was applied or dropped without a word (the second trial).
    found, page = await listed("amount_min=1e999&channel=fax&escalated=maybe&cursor=garbage")
    said = html.unescape(page)
    assert found == set(made.values())  # none of them applied: the first page of everything
    assert "Amount from '1e999' is more than any refund" in said
    assert "Channel 'fax' is not one of web, app, support" in said
    assert "Escalated 'maybe' is neither yes nor no" in said
    assert "The page marker is not one this console gave out" in said
    assert "(continued)" not in said
    found, page = await listed(f"order={'o' * 1000}")  # pasted too much: named, cut short
    assert found == set(made.values())
    assert f"Order '{'o' * 40}…' is not an id (up to 64" in html.unescape(page)
    # Bounds that cannot both hold: neither applied, as "Not applied" says (a trial saw
    # "Not applied" above "Nothing here").
    found, page = await listed("amount_min=300&amount_max=100")
    assert found == set(made.values()), page
    assert "Not applied: Amount from 300 is more than Amount to 100: nothing could" in page
    found, page = await listed("amount_to=100")  # as the form labels it: amount_max meant
    assert "'amount_to' is not a filter of the queue (did you mean 'amount_max'?)" in (
        html.unescape(page)
    )
    # A closed state waits for nobody: the form says "anyone" and the heading what is
    # listed (a trial read "a person" and "Refunds that need a person" above closed ones).
    found, page = await listed("state=completed&awaiting=person")
    said = html.unescape(page)
    assert '<option value="any" selected>' in said and "<h1>Refunds</h1>" in said, said
    assert "Not applied" not in said
    found, page = await listed("amount_min=-5")
    assert "Amount from '-5' is below 0" in html.unescape(page)
    found, page = await listed(f"customer={who.upper()}&channel=web")  # ids are exact
    said = html.unescape(page)
    assert "Customer ids are exact: did you mean" in said and f">{who}</a>?" in said
    meant = re.search(r'did you mean <a href="([^"]+)">', said)
    assert meant is not None and "channel=web" in meant.group(1), said  # the other filters
    # Two states are not both applied, and a tenth of a yen is no amount (the second trial).
    found, page = await listed("state=approved&state=pending_review&currency=JPY&amount_min=0.1")
    said = html.unescape(page)
    assert found == {made["JPY"]}, said  # pending_review, in yen, from any amount
    assert "State was given more than once: only 'pending_review' applies" in said
    assert "Amount from '0.1' has more decimals than an amount can: JPY has 0" in said
    found, page = await listed("stat=refunding")  # a typo: named, not silently dropped
    assert "'stat' is not a filter of the queue (did you mean 'state'?)" in html.unescape(page)


async def test_a_tracking_link_opens_its_refund_only_while_signed_and_unexpired(
    http: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged"}
    made = await api.request_refund(who, body)
    refund_id = made.body["refund_id"]
    withdrawn = await api.call(
        "POST", f"/v1/refunds/{refund_id}/cancel", as_=who, json={"reason": "found it"}
    )
    assert withdrawn.status == 200, withdrawn.body
    query = tracking_query(dev_secret(api.home), refund_id)
    async with http.get(f"{api.base}/track/{refund_id}?{query}&lang=zh-CN") as r:
        page = await r.text()
        assert r.status == 200 and "已关闭" in page and 'lang="zh-CN"' in page
        assert "default-src 'none'" in r.headers["Content-Security-Policy"]
        assert "found it" not in page  # the customer's own reason is not shown back
    # A language tag longer or odder than the page's own still opens the link (a trial:
    # zh-Hans-CN answered "this link has expired").
    for lang, shown in (
        ("zh-Hans-CN", "zh-CN"),
        ("%22%3E%3Cscript%3E", "en"),
        ("en-" + "a" * 200, "en"),
    ):
        async with http.get(f"{api.base}/track/{refund_id}?{query}&lang={lang}") as r:
            page = await r.text()
            assert r.status == 200 and f'lang="{shown}"' in page, (lang, r.status)
            assert "<script>" not in page
    other = f"rf_{'0' * 24}"
    for wrong in (f"{refund_id}?e=1&s=x", f"{other}?{query}", f"{refund_id}?{query}x"):
        async with http.get(f"{api.base}/track/{wrong}") as r:
            assert r.status == 403, wrong
    async with http.get(f"{api.base}/console/refunds/{refund_id}/version") as r:
        assert r.status == 401  # the poller answers staff only


async def test_a_wrong_address_is_a_page_and_a_pasted_id_finds_its_refund(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    """A browser is answered in HTML, as the pages are (the API's paths keep their JSON);
    an id in capitals or with spaces is the same refund, as in the CLI."""
    await sign_in(browserless, api, "li", "/console")
    refund_id = "rf_" + uuid.uuid4().hex[:24]
    pasted = f"%20{refund_id.upper()}%20"
    async with browserless.get(f"{api.base}/console/refunds/{pasted}", allow_redirects=False) as r:
        assert (r.status, r.headers["Location"]) == (303, f"/console/refunds/{refund_id}")
    for path, says in (
        ("/console/refunds/rf_nope", "'rf_nope' is not a refund id"),
        ("/console/nothing", "There is no page at /console/nothing"),
        ("/track/rf_nope", "This link has expired or is not valid"),
    ):
        status, page = await html_page(browserless, api, path)
        assert status == 404 and says in page, (path, status, page)
    # A query past what the page reads is a page too (a filter it reads and cannot apply is
    # named on the queue itself: test_the_queue_compares_amounts_…).
    status, page = await html_page(browserless, api, f"/console?state={'x' * 3000}")
    assert status == 422 and "state" in page, page
    async with browserless.get(f"{api.base}/v1/refunds/rf_nope") as r:
        assert r.content_type == "application/problem+json"


async def test_a_request_asked_again_after_a_rejection_shows_its_reviewer_the_first_answer(
    api: Api, sandbox: Sandbox, browserless: aiohttp.ClientSession
) -> None:
    """A trial: rejected, then asked again under a new key, and the second reviewer saw
    nothing of the first answer. The review context (API, console, CLI) now lists it."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged"}
    first = (await api.request_refund(who, body)).body["refund_id"]
    rejected = await api.call(
        "POST", f"/v1/refunds/{first}/reject", as_="bob", json={"reason": "photos show no damage"}
    )
    assert rejected.status == 200, rejected.body
    again = await api.request_refund(who, body)  # a new key: a new request
    second = again.body["refund_id"]
    assert again.status == 201 and second != first
    review = await api.call("GET", f"/v1/refunds/{second}/review", as_="li")
    [closed] = review.body["closed_requests"]
    assert (closed["refund_id"], closed["cancel_reason"], closed["closed_by"]) == (
        first, "rejected", "bob"
    )  # fmt: skip
    assert "photos show no damage" in closed["said"] and closed["amount"] == 25000
    assert (await sign_in(browserless, api, "li", f"/console/refunds/{second}"))[0] == 303
    async with browserless.get(f"{api.base}/console/refunds/{second}") as r:
        page = html.unescape(await r.text())
    assert "Earlier requests on this order that closed without paying" in page
    assert first in page and "photos show no damage" in page


async def test_a_refund_with_the_provider_is_not_shown_overdue(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox, faults: Any
) -> None:
    """The queue's "Due" column of a refund no person waits on (the provider pays it) said
    when it started waiting, which read as long overdue (a trial)."""
    await faults.set_faults({"payment.pending_rate": "1", "payment.settle_after_ms": "60000"})
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=2000, customer_id=who)
    body = {"order_id": order["order_id"], "amount": 2000, "reason_code": "damaged"}
    made = (await api.request_refund(who, body)).body["refund_id"]
    assert (await sign_in(browserless, api, "bob", "/console"))[0] == 303

    async def row() -> str:
        async with browserless.get(f"{api.base}/console?customer={who}&awaiting=any") as r:
            page = await r.text()
        found = re.search(rf"{made}</a></th>\s*<td>(.*?)</td>", page, re.S)
        return found.group(1) if found else ""

    due = await eventually(row, lambda cell: "payment provider" in cell)
    assert due.startswith("not on us: waiting for the payment provider since <time"), due

    # One the provider refused waits for an operator: due now, not at a time gone by that
    # reads as a missed deadline (a trial; its status says no ETA).
    await faults.set_faults({"payment.refuse": "expired_card"})
    order = await sandbox.order(amount=2000, customer_id=who)
    body = {"order_id": order["order_id"], "amount": 2000, "reason_code": "damaged"}
    made = (await api.request_refund(who, body)).body["refund_id"]
    due = await eventually(row, lambda cell: "operator" in cell)
    # No "since": the row's last change (a daily reminder) is not when it began (a review).
    assert due == "now: an operator decides", due


async def test_a_report_period_the_page_cannot_read_is_named_not_replaced(
    browserless: aiohttp.ClientSession, api: Api
) -> None:
    """A hand-edited address (a trial: `?since=garbage`) showed today as if it had been
    asked for: the page now says what it could not read, and that it shows today."""
    await sign_in(browserless, api, "li", "/console")
    for query, says in (
        ("since=garbage", "From 'garbage' is not a day (YYYY-MM-DD): showing today."),
        ("since=2026-01-01&until=2026-13-40", "To '2026-13-40' is not a day"),
        ("preset=99d", "Period '99d' is not one of today, 7d, 30d: showing today."),
        ("since=2026-11-20&until=2026-11-01", "From 2026-11-20 is after to 2026-11-01"),
        ("since=2999-01-01", "From 2999-01-01 is after today ("),
    ):
        status, page = await html_page(browserless, api, f"/console/report?{query}")
        assert status == 400 and says in page, (query, page)
    period = "since=2026-01-01&until=2026-01-31"
    status, page = await html_page(browserless, api, f"/console/report?{period}")
    assert status == 200 and 'role="alert"' not in page
    assert period in page  # the chart shows that period
    # A period that ends after today ends today, said so (it was refused whole, a trial).
    today = datetime.now(UTC).date()
    status, page = await html_page(
        browserless, api, f"/console/report?since={today - timedelta(days=3)}&until=2999-12-31"
    )
    assert status == 200 and 'role="alert"' not in page, page
    assert f"To 2999-12-31 is after today: the period ends today ({today}, UTC)." in page
    assert f"since={today - timedelta(days=3)}&until={today}" in page  # the chart's


async def test_a_request_held_back_as_asked_twice_is_not_shown_approved_automatically(
    api: Api, sandbox: Sandbox, browserless: aiohttp.ClientSession
) -> None:
    """A trial: the same request under another key waits for a reviewer (the CLI says so),
    and the console's rule table read "Approved automatically", the earlier refund nowhere:
    a reviewer would pay it again. The table is the refund's own decision now."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=4000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 2000, "reason_code": "damaged"}
    first = await api.request_refund(who, body)
    assert first.status == 201, first.body
    again = await api.request_refund(who, body)  # another key: the same request twice?
    second = again.body["refund_id"]
    assert (await sign_in(browserless, api, "li", f"/console/refunds/{second}"))[0] == 303
    status, page = await html_page(browserless, api, f"/console/refunds/{second}")
    assert status == 200
    policy = page[page.index('id="h-policy"') : page.index('id="h-timeline"')]
    said = rf"Refund {first.body['refund_id']} \((paid|open)\) asked for the same 20.00 USD"
    assert re.search(said, policy), policy
    assert "Approved automatically" not in policy, policy
    # Nor "passed" beside it (a trial scanned the column all green).
    row = re.search(r'<th scope="row">auto-approve</th><td class="(\w*)">(.*?)</td>', policy)
    assert row is not None and row.groups() == ("", "no: a person decides"), policy
