"""Encrypted payloads on the real stack: a refund's history, fetched raw, holds ciphertext
naming its key, and no order id, customer id or reason text outside the search attributes;
the codec server opens it for an operator only; an old key still opens what it sealed after
rotation; a payload written without the codec still decodes; ids and search attributes carry
no personal data."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import re
import subprocess
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
import structlog.testing
from google.protobuf import json_format
from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client
from temporalio.worker import Replayer

from client.connections import connect_temporal
from client.payload_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    UndecryptablePayload,
    load_keyring,
    new_key_entry,
    open_history,
    payloads_in,
)
from client.pydantic_conversion import refundflow_data_converter
from client.refund_client import RefundClient
from client.settings import Settings
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.codec_support import serving_codec
from tests.integration.test_refund_flow import make_request
from worker.devstack import DevStack
from worker.temporal_server import temporal_binary
from workflows.names import SEARCH_ATTRIBUTES
from workflows.refund.workflow import RefundWorkflow

pytestmark = pytest.mark.stack
REASON = "the parcel was crushed by the courier, says cust"


# What the SDK core writes into markers itself, outside the codec: a patch's name; a local
# activity's sequence, attempt, type and times (its result is ours, and sealed).
CORE_MARKER_FIELDS = {
    "details[patch-data]": {"id", "deprecated"},
    "details[data]": {
        "seq",
        "attempt",
        "activity_id",
        "activity_type",
        "complete_time",
        "backoff",
        "original_schedule_time",
        "activation_index",
    },
}


def _core_bookkeeping(path: str, payload: Payload) -> bool:
    """A plaintext marker payload of the SDK core's own, holding nothing but its fields."""
    for where, fields in CORE_MARKER_FIELDS.items():
        if path == f".marker_recorded_event_attributes.{where}.payloads":
            assert set(json.loads(payload.data)) <= fields, payload.data
            return True
    return False


async def without_codec(settings: Settings) -> Client:
    return await connect_temporal(dataclasses.replace(settings, codec_keys="", codec_key_file=""))


async def a_cancelled_refund(refunds: RefundClient, sandbox: Sandbox) -> tuple[str, str, str]:
    customer = f"cust_{uuid.uuid4().hex[:10]}"
    order = await sandbox.order(amount=20000, customer_id=customer)
    waiting = await refunds.request(make_request(order, requested_by=customer))
    await refunds.cancel(waiting.refund_id, actor=customer, reason=REASON)
    return waiting.refund_id, order["order_id"], customer


