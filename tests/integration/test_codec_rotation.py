"""Rotating the payload key of a running deployment: a refund requested under the old key
waits for review; the key file gets a new current key and the stack restarts; the refund is
approved and paid, its history holding payloads under both keys, every one still opening.

A stack of its own (the session's clients hold the old ring only), kept on disk across the
restart as `refundflow dev` keeps it."""

from __future__ import annotations

import collections
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from client.payload_codec import KEY_ID_METADATA, is_encrypted, payloads_in, rotate_key_file
from client.refund_client import RefundClient
from client.settings import Settings
from tests.integration.helpers import wait_for_state
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack, StackConfig

pytestmark = [pytest.mark.stack, pytest.mark.slow]


@pytest.fixture
def home() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="refundflow-rotation-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


async def test_a_refund_sealed_under_the_old_key_completes_after_rotation(home: Path) -> None:
    config = StackConfig.for_tests(home)
    config.durable = True  # Temporal's state outlives the restart, as in `refundflow dev`
    stack = DevStack(config)
    try:
        stack.start(progress=lambda line: None)
        order = stack.create_order({"amount": 20000, "currency": "USD", "delivered_days_ago": 2})
        async with refunds_of(stack) as refunds:
            waiting = await refunds.request(make_request(order))
        assert waiting.state.value == "pending_review"
    finally:
        stack.stop()
    rotate_key_file(home / "codec" / "keys", "dev-2")
    stack = DevStack(config)
    try:
        stack.start(progress=lambda line: None)
        async with refunds_of(stack) as refunds:
            await refunds.approve(waiting.refund_id, reviewer="li", role="lead")
            await wait_for_state(refunds, waiting.refund_id, "completed")
            history = await refunds.temporal.get_workflow_handle(waiting.refund_id).fetch_history()
            sealed = [p for e in history.events for _, p in payloads_in(e) if is_encrypted(p)]
            by_key = collections.Counter(p.metadata[KEY_ID_METADATA] for p in sealed)
            assert by_key[b"dev-1"] > 0 and by_key[b"dev-2"] > 0, by_key
            codec = refunds.temporal.data_converter.payload_codec
            assert codec is not None and len(await codec.decode(sealed)) == len(sealed)
    finally:
        stack.stop()


@asynccontextmanager
async def refunds_of(stack: DevStack) -> AsyncIterator[RefundClient]:
    """A RefundClient connected as the stack's processes are, with its key ring."""
    refunds = await RefundClient.connect(Settings.from_env(stack.env()))
    try:
        yield refunds
    finally:
        await refunds.close()
