"""A support lead's day in the console (a trial's findings): the queue puts refunds past
their review SLA first, as overdue since it (sorted by each refund's next timer, one
escalated twice was due at its expiry and came after every refund within its SLA); a
refund is found from the queue's form; two reviews of one request name each other; an
agent reads in English what a customer was told in another language."""

from __future__ import annotations

import json
import re
import uuid

import aiohttp
import asyncpg
import pytest

from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import run_cli
from tests.integration.test_console_pages import html_page, sign_in
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


async def test_a_refund_past_its_sla_comes_first_and_says_overdue(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    made = []
    for _ in range(2):
        order = await sandbox.order(amount=30000, category="general", customer_id=who)
        body = {"order_id": order["order_id"], "amount": 9000, "reason_code": "damaged"}
        made.append((await api.request_refund(who, body)).body["refund_id"])
    fresh, late = made
    # The later request, as it stands 50 hours on: escalated twice (its next timer is the
    # expiry), its SLA long past.
    await db.execute(
        "UPDATE refundflow.refund_status SET requested_at = requested_at - interval '50 hours',"
        " escalation_level = 2 WHERE refund_id = $1",
        late,
    )
    assert (await sign_in(browserless, api, "bob", "/console"))[0] == 303
    _, page = await html_page(browserless, api, f"/console?customer={who}")
    rows = re.findall(
        r'<a href="/console/refunds/(rf_[0-9a-f]+)">.*?</th>\s*<td>(.*?)</td>', page, re.S
    )
    assert [refund for refund, _ in rows] == [late, fresh], rows
    due = dict(rows)
    assert due[late].startswith('<strong class="overdue">overdue</strong> since <time'), due
    assert "overdue" not in due[fresh], due


async def test_finding_a_refund_from_the_queue_form(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    """A trial: a refund id pasted into the Order field, an order id in capitals, a
    customer whose one refund is completed: each answered "no refund matches", nothing
    more."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=2000, customer_id=who)
    body = {"order_id": order["order_id"], "amount": 2000, "reason_code": "damaged"}
    paid = (await api.request_refund(who, body)).body["refund_id"]  # auto-approved
    assert (await sign_in(browserless, api, "bob", "/console"))[0] == 303
    for field in ("order", "customer"):
        async with browserless.get(
            f"{api.base}/console?{field}=%20{paid.upper()}%20", allow_redirects=False
        ) as r:
            assert (r.status, r.headers["Location"]) == (303, f"/console/refunds/{paid}")
    _, page = await html_page(browserless, api, f"/console?customer={who}")
    assert "Nothing here: no refund matches." in page
    assert "Only refunds waiting for a person are listed" in page, page
    shown = re.search(r'href="(/console\?[^"]*)" id="every-state"', page)
    assert shown is not None
    _, every = await html_page(browserless, api, shown.group(1).replace("&amp;", "&"))
    assert f'href="/console/refunds/{paid}"' in every
    _, page = await html_page(browserless, api, f"/console?customer={order['order_id']}")
    assert "reads as an order id" in page and "look it up as an order" in page, page
    upper = order["order_id"].upper()
    _, page = await html_page(browserless, api, f"/console?order={upper}&awaiting=any")
    assert "Order ids are exact: did you mean" in page and order["order_id"] in page, page


async def test_two_reviews_of_the_same_request_name_each_other(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox, stack: DevStack
) -> None:
    """A trial: one shoe of two asked for twice under two keys, each in review (the policy
    would approve neither alone, so nothing held either back): neither page named the
    other, and two reviewers could pay both."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    shoes = [
        {"sku": "SHOE", "quantity": 2, "unit_price": 30000, "category": "general"},
        {"sku": "SOCK", "quantity": 1, "unit_price": 30000, "category": "general"},
    ]
    order = await sandbox.order(lines=shoes, customer_id=who)
    body = {"order_id": order["order_id"], "lines": [{"sku": "SHOE", "quantity": 1}],
            "reason_code": "damaged"}  # fmt: skip
    first, second = [(await api.request_refund(who, body)).body["refund_id"] for _ in range(2)]
    other = {**body, "lines": [{"sku": "SOCK", "quantity": 1}]}
    third = (await api.request_refund(who, other)).body  # not alike: another line
    assert (await sign_in(browserless, api, "li", "/console"))[0] == 303
    for mine, theirs in ((first, second), (second, first)):
        _, page = await html_page(browserless, api, f"/console/refunds/{mine}")
        alike = re.search(r'<p class="warning" id="alike">(.*?)</p>', page, re.S)
        assert alike is not None and theirs in alike.group(1), page
        assert third["refund_id"] not in alike.group(1)
    code, shown, notes = await run_cli(stack.env(), "--as", "li", "--json", "status", second)
    assert code == 0 and json.loads(shown)["alike_requests"] == [first], shown
    assert f"the same request twice? {first} of this order asks for the same" in notes


async def test_an_agent_reads_in_english_what_a_chinese_customer_was_told(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged",
            "locale": "zh-CN"}  # fmt: skip
    made = (await api.request_refund(who, body)).body["refund_id"]
    assert (await sign_in(browserless, api, "li", f"/console/refunds/{made}"))[0] == 303
    _, page = await html_page(browserless, api, f"/console/refunds/{made}")
    english = re.search(r'<details id="in-english">(.*?)</details>', page, re.S)
    assert english is not None, page
    assert "Your refund of 250.00 USD is waiting for review" in english.group(1), english.group(1)
    assert "审核" in page  # and still what they read, in their language
    who_en = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who_en)
    made = (await api.request_refund(who_en, {**body, "order_id": order["order_id"],
                                               "locale": "en"})).body["refund_id"]  # fmt: skip
    _, page = await html_page(browserless, api, f"/console/refunds/{made}")
    assert 'id="in-english"' not in page


async def test_evidence_still_owed_does_not_read_passed(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    """A trial: 'evidence: passed: Evidence is required above 500.00 USD' of a refund with
    none recorded read as if it had been checked."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=90000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 90000, "reason_code": "damaged"}
    made = (await api.request_refund(who, body)).body["refund_id"]
    assert (await sign_in(browserless, api, "li", f"/console/refunds/{made}"))[0] == 303
    _, page = await html_page(browserless, api, f"/console/refunds/{made}")
    row = re.search(r'<th scope="row">evidence</th><td class="(\w+)">(.*?)</td>', page)
    assert row is not None and row.groups() == ("fail", "required: none recorded yet"), page
    # Not of a refund the policy declined: nobody reviews it (a trial).
    late = await sandbox.order(amount=90000, customer_id=who, delivered_days_ago=45)
    body = {"order_id": late["order_id"], "amount": 90000, "reason_code": "damaged"}
    declined = (await api.request_refund(who, body)).body["refund_id"]
    _, page = await html_page(browserless, api, f"/console/refunds/{declined}")
    row = re.search(r'<th scope="row">evidence</th><td class="(\w+)">(.*?)</td>', page)
    assert row is not None and row.group(2) == "passed", page
