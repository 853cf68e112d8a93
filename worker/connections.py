"""Connecting to Temporal the same way everywhere (worker, client, CLI, tests)."""

from __future__ import annotations

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from worker.settings import Settings
from workflows.names import SEARCH_ATTRIBUTES


class TemporalUnavailable(Exception):
    """Temporal could not be reached; reported as one line with what to do."""


async def connect_temporal(settings: Settings) -> Client:
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=pydantic_data_converter,
        )
    except (RuntimeError, RPCError) as err:
        raise TemporalUnavailable(
            f"cannot reach Temporal at {settings.temporal_address} ({err}); start"
            " `refundflow dev` in this folder or set TEMPORAL_ADDRESS"
        ) from None


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register refundflow's custom search attributes if the cluster lacks them.

    The dev server gets them as start flags; a fresh production namespace gets them here.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)
