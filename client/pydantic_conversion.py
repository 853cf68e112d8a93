"""Pydantic payload conversion with one cache of pydantic type adapters for the process.

The SDK's pydantic converter caches a `TypeAdapter` per type, but per converter instance, and
the worker makes a new payload converter for every workflow run it builds (the converter
class is called once per run). So every run built the adapters for each type it decoded
(the start's input, each local activity's result) afresh: pydantic builds a core schema
for each (2.5 % of the worker's samples holding Python's lock, py-spy --gil, in the bench's
race). A process-wide cache is safe: an adapter is immutable once built and thread-safe,
and the bytes written are the SDK's own (encoding `json/plain`), so histories are unchanged.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter
from temporalio.contrib.pydantic import (
    PydanticJSONPlainPayloadConverter,
    PydanticPayloadConverter,
)
from temporalio.converter import DataConverter

SHARED_ADAPTERS: functools._lru_cache_wrapper[TypeAdapter[Any]] = functools.lru_cache(maxsize=1024)(
    TypeAdapter
)
"""Type adapters by type hint, for every converter of the process (bounded like the SDK's)."""


class SharedCachePydanticConverter(PydanticPayloadConverter):
    """The SDK's pydantic payload converter, its JSON part reading `SHARED_ADAPTERS`."""

    def __init__(self) -> None:
        super().__init__()
        for converter in self.converters.values():
            if isinstance(converter, PydanticJSONPlainPayloadConverter):
                # The SDK's own cache attribute (temporalio 1.35): the test
                # `test_workflow_runs_share_type_adapters` fails if it is renamed.
                converter._type_adapter = SHARED_ADAPTERS


refundflow_data_converter = DataConverter(payload_converter_class=SharedCachePydanticConverter)
"""`pydantic_data_converter` with the shared cache: what clients and workers use."""
