"""HttpRefundClient: RefundClient's interface over the HTTP API, for services (and the CLI)
outside the trust boundary. Same method names, same return types (StatusView,
EligibilityAnswer, the read models); no Temporal or Postgres credentials, only a token.

Who acts is the token's principal: the API verifies it and takes roles from it, never from a
request. The actor arguments of RefundClient's actions (`reviewer`, `role`, `actor`,
`operator`) are accepted so that code written for RefundClient runs unchanged, but they are
not sent: the API would not believe them. Errors are RefundClient's (RefundNotFound,
RefundActionRefused, RefundConflict, InvalidRefundRequest), plus NotAuthenticated and
NotAllowed (a RefundActionRefused) for what the API's identity and authorization say, and
TryLater for a 429, 502, 503 or 504; each carries the answer's `status`, `problem`,
`retry_after` and `request_id` (client.errors.RefundflowError).
"""

from __future__ import annotations

import builtins
import inspect
import math
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

import aiohttp
from pydantic import TypeAdapter

from client.errors import (
    InvalidRefundRequest,
    NotAllowed,
    NotAuthenticated,
    RefundActionRefused,
    RefundConflict,
    RefundflowError,
    RefundNotFound,
    TryLater,
)
from client.review_context import ReviewContext
from client.settings import dev_stack_place
from workflows.eligibility import EligibilityAnswer
from workflows.models import RefundRequest, StatusView
from workflows.read_models import (
    AuditEntry,
    CustomerListedRefund,
    CustomerView,
    ListedRefund,
    OutboxEvent,
)

# An approval waits for the workflow (30 s at most), a request for its first step.
TIMEOUT = aiohttp.ClientTimeout(total=90, connect=10)
PAGE = 200
"""The API's largest page of a listing."""
_LISTED = TypeAdapter(builtins.list[ListedRefund | CustomerListedRefund])
"""A page's rows: staff's, or a customer's own (the fields tell them apart)."""
_PROBLEMS: dict[str, type[RefundflowError]] = {
    "urn:refundflow:problem:not-found": RefundNotFound,
    "urn:refundflow:problem:refused": RefundActionRefused,
    "urn:refundflow:problem:conflict": RefundConflict,
    "urn:refundflow:problem:bad-input": InvalidRefundRequest,
    "urn:refundflow:problem:unauthorized": NotAuthenticated,
    "urn:refundflow:problem:forbidden": NotAllowed,
    "urn:refundflow:problem:rate-limited": TryLater,
    "urn:refundflow:problem:unavailable": TryLater,
}
PROBLEM_PREFIX = "urn:refundflow:problem:"


ORDER_CUSTOMER = "order-customer"
"""`requested_by` for staff or a service asking for whoever placed the order: not sent, so
the API takes the customer from the order system."""
_ANSWER: TypeAdapter[StatusView | CustomerView] = TypeAdapter(StatusView | CustomerView)


TokenSource = str | Callable[[], str | Awaitable[str]]
"""An access token, or what gives the current one (asked before every request): a
long-running service's token expires, and its identity provider's client renews it."""


