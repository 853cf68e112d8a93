"""Every API answer carries a request id that the API's log carries too (a trial: a 401, a
422 or a refusal left no trace in the log, and nothing came back to quote to support)."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any

import pytest

from tests.integration.api_support import Api, Reply
from tests.integration.helpers import eventually

pytestmark = pytest.mark.stack


def id_of(reply: Reply) -> str:
    return {k.lower(): v for k, v in reply.headers.items()}["x-request-id"]


def lines_with(text: str, request_id: str) -> list[dict[str, Any]]:
    lines = (json.loads(line) for line in text.splitlines() if line.startswith("{"))
    return [line for line in lines if line.get("request_id") == request_id]


async def logged(api: Api, request_id: str) -> list[dict[str, Any]]:
    """The API's log lines for one request, once its api.request line is written."""
    log = api.home / "logs" / "api.log"
    found = await eventually(
        lambda: asyncio.to_thread(log.read_text),
        lambda text: any(e["event"] == "api.request" for e in lines_with(text, request_id)),
    )
    return lines_with(found, request_id)


async def test_a_request_is_in_the_log_under_the_callers_request_id(api: Api) -> None:
    missing = "/v1/refunds/rf_" + "0" * 24
    asked = await api.call("GET", missing, as_="li", headers={"X-Request-Id": "ticket-4711.a"})
    assert asked.status == 404
    assert id_of(asked) == "ticket-4711.a"
    [line] = [e for e in await logged(api, "ticket-4711.a") if e["event"] == "api.request"]
    assert (line["method"], line["route"], line["status"]) == (
        "GET",
        "/v1/refunds/{refund_id}",
        404,
    )
    assert line["problem"] == "not-found" and line["ms"] >= 0, line
    assert "path" not in line and "detail" not in line, line  # no ids or words as sent
    # Every line written while it was handled says which request it was.
    listed = await api.call("GET", "/v1/refunds?limit=1", as_="li", headers={"X-Request-Id": "l-1"})
    assert listed.status == 200 and id_of(listed) == "l-1"
    said = await logged(api, "l-1")
    assert [e["event"] for e in said] == ["authz.decision", "api.request"], said
    assert "problem" not in said[-1]


@pytest.mark.parametrize("sent", [None, "", "has spaces", "x" * 65, "ünïcode"])
async def test_without_a_plain_request_id_the_api_makes_one(api: Api, sent: str | None) -> None:
    headers = {} if sent is None else {"X-Request-Id": sent}
    answered = await api.call("GET", "/v1/refunds", token="not.a.jwt", headers=headers)
    assert answered.status == 401
    assert re.fullmatch(r"[0-9a-f]{32}", id_of(answered)), answered.headers


async def test_a_misspelled_scope_is_refused_and_logged_with_who_and_why(api: Api) -> None:
    """A trial: the 403 said why, the log only 'forbidden' (docs/identity.md: every refusal
    is logged with its real reason)."""
    token = api.token("checkout", scope="refund:write")
    refused = await api.call("GET", "/v1/refunds", token=token, headers={"X-Request-Id": "mis-1"})
    assert refused.status == 403 and "did you mean 'refunds:write'?" in refused.body["detail"]
    said = await logged(api, "mis-1")
    [decision] = [e for e in said if e["event"] == "authz.decision"]
    assert (decision["subject"], decision["allowed"]) == ("checkout", False), decision
    assert "refund:write" in decision["reason"], decision
