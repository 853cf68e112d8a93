"""`answer_within`: the first-step update's wait. The SDK ends a cancelled update call with
its own error; a caller cancelled from outside (Ctrl-C, SIGTERM, a client gone) must leave no
"Task exception was never retrieved" behind, and a slow call is a TimeoutError."""

from __future__ import annotations

import asyncio
import gc
from datetime import timedelta
from typing import Any

import pytest
from temporalio.api.common.v1 import Memo
from temporalio.api.enums.v1 import UpdateWorkflowExecutionLifecycleStage
from temporalio.api.workflowservice.v1 import (
    DescribeWorkflowExecutionResponse,
    ExecuteMultiOperationResponse,
)
from temporalio.client import Client
from temporalio.service import ConnectConfig, RPCError, RPCStatusCode

from client.errors import RefundflowError
from client.policy_source import load_policy
from client.pydantic_conversion import refundflow_data_converter
from client.start_outcome import with_start_noted
from client.starting import answer_within, start_for_first_step
from tests.unit.tv_order import ORDER, POLICIES
from workflows.models import RefundLineRequest, RefundRequest, RefundWorkflowInput
from workflows.validation import resolve_request


class SdkCancelled(Exception):
    """What the SDK raises when its update call is cancelled."""


async def _slow_sdk_call(seconds: float = 10.0) -> str:
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError as err:
        raise SdkCancelled("Timeout or cancellation waiting for update") from err
    return "answered"


def _unread_errors(loop: asyncio.AbstractEventLoop) -> list[str]:
    reported: list[str] = []

    def handler(_loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        reported.append(context["message"])

    loop.set_exception_handler(handler)
    return reported


async def test_a_cancelled_caller_leaves_no_unread_error() -> None:
    reported = _unread_errors(asyncio.get_running_loop())
    callers = [asyncio.create_task(answer_within(_slow_sdk_call(), 5)) for _ in range(3)]
    await asyncio.sleep(0.05)
    for caller in callers:
        caller.cancel()
    for caller in callers:
        with pytest.raises(asyncio.CancelledError):
            await caller
    del callers, caller
    await asyncio.sleep(0.05)
    gc.collect()
    assert reported == []


async def test_an_answer_in_time_is_returned() -> None:
    assert await answer_within(_slow_sdk_call(0.01), 5) == "answered"


async def test_a_slow_call_is_cancelled_and_a_timeout() -> None:
    reported = _unread_errors(asyncio.get_running_loop())
    with pytest.raises(TimeoutError):
        await answer_within(_slow_sdk_call(), 0.05)
    gc.collect()
    assert reported == []


class _NoAnswer:
    """A Temporal front end that never answers (the network stalls): the request is
    cancelled while the SDK still waits for the start's response."""

    async def execute_multi_operation(self, *_args: Any, **_kwargs: Any) -> None:
        await asyncio.sleep(100)


class _StalledService:
    workflow_service = _NoAnswer()
    config = ConnectConfig(target_host="127.0.0.1:1", identity="test")


def _client(service: object) -> Client:
    """The SDK's own client, over a stand-in front end, with the converter workers use."""
    return Client(
        service,  # type: ignore[arg-type]
        namespace="default",
        data_converter=refundflow_data_converter,
    )


def _a_refund_input() -> RefundWorkflowInput:
    request = RefundRequest(
        refund_key="k1", order_id="ord_1", lines=[RefundLineRequest(sku="TV", quantity=1)],
        reason_code="damaged", channel="web", requested_by="cust_1",
    )  # fmt: skip
    return RefundWorkflowInput(
        refund_id="rf_test", request=request, order=ORDER,
        resolved=resolve_request(request, ORDER), policy=load_policy(POLICIES, "standard-v2"),
    )  # fmt: skip


async def test_a_first_step_request_cancelled_mid_start_leaves_nothing_unread() -> None:
    """The SDK sets the start's own outcome too (CancelledError) once cancelled: read."""
    reported = _unread_errors(asyncio.get_running_loop())
    temporal = _client(_StalledService())
    asking = asyncio.create_task(
        start_for_first_step(temporal, _a_refund_input(), "refunds", timedelta(seconds=5))
    )
    await asyncio.sleep(0.05)
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    del asking
    await asyncio.sleep(0.05)
    gc.collect()
    assert reported == []


class _AlreadyThere:
    """A front end answering that the refund exists already (another caller started it)."""

    async def execute_multi_operation(self, *_args: Any, **_kwargs: Any) -> None:
        raise RPCError("workflow already started", RPCStatusCode.ALREADY_EXISTS, b"")

    async def describe_workflow_execution(self, *_args: Any, **_kwargs: Any) -> None:
        raise RPCError("not found", RPCStatusCode.NOT_FOUND, b"")


class _ExistingService(_StalledService):
    workflow_service = _AlreadyThere()  # type: ignore[assignment]


async def test_a_refund_that_existed_already_leaves_nothing_unread() -> None:
    """The SDK sets the start's outcome to the same error: read, though nobody awaits it."""
    reported = _unread_errors(asyncio.get_running_loop())
    temporal = _client(_ExistingService())
    answer = await start_for_first_step(
        temporal, _a_refund_input(), "refunds", timedelta(seconds=5)
    )
    assert answer == (None, None)  # no status; whether this call made it: unknown
    await asyncio.sleep(0.05)
    gc.collect()
    assert reported == []


class _MadeThenFailed:
    """A front end that makes the refund, then fails the call with an error that is neither
    "there already" nor a timeout (the SDK's wait for the update's outcome, once the refund
    declined and closed at once, may hear "not found"): the run, with the memo the call's
    start wrote, is there to be described."""

    def __init__(self) -> None:
        self.memo: Any = None

    async def execute_multi_operation(self, request: Any, *_args: Any, **_kwargs: Any) -> None:
        self.memo = request.operations[0].start_workflow.memo
        raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    async def describe_workflow_execution(self, *_args: Any, **_kwargs: Any) -> Any:
        if self.memo is None:
            raise RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b"")
        described = DescribeWorkflowExecutionResponse()
        described.workflow_execution_info.memo.CopyFrom(self.memo)
        described.workflow_execution_info.execution.workflow_id = "rf_test"
        return described


