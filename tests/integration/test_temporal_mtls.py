"""Connections by configuration (issue 14 item 1): the real dev server behind a proxy that
terminates TLS and requires a client certificate, reached through TEMPORAL_* variables and
through a TOML profile, as a Temporal cluster with mTLS is."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

from client.connections import TemporalUnavailable, connect_temporal
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, ConfigurationError, Settings
from tests.conftest import Sandbox, unique_key
from tests.integration.helpers import wait_for_state
from tests.integration.tls_certs import Pki, make_pki
from tests.integration.tls_proxy import MtlsProxy
from worker.devstack import DevStack
from worker.processes import spawn, stop_process
from workflows.models import RefundRequest

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def proxy(stack: DevStack, pki: Pki) -> Iterator[MtlsProxy]:
    with MtlsProxy(stack.config.temporal_port, pki.server, client_ca=pki.ca) as running:
        yield running


def tls_env(stack: DevStack, proxy: MtlsProxy, **files: Path | None) -> dict[str, str]:
    env = {**stack.env(), "TEMPORAL_ADDRESS": proxy.address}
    names = {
        "ca": "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
        "cert": "TEMPORAL_TLS_CLIENT_CERT_PATH",
        "key": "TEMPORAL_TLS_CLIENT_KEY_PATH",
    }
    env.update({names[what]: str(path) for what, path in files.items() if path})
    return env


async def test_the_right_client_certificate_gets_a_refund_through_the_worker(
    stack: DevStack, proxy: MtlsProxy, pki: Pki, sandbox: Sandbox
) -> None:
    env = tls_env(stack, proxy, ca=pki.ca, cert=pki.client.cert, key=pki.client.key)
    settings = Settings.from_env(env)
    assert settings.temporal.kind == "mTLS" and settings.temporal_address == proxy.address
    refunds = await RefundClient.connect(settings)
    try:
        status = await refunds.request(small_refund(await sandbox.order(amount=2000)))
        # Auto-approved; the stack's worker (plaintext, direct) pays it.
        done = await wait_for_state(refunds, status.refund_id, "completed")
        assert done.state.value == "completed"
    finally:
        await refunds.close()


async def test_a_worker_connected_through_mtls_pays_a_refund(
    stack: DevStack, proxy: MtlsProxy, pki: Pki, sandbox: Sandbox, tmp_path: Path
) -> None:
    """`refundflow worker` itself over mTLS, on a task queue only it polls."""
    env = tls_env(stack, proxy, ca=pki.ca, cert=pki.client.cert, key=pki.client.key)
    env.update({"REFUNDFLOW_TASK_QUEUE": unique_key("mtls-queue"), "RECONCILE_EVERY_MINUTES": "0"})
    log = tmp_path / "worker.log"
    worker = spawn([sys.executable, "-m", "worker"], log_path=log, env=env)
    try:
        refunds = await RefundClient.connect(Settings.from_env(env))
        try:
            status = await refunds.request(small_refund(await sandbox.order(amount=2000)))
            done = await wait_for_state(refunds, status.refund_id, "completed", timeout=60)
            assert done.state.value == "completed"
        finally:
            await refunds.close()
        started = [line for line in log.read_text().splitlines() if "worker_started" in line]
        assert started and json.loads(started[0])["security"] == "mTLS", started
    finally:
        await asyncio.to_thread(stop_process, worker)


def small_refund(order: dict[str, str]) -> RefundRequest:
    return RefundRequest(
        refund_key=unique_key("mtls"),
        order_id=order["order_id"],
        amount=1000,
        reason_code="damaged",
        channel="api",
        requested_by=order["customer_id"],
    )


async def test_a_toml_profile_selects_the_cluster_and_its_certificates(
    stack: DevStack, proxy: MtlsProxy, pki: Pki, tmp_path: Path
) -> None:
    config = tmp_path / "temporal.toml"
    config.write_text(
        f'[profile.staging]\naddress = "{proxy.address}"\nnamespace = "default"\n'
        f'[profile.staging.tls]\nserver_ca_cert_path = "{pki.ca}"\n'
        f'client_cert_path = "{pki.client.cert}"\nclient_key_path = "{pki.client.key}"\n'
    )
    env = stack.env()
    del env["TEMPORAL_ADDRESS"]  # the profile names the cluster
    env.update({"TEMPORAL_CONFIG_FILE": str(config), "TEMPORAL_PROFILE": "staging"})
    settings = Settings.from_env(env)
    assert (settings.temporal_address, settings.temporal.kind) == (proxy.address, "mTLS")
    client = await connect_temporal(settings)
    described = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace="default")
    )
    assert described.namespace_info.name == "default"


@pytest.mark.parametrize(
    ("who", "expected"),
    [
        # Or, when TLS 1.3's late alert is lost: "... may refuse or require a client
        # certificate". Either way the line says what to check.
        ("stranger", "client certificate"),
        ("nobody", "client certificate"),
        ("wrong-server-ca", "the server's certificate is not signed by the CA we trust"),
    ],
)
async def test_a_wrong_certificate_is_refused_in_one_clear_line(
    stack: DevStack, proxy: MtlsProxy, pki: Pki, who: str, expected: str
) -> None:
    files: dict[str, dict[str, Path | None]] = {
        "stranger": {"ca": pki.ca, "cert": pki.stranger.cert, "key": pki.stranger.key},
        "nobody": {"ca": pki.ca},
        "wrong-server-ca": {"ca": pki.other_ca, "cert": pki.client.cert, "key": pki.client.key},
    }
    settings = Settings.from_env(tls_env(stack, proxy, **files[who]))
    with pytest.raises(TemporalUnavailable) as refused:
        await asyncio.wait_for(_connect_and_ask(settings), 30)
    message = str(refused.value)
    assert "\n" not in message and expected in message, message
    assert f"Temporal at {proxy.address}" in message


async def _connect_and_ask(settings: Settings) -> None:
    client = await connect_temporal(settings)
    await client.workflow_service.describe_namespace(DescribeNamespaceRequest(namespace="default"))


def test_settings_that_cannot_work_fail_in_one_line(tmp_path: Path) -> None:
    base = {"REFUNDFLOW_HOME": str(tmp_path / "none"), "TEMPORAL_ADDRESS": "127.0.0.1:1"}
    missing = tmp_path / "missing.pem"
    cases = {
        "TEMPORAL_TLS_CLIENT_CERT_PATH": (str(missing), f"client certificate {missing}: no such"),
        "TEMPORAL_PROFILE": ("nope", "Profile 'nope' not found"),
        "TEMPORAL_CONFIG_FILE": (str(tmp_path / "x.toml"), "x.toml: no such file"),
        "TEMPORAL_TLS": ("yes", "TEMPORAL_TLS must be true or false"),
    }
    for name, (value, expected) in cases.items():
        with pytest.raises(ConfigurationError) as bad:
            Settings.from_env({**base, name: value})
        assert expected in str(bad.value) and "\n" not in str(bad.value), str(bad.value)


async def test_the_cli_reports_a_refused_certificate_in_one_line(
    stack: DevStack, proxy: MtlsProxy, pki: Pki
) -> None:
    env = tls_env(stack, proxy, ca=pki.ca, cert=pki.stranger.cert, key=pki.stranger.key)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker.cli",
        # An operator's command that connects to Temporal itself (status asks the API now).
        "reconcile",
        "--no-heal",
        env={**env, "PYTHONPATH": str(PROJECT_ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    lines = err.decode().strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, err.decode()
    assert "client certificate" in lines[0] and "TEMPORAL_TLS_CLIENT_CERT_PATH" in lines[0]