class HttpRefundClient:
    def __init__(
        self, api_url: str, token: TokenSource, *, session: aiohttp.ClientSession | None = None
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        self._own_session = session is None
        self._session = session

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None

    async def __aenter__(self) -> HttpRefundClient:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        err: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def _bearer(self) -> str:
        if isinstance(self._token, str):
            return self._token
        token = self._token()
        return await token if inspect.isawaitable(token) else token

    # --- requests -----------------------------------------------------------------------

    async def eligibility(self, request: RefundRequest) -> EligibilityAnswer:
        """Would this request be refunded, how much, how fast, and why (starts nothing)."""
        body = await self._call("POST", "/v1/eligibility", _body(request), _key(request))
        return EligibilityAnswer.model_validate(body)

    async def request(self, request: RefundRequest) -> StatusView | CustomerView:
        """The refund's status; a customer's token gets the customer's own view (as `track`)."""
        status, _ = await self.request_again_or_new(request)
        return status

    async def request_again_or_new(
        self, request: RefundRequest, *, first_step: bool = True
    ) -> tuple[StatusView | CustomerView, bool]:
        """As `request`, and whether the refund existed before this call (asked before).
        `first_step` False: answered as soon as the refund is started (Prefer:
        respond-async), not once it has decided who acts next."""
        reply: list[int] = []
        prefer = None if first_step else "respond-async"
        body = await self._call(
            "POST", "/v1/refunds", _body(request), _key(request), reply, prefer=prefer
        )
        return _ANSWER.validate_python(body), reply[0] == 200

    # --- reading ------------------------------------------------------------------------

    async def status(
        self, refund_id: str, *, include_timeline: bool = True, live: bool = False
    ) -> StatusView:
        params = {"live": "true"} if live else None
        body = await self._call("GET", f"/v1/refunds/{refund_id}", params=params)
        return StatusView.model_validate(body)

    async def review_context(self, refund_id: str) -> ReviewContext:
        """The order's ledger, the requester's recent refunds, an abnormal end (staff)."""
        body = await self._call("GET", f"/v1/refunds/{refund_id}/review")
        return ReviewContext.model_validate(body)

    async def list(
        self,
        *,
        state: str | None = None,
        order_id: str | None = None,
        escalated: bool = False,
        limit: int = 100,
        customer: str | None = None,
    ) -> builtins.list[ListedRefund] | builtins.list[CustomerListedRefund]:
        """Newest request first, page after page until `limit`; a customer's as they are
        told them."""
        query: dict[str, str] = {"escalated": "true" if escalated else "false"}
        query.update({k: v for k, v in (("state", state), ("order", order_id)) if v})
        if customer:
            query["customer"] = customer
        found: builtins.list[Any] = []
        while len(found) < limit:
            query["limit"] = str(min(PAGE, limit - len(found)))
            page = await self._call("GET", "/v1/refunds", params=query)
            found += _LISTED.validate_python(page["items"])
            if not page.get("next_cursor"):
                break
            query["cursor"] = page["next_cursor"]
        return found

    async def track(self, refund_id: str) -> dict[str, Any]:
        """What the customer may see of a refund: its status in their words and language."""
        body: dict[str, Any] = await self._call("GET", f"/v1/refunds/{refund_id}/track")
        return body

    async def events(self, refund_id: str) -> builtins.list[OutboxEvent]:
        body = await self._call("GET", f"/v1/refunds/{refund_id}/events")
        return TypeAdapter(builtins.list[OutboxEvent]).validate_python(body)

    async def audit(self, refund_id: str) -> builtins.list[AuditEntry]:
        body = await self._call("GET", f"/v1/refunds/{refund_id}/audit")
        trail = TypeAdapter(builtins.list[AuditEntry]).validate_python(body)
        if not trail:
            raise RefundNotFound(f"no audit trail for refund {refund_id}")
        return trail

    # --- actions (who acts: the token's principal) --------------------------------------

    async def approve(
        self,
        refund_id: str,
        reviewer: str | None = None,
        amount: int | None = None,
        role: str | None = None,
        evidence: str | None = None,
        **_: Any,
    ) -> StatusView:
        """Approve as the token's principal, in its most senior approving role."""
        body: dict[str, Any] = {} if amount is None else {"amount": amount}  # 0 is refused
        if evidence is not None:
            body["evidence"] = evidence
        return await self._act(refund_id, "approve", body)

    async def reject(
        self, refund_id: str, reviewer: str | None = None, reason: str = "", **_: Any
    ) -> StatusView:
        return await self._act(refund_id, "reject", {"reason": reason})

    async def cancel(
        self, refund_id: str, actor: str | None = None, reason: str = "", **_: Any
    ) -> StatusView | CustomerView:
        """Withdraw; a customer is answered with their own view (as `track`)."""
        answer = await self._call("POST", f"/v1/refunds/{refund_id}/cancel", {"reason": reason})
        return _ANSWER.validate_python(answer)

    async def item_received(self, refund_id: str, actor: str | None = None, **_: Any) -> StatusView:
        return await self._act(refund_id, "received", None)

    async def operator_retry(
        self, refund_id: str, operator: str | None = None, **_: Any
    ) -> StatusView:
        return await self._act(refund_id, "operator/retry", None)

    async def operator_paid_elsewhere(
        self,
        refund_id: str,
        operator: str | None = None,
        proof: str = "",
        despite_findings: bool = False,
        **_: Any,
    ) -> StatusView:
        body = {"proof": proof, "despite_findings": despite_findings}
        return await self._act(refund_id, "operator/paid-elsewhere", body)

    async def operator_cancel(
        self, refund_id: str, operator: str | None = None, reason: str = "", **_: Any
    ) -> StatusView:
        return await self._act(refund_id, "operator/cancel", {"reason": reason})

    # --- plumbing -----------------------------------------------------------------------

    async def _act(self, refund_id: str, action: str, body: dict[str, Any] | None) -> StatusView:
        answer = await self._call("POST", f"/v1/refunds/{refund_id}/{action}", body)
        return StatusView.model_validate(answer)

    async def _call(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        key: str | None = None,
        status_out: builtins.list[int] | None = None,
        params: dict[str, str] | None = None,
        prefer: str | None = None,
    ) -> Any:
        """One request; a problem becomes the error its `type` names, in one sentence."""
        bearer = (await self._bearer()).strip()  # a token file read whole ends in a newline
        headers = {"Authorization": f"Bearer {bearer}", "Accept": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        if prefer is not None:
            headers["Prefer"] = prefer
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=TIMEOUT)
        url = self.api_url + path
        try:
            async with self._session.request(
                method, url, json=body, headers=headers, params=params
            ) as reply:
                if status_out is not None:
                    status_out.append(reply.status)
                if reply.status >= 400:  # a proxy's HTML page is an answer too
                    raise _problem(reply, await _json_or_none(reply), url)
                return await reply.json(content_type=None) if reply.content_length != 0 else None
        except aiohttp.ClientConnectorError:
            raise RefundflowError(
                f"cannot reach the API at {self.api_url}: nothing answers there (is"
                f" `refundflow dev` running {dev_stack_place()}, or REFUNDFLOW_API_URL right?)"
            ) from None
        except (aiohttp.ClientConnectionError, TimeoutError) as err:
            reason = str(err) or "no answer in time"
            raise RefundflowError(f"cannot reach the API at {self.api_url}: {reason}") from None
        except ValueError:  # not JSON: not the refundflow API answering
            raise RefundflowError(f"{url} did not answer as the refundflow API") from None


_TRY_LATER = (429, 502, 503, 504)
"""Statuses a gateway or load balancer answers for an API that is busy or away. Only 429
says nothing was done: after a 502, 503 or 504 an action may have been taken (an
approval's answer waits up to 30 s, longer than some proxies): read the status first."""


async def _json_or_none(reply: aiohttp.ClientResponse) -> Any:
    try:
        return await reply.json(content_type=None) if reply.content_length != 0 else None
    except ValueError:  # not JSON: a proxy's page
        return None


def _problem(reply: aiohttp.ClientResponse, payload: Any, url: str) -> RefundflowError:
    """The error for an answer of 400 or more: the problem's own type and words, or, for
    one that is no problem of the API's (a proxy's page), its status, as TryLater where a
    gateway says the API is busy or away (a trial: a plain error, status None)."""
    retry_after = _seconds(reply.headers.get("Retry-After"))
    if isinstance(payload, dict) and "detail" in payload:
        detail, kind = str(payload["detail"]), str(payload.get("type"))
        if retry_after is not None and "try again" not in detail:  # (a trial read it twice)
            detail += f" (try again in {reply.headers['Retry-After']} s)"
        # A gateway's own problem (another `type`) is told by its status, as a page is.
        fallback = TryLater if reply.status in _TRY_LATER else RefundflowError
        error = _PROBLEMS.get(kind, fallback)(detail)
    else:
        kind = ""
        said = f"{url} answered HTTP {reply.status}, not as the refundflow API"
        error = (TryLater if reply.status in _TRY_LATER else RefundflowError)(said)
    error.status, error.retry_after = reply.status, retry_after
    error.problem = kind.removeprefix(PROBLEM_PREFIX) if kind.startswith(PROBLEM_PREFIX) else None
    error.request_id = reply.headers.get("X-Request-Id")
    return error


def _seconds(retry_after: str | None) -> float | None:
    """Retry-After in seconds (the API sends seconds; an HTTP date is not read)."""
    try:
        seconds = float(retry_after) if retry_after else None
    except ValueError:
        return None
    return seconds if seconds is not None and 0 <= seconds < math.inf else None


def _body(request: RefundRequest) -> dict[str, Any]:
    """What the API takes of a request: the key goes in Idempotency-Key; who submits it is
    the token's subject, so `submitted_by` is not sent."""
    fields = request.model_dump(mode="json", exclude_none=True)
    allowed = ("order_id", "amount", "lines", "currency", "reason_code", "channel", "locale")
    body = {k: fields[k] for k in allowed if k in fields}
    if request.requested_by != ORDER_CUSTOMER:
        body["requested_by"] = request.requested_by
    return body


def _key(request: RefundRequest) -> str:
    return request.refund_key
