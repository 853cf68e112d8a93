"""A console session that ended: what the browser is sent back to, and what it is told."""

from __future__ import annotations

import uuid
from urllib.parse import quote

import aiohttp
import pytest
from yarl import URL

from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.test_console_pages import html_page, sign_in

pytestmark = pytest.mark.stack


async def test_an_action_sent_once_the_session_ended_is_said_not_done(
    browserless: aiohttp.ClientSession, api: Api, sandbox: Sandbox
) -> None:
    """A trial: the session ended on the Confirm page; "Confirm" went to sign-in, which
    sent the browser back to the action's own address (POST only): a 405 in JSON, and
    nothing said the approval was not recorded. The refund's page says it once signed in
    again (an identity provider's sign-in page shows nothing of ours: a review)."""
    who = f"cust_{uuid.uuid4().hex[:8]}"
    order = await sandbox.order(amount=30000, category="general", customer_id=who)
    body = {"order_id": order["order_id"], "amount": 25000, "reason_code": "damaged"}
    refund = f"/console/refunds/{(await api.request_refund(who, body)).body['refund_id']}"
    expired = api.forged("li")["expired"]  # li's, past its expiry: a session that ended
    browserless.cookie_jar.update_cookies({"rf_session": expired}, URL(api.base))
    form = {"csrf": "x", "action": "approve", "confirm": "yes"}
    async with browserless.post(f"{api.base}{refund}/act", data=form, allow_redirects=False) as r:
        assert r.status == 303
        sent_to = r.headers["Location"]
    back = f"{refund}?done=not-done"
    assert sent_to == f"/console/signin?next={quote(back, safe='')}&ended=unsent", sent_to
    status, page = await html_page(browserless, api, sent_to)
    assert status == 200 and "so what you sent was not done: sign in" in page, page
    assert f'name="next" value="{back}"' in page
    # A page opened once the session ended says only that it ended.
    async with browserless.get(f"{api.base}{refund}", allow_redirects=False) as r:
        sent_to = r.headers["Location"]
    assert sent_to.endswith("&ended=1"), sent_to
    status, page = await html_page(browserless, api, sent_to)
    assert "Your session ended: sign in again." in page and "not done" not in page
    assert await sign_in(browserless, api, "li", back) == (303, back)
    status, page = await html_page(browserless, api, back)
    assert "What you sent before signing in was not done" in page, page
    assert 'id="state">pending_review<' in page  # nothing was approved
