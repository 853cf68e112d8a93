"""An operator's retry from the console that the provider refuses again: the page says the
refund still waits for an operator, not "Done: the payment is tried again." (a trial read
that banner over the refusal; the CLI exits 3 for it)."""

from __future__ import annotations

import re
import uuid

import aiohttp
import pytest

from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.helpers import eventually
from tests.integration.test_console_pages import html_page, sign_in

pytestmark = pytest.mark.stack


async def test_a_retry_refused_again_is_not_said_done(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox, faults: SandboxAdmin
) -> None:
    await faults.set_faults({"payment.refuse": "expired_card"})
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=4000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 2000, "reason_code": "damaged"}
    refund_id = str((await api.request_refund(who, body)).body["refund_id"])
    await eventually(
        lambda: api.call("GET", f"/v1/refunds/{refund_id}", as_="omar"),
        lambda reply: reply.body["awaiting"] == "operator",
    )
    page = f"/console/refunds/{refund_id}"
    assert (await sign_in(browserless, api, "omar", page))[0] == 303
    _, text = await html_page(browserless, api, page)
    csrf = re.search(r'name="csrf" value="([^"]+)"', text)
    assert csrf is not None
    form = {"csrf": csrf.group(1), "action": "operator_retry", "confirm": "yes"}
    async with browserless.post(f"{api.base}{page}/act", data=form, allow_redirects=False) as r:
        assert r.status == 303, await r.text()
        sent_to = r.headers["Location"]
    _, after = await html_page(browserless, api, sent_to)
    assert "Done: the payment is tried again." not in after
    assert "The payment was tried again and did not go through" in after, after
    assert await sandbox.refunds(order["order_id"]) == []  # refused both times: none made