async def test_history_is_ciphertext_and_only_operators_open_it(
    refunds: RefundClient,
    sandbox: Sandbox,
    settings: Settings,
    stack: DevStack,
    http: aiohttp.ClientSession,
) -> None:
    refund_id, order_id, customer = await a_cancelled_refund(refunds, sandbox)
    raw = await (await without_codec(settings)).get_workflow_handle(refund_id).fetch_history()
    sealed: list[Payload] = []
    for event in raw.events:
        for path, payload in payloads_in(event):
            if ".search_attributes" in path:
                continue  # indexed by Temporal, never sealed: checked in the test below
            if _core_bookkeeping(path, payload):
                continue
            assert payload.metadata["encoding"] == ENCODING, (event.event_type, path)
            assert payload.metadata[KEY_ID_METADATA] == b"dev-1", path
            sealed.append(payload)
        outside = _without_search_attributes(event)
        for secret in (order_id, customer, REASON[:20]):
            assert secret.encode() not in outside, (secret, event.event_type)
    assert len(sealed) > 10

    # Opened in place with the stack's key, it replays without one (as recorded histories do).
    keyring = load_keyring("", stack.env()["REFUNDFLOW_CODEC_KEY_FILE"])
    assert keyring is not None
    opened_history = open_history(raw, EncryptionCodec(keyring))
    assert REASON.encode() in b"".join(e.SerializeToString() for e in opened_history.events)
    replayer = Replayer(workflows=[RefundWorkflow], data_converter=refundflow_data_converter)
    replayed = await replayer.replay_workflow(opened_history, raise_on_replay_failure=True)
    assert replayed.replay_failure is None

    # The codec server opens them for an operator; anyone else is refused.
    codec_url = stack.describe()["codec_url"]
    body = json_format.MessageToDict(Payloads(payloads=sealed))
    api = Api(http, stack)
    for name, token, status in [
        ("nobody", None, 401),
        ("a forged token", api.forged("omar")["wrong signature"], 401),
        ("a customer", api.token(customer), 403),
        ("support", api.token("alice"), 403),
    ]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with http.post(f"{codec_url}/decode", json=body, headers=headers) as answer:
            assert answer.status == status, (name, await answer.text())
            assert REASON not in await answer.text()
    headers = {"Authorization": f"Bearer {api.token('omar')}", "X-Namespace": "default"}
    async with http.post(f"{codec_url}/decode", json=body, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
        opened = json_format.ParseDict(await answer.json(), Payloads())
    texts = b"".join(p.data for p in opened.payloads)
    assert REASON.encode() in texts and customer.encode() in texts
    assert all(not p.metadata["encoding"].startswith(b"binary/") for p in opened.payloads)


async def test_temporal_cli_shows_ciphertext_and_decodes_through_the_codec_server(
    refunds: RefundClient, sandbox: Sandbox, stack: DevStack, http: aiohttp.ClientSession
) -> None:
    refund_id, _, customer = await a_cancelled_refund(refunds, sandbox)
    show = [temporal_binary(), "workflow", "show", "-w", refund_id, "--output", "json"]
    show += ["--address", stack.temporal_address]
    plain = await _show(show)
    assert customer not in plain and REASON not in plain
    token = Api(http, stack).token("omar")
    show += ["--codec-endpoint", stack.describe()["codec_url"], "--codec-auth", f"Bearer {token}"]
    opened = await _show(show)
    assert customer in opened and REASON in opened


async def _show(args: list[str]) -> str:
    done = await asyncio.to_thread(subprocess.run, args, capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return _cli_texts(done.stdout)


def _cli_texts(output: bytes) -> str:
    """Everything `temporal workflow show --output json` printed, payload data decoded."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "data" and isinstance(value, str):
                    found.append(base64.b64decode(value).decode(errors="replace"))
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(json.loads(output))
    return "\n".join(found)


def _without_search_attributes(event: HistoryEvent) -> bytes:
    """The event serialized, less the search attributes it sets (start, upsert, new run)."""
    copy = HistoryEvent()
    copy.CopyFrom(event)
    for name in (
        "workflow_execution_started_event_attributes",
        "upsert_workflow_search_attributes_event_attributes",
        "workflow_execution_continued_as_new_event_attributes",
    ):
        if copy.HasField(name):
            getattr(copy, name).ClearField("search_attributes")
    return copy.SerializeToString()


async def test_ids_and_search_attributes_carry_no_personal_data(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    refund_id, order_id, customer = await a_cancelled_refund(refunds, sandbox)
    assert re.fullmatch(r"rf_[0-9a-f]{24}", refund_id)
    described = await refunds.temporal.get_workflow_handle(refund_id).describe()
    attributes = {
        pair.key.name: pair.value for pair in described.typed_search_attributes.search_attributes
    }
    ours = {name for name in attributes if not name.startswith(("Temporal", "BuildIds"))}
    assert ours <= set(SEARCH_ATTRIBUTES), ours
    # A state, our own opaque order id, a level, who acts next: no customer, no reason text.
    assert attributes["OrderId"] == order_id and attributes["RefundState"] == "cancelled"
    for value in attributes.values():
        assert customer not in str(value) and "crushed" not in str(value)
    # The memo: only the random id of the start that made the refund (client/starting.py).
    memo = await described.memo()
    assert list(memo) == ["started_by_call"] and re.fullmatch(
        r"[0-9a-f]{32}", memo["started_by_call"]
    )
    assert customer not in described.id and order_id not in described.id


async def test_rotation_and_plaintext_pass_through(settings: Settings, stack: DevStack) -> None:
    """Written under the stack's key, under a new current key, and without the codec: a
    client holding the rotated ring (new key first, old after it) opens all three."""
    key_file = Path(stack.env()["REFUNDFLOW_CODEC_KEY_FILE"])
    old_ring = ",".join(
        line for line in key_file.read_text().splitlines() if line and not line.startswith("#")
    )
    rotated = dataclasses.replace(
        settings, codec_keys=f"{new_key_entry('k2')},{old_ring}", codec_key_file=""
    )
    writers = {
        "dev-1": await connect_temporal(settings),
        "k2": await connect_temporal(rotated),
        "none": await without_codec(settings),
    }
    reader = writers["k2"]
    queue = f"nobody-polls-{uuid.uuid4().hex[:8]}"
    handles = []
    for key_id, writer in writers.items():
        handle = await writer.start_workflow(
            "NoWorkerRunsThis",
            {"note": f"written under {key_id}"},
            id=f"codec-{key_id}-{uuid.uuid4().hex[:8]}",
            task_queue=queue,
        )
        handles.append(handle)
        history = await reader.get_workflow_handle(handle.id).fetch_history()
        [payload] = history.events[0].workflow_execution_started_event_attributes.input.payloads
        assert payload.metadata.get(KEY_ID_METADATA, b"none") == key_id.encode()
        [value] = await reader.data_converter.decode([payload])
        assert value == {"note": f"written under {key_id}"}
        if key_id == "k2":  # a process still holding only the old ring cannot open it
            with pytest.raises(UndecryptablePayload, match="'k2'"):
                await writers["dev-1"].data_converter.decode([payload])
    for handle in handles:
        await handle.terminate("test over")


async def test_cors_for_the_web_ui_and_the_dev_ui_allowance_on_loopback(
    settings: Settings, stack: DevStack, http: aiohttp.ClientSession
) -> None:
    """The codec server as the dev stack runs it beside a Web UI (the test stack has none):
    the UI's origin may preflight with Authorization and X-Namespace; another origin may
    not; a tokenless call from the dev UI's origin on loopback is let through, from any
    other origin it is not."""
    ui = "http://127.0.0.1:8233"
    env = {
        **stack.env(),
        "REFUNDFLOW_CODEC_ORIGINS": "https://temporal.example",
        "REFUNDFLOW_CODEC_DEV_UI_ORIGINS": ui,
    }
    keyring = load_keyring("", env["REFUNDFLOW_CODEC_KEY_FILE"])
    assert keyring is not None
    async with serving_codec(env, http) as base:
        for origin, allowed in [
            (ui, True),
            ("https://temporal.example", True),
            ("https://evil.example", False),
        ]:
            preflight = {
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,x-namespace",
            }
            async with http.options(f"{base}/decode", headers=preflight) as answer:
                assert (answer.headers.get("access-control-allow-origin") == origin) is allowed
                if allowed:
                    granted = answer.headers["access-control-allow-headers"].lower()
                    assert {"authorization", "x-namespace"} <= set(re.split(r",\s*", granted))
        [sealed] = await EncryptionCodec(keyring).encode(
            [Payload(metadata={"encoding": b"json/plain"}, data=b'"from the dev UI"')]
        )
        body = json_format.MessageToDict(Payloads(payloads=[sealed]))
        calls: list[tuple[str | None, int]] = [
            (ui, 200),
            ("https://temporal.example", 401),
            (None, 401),
        ]
        for sender, status in calls:
            headers = {"Origin": sender} if sender else {}
            async with http.post(f"{base}/decode", json=body, headers=headers) as answer:
                assert answer.status == status, (sender, await answer.text())
        wrong_namespace = {"Origin": ui, "X-Namespace": "another"}
        async with http.post(f"{base}/decode", json=body, headers=wrong_namespace) as answer:
            assert answer.status == 403
        # A payload cut short is bad input (not an unexpected error), and refused calls are
        # on the record too: by whom and why, never with what they carried.
        cut = json_format.MessageToDict(
            Payloads(payloads=[Payload(metadata=sealed.metadata, data=b"ab")])
        )
        with structlog.testing.capture_logs() as logged:
            async with http.post(f"{base}/decode", json=cut, headers={"Origin": ui}) as answer:
                assert answer.status == 422, await answer.text()
                assert "is 2 bytes, too short to be sealed" in (await answer.json())["detail"]
            async with http.post(f"{base}/decode", json=body) as answer:
                assert answer.status == 401
        events = [entry["event"] for entry in logged]
        assert "codec.bad_input" in events and "codec.unauthenticated" in events, logged
        assert "from the dev UI" not in repr(logged)
