"""HttpRefundClient's errors carry what a program acts on besides their sentence: the HTTP
status, the problem type, when to come back, the request id (a trial: only English words
to branch on, and `vars(error) == {}`)."""

from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from client.errors import (
    InvalidRefundRequest,
    NotAuthenticated,
    RefundflowError,
    RefundNotFound,
    TemporalUnavailable,
    TryLater,
)
from client.http_client import HttpRefundClient, _problem
from tests.integration.api_support import Api

pytestmark = pytest.mark.stack


async def test_an_api_refusal_says_its_status_problem_and_request_id(api: Api) -> None:
    client = HttpRefundClient(api.base, api.token("li"))
    try:
        with pytest.raises(RefundNotFound) as missing:
            await client.status("rf_" + "0" * 24)
        with pytest.raises(InvalidRefundRequest) as bad:
            await client.review_context("not-a-refund-id")
    finally:
        await client.close()
    assert (missing.value.status, missing.value.problem) == (404, "not-found")
    assert re.fullmatch(r"[0-9a-f]{32}", missing.value.request_id or ""), missing.value.request_id
    assert missing.value.retry_after is None
    assert (bad.value.status, bad.value.problem) == (422, "bad-input")
    assert missing.value.request_id != bad.value.request_id


def test_a_rate_limit_is_try_later_with_its_seconds() -> None:
    reply = SimpleNamespace(status=429, headers={"Retry-After": "2", "X-Request-Id": "r-1"})
    body = {"type": "urn:refundflow:problem:rate-limited", "detail": "too many requests"}
    error = _problem(reply, body, "http://api/v1/refunds")  # type: ignore[arg-type]
    assert isinstance(error, TryLater)
    assert (error.status, error.problem, error.retry_after, error.request_id) == (
        429, "rate-limited", 2.0, "r-1",
    )  # fmt: skip
    assert str(error) == "too many requests (try again in 2 s)"


def test_temporal_unreachable_is_a_refundflow_error() -> None:
    """`except RefundflowError` around RefundClient.connect catches it (a trial: it did not)."""
    assert issubclass(TemporalUnavailable, RefundflowError)


async def test_a_long_running_service_gives_its_current_token_each_time(api: Api) -> None:
    """A fixed token string expires under a long-running service (a trial): a function that
    gives the current one is asked before each request, plain or async."""
    given: list[str] = []

    async def current() -> str:
        given.append(api.token("li") if len(given) == 0 else "expired.or.wrong")
        return given[-1]

    client = HttpRefundClient(api.base, current)
    try:
        assert isinstance(await client.list(limit=1), list)
        with pytest.raises(NotAuthenticated):
            await client.list(limit=1)
    finally:
        await client.close()
    assert len(given) == 2
    async with HttpRefundClient(api.base, lambda: api.token("li")) as plain:
        assert isinstance(await plain.list(limit=1), list)


@pytest.mark.parametrize("said", ["nan", "inf", "-1", "soon", "Wed, 21 Oct 2026 07:28:00 GMT"])
def test_a_retry_after_that_is_no_wait_in_seconds_is_none(said: str) -> None:
    reply = SimpleNamespace(status=503, headers={"Retry-After": said})
    body = {"type": "urn:refundflow:problem:unavailable", "detail": "busy"}
    assert _problem(reply, body, "http://api").retry_after is None  # type: ignore[arg-type]


@pytest.mark.parametrize(("status", "body"), [(503, None), (502, {"message": "bad gateway"})])
def test_a_gateways_answer_is_try_later_with_what_it_said(status: int, body: object) -> None:
    """A trial: behind a load balancer, a 503 page or a 502's JSON was a plain error with
    no status, so a program retrying TryLater never retried."""
    reply = SimpleNamespace(status=status, headers={"Retry-After": "7", "X-Request-Id": "lb-1"})
    error = _problem(reply, body, "http://api/v1/refunds")  # type: ignore[arg-type]
    assert isinstance(error, TryLater)
    assert (error.status, error.retry_after, error.request_id, error.problem) == (
        status, 7.0, "lb-1", None,
    )  # fmt: skip
    assert str(error) == f"http://api/v1/refunds answered HTTP {status}, not as the refundflow API"


def test_the_apis_own_try_again_is_not_said_twice() -> None:
    reply = SimpleNamespace(status=429, headers={"Retry-After": "1"})
    body = {"type": "urn:refundflow:problem:rate-limited", "detail": "slow down: try again in 1 s"}
    assert str(_problem(reply, body, "u")) == "slow down: try again in 1 s"  # type: ignore[arg-type]


def test_a_gateways_own_problem_is_told_by_its_status() -> None:
    reply = SimpleNamespace(status=504, headers={})
    body = {"type": "https://gateway.example/timeout", "detail": "upstream timed out"}
    error = _problem(reply, body, "u")  # type: ignore[arg-type]
    assert isinstance(error, TryLater) and error.status == 504 and error.problem is None
