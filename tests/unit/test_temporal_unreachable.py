"""What a process is told when Temporal does not answer where it was told to look."""

from __future__ import annotations

import socket

import pytest

from client.connections import TemporalUnavailable, connect_temporal
from client.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_address_set_and_not_answering_is_not_told_to_be_set(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    """A trial: TEMPORAL_ADDRESS set to a port where nothing answers was told "start
    `refundflow dev` … or set TEMPORAL_ADDRESS", which it had."""
    address = f"127.0.0.1:{free_port()}"
    monkeypatch.setenv("TEMPORAL_ADDRESS", address)
    monkeypatch.setenv("REFUNDFLOW_HOME", str(tmp_path))
    with pytest.raises(TemporalUnavailable) as refused:
        await connect_temporal(Settings.from_env())
    said = str(refused.value)
    assert said.startswith(f"cannot reach Temporal at {address}"), said
    assert (
        "check TEMPORAL_ADDRESS, which names it" in said and "or set TEMPORAL_ADDRESS" not in said
    )