class _FailingService(_StalledService):
    def __init__(self, front_end: _MadeThenFailed) -> None:
        self.workflow_service = front_end  # type: ignore[assignment]


async def test_a_failed_call_whose_start_made_the_refund_answers_as_the_maker() -> None:
    """Seen once in 20 concurrent requests: the one call that made the refund was answered 503
    (Temporal did not start the refund) instead of 201."""
    temporal = _client(_FailingService(_MadeThenFailed()))
    answer = await start_for_first_step(
        temporal, _a_refund_input(), "refunds", timedelta(seconds=5)
    )
    assert answer == (None, True)  # no status (asked from the record); this call made it


async def test_a_failed_call_that_made_nothing_is_an_error() -> None:
    class _NothingMade(_MadeThenFailed):
        async def execute_multi_operation(self, *_args: Any, **_kwargs: Any) -> None:
            raise RPCError("connection refused", RPCStatusCode.UNAVAILABLE, b"")

    temporal = _client(_FailingService(_NothingMade()))
    with pytest.raises(RefundflowError, match="did not start the refund: connection refused"):
        await start_for_first_step(temporal, _a_refund_input(), "refunds", timedelta(seconds=5))


ACCEPTED = UpdateWorkflowExecutionLifecycleStage.UPDATE_WORKFLOW_EXECUTION_LIFECYCLE_STAGE_ACCEPTED


class _StartedThenPollFailed(_MadeThenFailed):
    """The path the SDK takes: the start's response says it started the run and the update
    was accepted; the wait for the update's outcome then hears "not found", and describing
    the run fails too (Temporal busy): the start's own word is the answer."""

    async def execute_multi_operation(self, request: Any, *_args: Any, **_kwargs: Any) -> Any:
        answer = ExecuteMultiOperationResponse()
        started, updated = answer.responses.add(), answer.responses.add()
        started.start_workflow.started = True
        started.start_workflow.run_id = "run-1"
        updated.update_workflow.stage = ACCEPTED
        return answer

    async def poll_workflow_execution_update(self, *_args: Any, **_kwargs: Any) -> None:
        raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    async def describe_workflow_execution(self, *_args: Any, **_kwargs: Any) -> Any:
        raise RPCError("Temporal is busy", RPCStatusCode.UNAVAILABLE, b"")


async def test_a_start_that_said_it_made_the_refund_is_the_maker_whatever_fails_after() -> None:
    temporal = with_start_noted(_client(_FailingService(_StartedThenPollFailed())))
    answer = await start_for_first_step(
        temporal, _a_refund_input(), "refunds", timedelta(seconds=5)
    )
    assert answer == (None, True)


async def test_a_refusal_is_an_error_though_another_run_exists() -> None:
    """Refused as invalid (or not allowed): said, not answered as that other run's refund."""

    class _RefusedBesideAnother(_MadeThenFailed):
        async def execute_multi_operation(self, request: Any, *_a: Any, **_k: Any) -> None:
            self.memo = Memo()  # a run someone else started, without this call's memo
            raise RPCError("invalid search attribute", RPCStatusCode.INVALID_ARGUMENT, b"")

    temporal = _client(_FailingService(_RefusedBesideAnother()))
    with pytest.raises(RefundflowError, match="did not start the refund: invalid search"):
        await start_for_first_step(temporal, _a_refund_input(), "refunds", timedelta(seconds=5))


async def test_a_run_made_by_another_call_is_not_this_calls() -> None:
    class _AnotherCallsRun(_MadeThenFailed):
        async def execute_multi_operation(self, request: Any, *_a: Any, **_k: Any) -> None:
            self.memo = Memo()  # made by another call: its memo is not this call's
            raise RPCError("workflow execution already completed", RPCStatusCode.NOT_FOUND, b"")

    temporal = _client(_FailingService(_AnotherCallsRun()))
    answer = await start_for_first_step(
        temporal, _a_refund_input(), "refunds", timedelta(seconds=5)
    )
    assert answer == (None, False)
