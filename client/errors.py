"""Errors a caller can act on. Each carries one clear sentence; the CLI prints just that."""

from __future__ import annotations

from typing import TYPE_CHECKING

from client.settings import dev_stack_place

if TYPE_CHECKING:  # Temporal's SDK takes a quarter second to import; the CLI's HTTP commands
    from temporalio.service import RPCError  # never need it


class RefundflowError(Exception):
    """Base class: a user-facing problem, never a crash.

    From an API answer (HttpRefundClient) it also carries what a program acts on, besides
    its sentence (a trial: only English words to branch on): `status`, the HTTP status;
    `problem`, the problem type's name (`bad-input`, `conflict`, `refused`…); `retry_after`,
    the seconds the API asked to wait (429, 503); `request_id`, the answer's X-Request-Id
    for whoever reads the API's log. None where the error came another way."""

    status: int | None = None
    problem: str | None = None
    retry_after: float | None = None
    request_id: str | None = None


class RefundNotFound(RefundflowError):
    pass


class RefundActionRefused(RefundflowError):
    """An update the workflow's validator refused; nothing was changed."""


class RefundClosed(RefundActionRefused):
    """An action on a refund its record has closed; `cancelled`: closed without paying."""

    def __init__(self, message: str, cancelled: bool) -> None:
        super().__init__(message)
        self.cancelled = cancelled


class RefundStopped(RefundActionRefused):
    """An action on a refund whose workflow Temporal ended (terminated, timed out) before
    the refund ended: nothing moves it until reconciliation closes or escalates it."""


class RefundConflict(RefundflowError):
    """A refund key reused for a different request."""


class RefundEndedElsewhere(RefundConflict):
    """The refund for this key ended in Temporal (terminated, timed out) or is past its
    retention: it will not move again; a new key makes a new request."""


class InvalidRefundRequest(RefundflowError):
    """The request cannot be a refund of that order; nothing was started."""


class NotAuthenticated(RefundflowError):
    """The API did not accept the caller's token (missing, expired, another issuer ...)."""


class TemporalUnavailable(RefundflowError):
    """Temporal could not be reached; reported as one line with what to do."""


class NotAllowed(RefundActionRefused):
    """The API's authorization refused the caller this action; nothing was changed."""


class TryLater(RefundflowError):
    """The API (or a gateway before it) asked the caller to come back: 429 (rate limited:
    nothing was done), or 502, 503, 504 (it could not finish: an action may have been taken
    all the same, so read the refund's status before sending it again); `retry_after` says
    when, if it said."""


def rpc_error(refund_id: str, err: RPCError) -> RefundflowError:
    """What a failed call to a refund's workflow means for the caller, in one sentence."""
    from temporalio.service import RPCStatusCode

    if err.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
        return RefundflowError(
            f"no answer from refund {refund_id} in time: is a worker running"
            f" (`refundflow worker`, or `refundflow dev` {dev_stack_place()})?"
        )
    if err.status == RPCStatusCode.NOT_FOUND and "namespace" in err.message.lower():
        return RefundflowError(f"Temporal: {err.message}")
    if err.status == RPCStatusCode.NOT_FOUND:
        # "workflow execution already completed", or an update that raced the workflow's
        # end ("workflow update was aborted by closing workflow"): the refund is closed.
        if "completed" in err.message or "closing workflow" in err.message:
            return RefundActionRefused(f"refused: refund {refund_id} is closed")
        return RefundNotFound(f"no refund {refund_id}")
    return RefundflowError(f"Temporal error for {refund_id}: {err.message}")


def did_not_finish(what: str, err: BaseException) -> RefundflowError:
    """A workflow run to its end that failed (reconciliation with the payment provider
    down): the deepest cause's words, not "unexpected WorkflowFailureError: Workflow
    execution failed" with the cause only in the worker's log (a trial)."""
    said = [str(getattr(err, "message", None) or err)]
    cause: object = err
    for _ in range(20):  # a chain, not a cycle
        cause = getattr(cause, "cause", None) or getattr(cause, "__cause__", None)
        if not isinstance(cause, BaseException):
            break
        said.append(str(getattr(cause, "message", None) or cause))
    words = next((w for w in reversed(said) if w.strip()), "no reason given")
    return RefundflowError(f"{what} did not finish: {words}; run it again once that is fixed")
