"""Connecting to Temporal the same way everywhere (worker, client, CLI, tests)."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.service import RPCError

from client.settings import Settings


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
            f"cannot reach Temporal at {settings.temporal_address} ({_why(err)}); start"
            " `refundflow dev` in this folder or set TEMPORAL_ADDRESS"
        ) from None


def _why(err: Exception) -> str:
    """The gist of a transport error (the full one is a page of nested Rust errors)."""
    text = str(err)
    for gist in ("Connection refused", "timed out", "No route to host", "dns error"):
        if gist.lower() in text.lower():
            return gist.lower()
    return text if len(text) <= 120 else text[:117] + "..."
