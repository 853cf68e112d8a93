"""The payload converter's type adapters are built once per process, not once per workflow
run: the worker makes a new payload converter for every run (`_new_payload_converter`)."""

from __future__ import annotations

from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import pydantic_data_converter

from client.pydantic_conversion import SHARED_ADAPTERS, refundflow_data_converter
from workflows.verification import AdmitResult


def _a_payload() -> Payload:
    """A local activity's result, written by the SDK's own converter."""
    result = AdmitResult(problems=["order ord_1 is unknown to the order system"])
    return pydantic_data_converter.payload_converter.to_payloads([result])[0]


def test_workflow_runs_share_type_adapters() -> None:
    payload = _a_payload()
    SHARED_ADAPTERS.cache_clear()
    first_run = refundflow_data_converter._new_payload_converter()
    second_run = refundflow_data_converter._new_payload_converter()

    one = first_run.from_payloads([payload], [AdmitResult])[0]
    two = second_run.from_payloads([payload], [AdmitResult])[0]

    assert one == two
    info = SHARED_ADAPTERS.cache_info()
    assert (info.misses, info.hits) == (1, 1)


def test_payloads_are_the_sdks_bytes() -> None:
    """Histories written before and after read alike: only the cache differs."""
    payload = _a_payload()
    ours = refundflow_data_converter._new_payload_converter()
    decoded = ours.from_payloads([payload], [AdmitResult])[0]
    assert ours.to_payloads([decoded])[0] == payload
