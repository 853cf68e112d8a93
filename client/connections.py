"""Connecting to Temporal the same way everywhere (worker, client, CLI, tests).

Address and namespace come from Settings; TLS, a client certificate or an API key from
`settings.temporal` (TEMPORAL_* variables or a TOML profile, see client/temporal_config.py);
the payload codec's keys from REFUNDFLOW_CODEC_KEYS or _KEY_FILE (client/payload_codec.py):
every process that talks to Temporal seals and opens payloads here, with the same keys.
"""

from __future__ import annotations

import logging
import os

from temporalio.client import Client
from temporalio.converter import DataConverter
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryFilter
from temporalio.service import RPCError

from client.errors import TemporalUnavailable as TemporalUnavailable
from client.payload_codec import CodecKeyError, data_converter, load_keyring
from client.settings import ConfigurationError, Settings, dev_stack_place
from client.temporal_config import TemporalConfigError
from client.tracing import temporal_interceptors


def core_logging() -> LoggingConfig:
    """Temporal's Rust core writes its own coloured lines to stderr, which break a JSON
    stream: every Runtime a process makes (the default one, a metrics one) sends them at
    WARN and above through the `temporalio.core` logger instead (and so through structlog)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")),
    )


async def connect_temporal(settings: Settings, runtime: Runtime | None = None) -> Client:
    """A client for settings' cluster; `runtime` carries the worker's metrics exporter."""
    try:
        options = settings.temporal.connect_options()
    except TemporalConfigError as err:
        raise ConfigurationError(str(err)) from None
    converter = converter_for(settings)
    try:
        return await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=converter,
            runtime=runtime,
            interceptors=temporal_interceptors(),  # tracing, when this process has it on
            **options,
        )
    except (RuntimeError, RPCError) as err:
        raise TemporalUnavailable(_explain(settings, err)) from None


def converter_for(settings: Settings) -> DataConverter:
    """Pydantic conversion, plus encryption when settings name codec keys."""
    try:
        return data_converter(load_keyring(settings.codec_keys, settings.codec_key_file))
    except CodecKeyError as err:
        raise ConfigurationError(str(err)) from None


def _explain(settings: Settings, err: Exception) -> str:
    kind = settings.temporal.kind
    how = ", ".join(filter(None, (kind, settings.temporal.source)))
    where = f"Temporal at {settings.temporal_address} ({how})"
    gist, hint = _why(err, kind)
    if hint is None:
        if kind == "plaintext" and os.environ.get("TEMPORAL_ADDRESS") == settings.temporal_address:
            # Set already: "or set TEMPORAL_ADDRESS" would send them in a circle (a trial).
            hint = (
                "check TEMPORAL_ADDRESS, which names it, or start the Temporal there (a dev"
                f" stack's: `refundflow dev` {dev_stack_place()})"
            )
        elif kind == "plaintext":
            hint = f"start `refundflow dev` {dev_stack_place()} or set TEMPORAL_ADDRESS"
        else:
            hint = "check TEMPORAL_ADDRESS and the TLS settings (TEMPORAL_TLS_*)"
    return f"cannot reach {where}: {gist}; {hint}"


# Transport failures, as the Rust core words them (spaces removed) somewhere in a page of
# nested errors, and what to do about each. TLS alerts first: they say what the server saw.
_CERTS = "check the client certificate and key (TEMPORAL_TLS_CLIENT_CERT_PATH, _KEY_PATH)"
_GISTS: tuple[tuple[str, str, str | None], ...] = (
    ("alert:certificaterequired", "the server requires a client certificate", _CERTS),
    ("alert:unknownca", "the server does not trust our client certificate", _CERTS),
    ("alert:badcertificate", "the server refused our client certificate", _CERTS),
    ("alert:certificateexpired", "the server says our client certificate expired", _CERTS),
    (
        "unknownissuer",
        "the server's certificate is not signed by the CA we trust",
        "check TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    ),
    (
        "invalidcertificate",
        "the server's certificate was refused",
        "check TEMPORAL_TLS_SERVER_CA_CERT_PATH and TEMPORAL_TLS_SERVER_NAME",
    ),
    ("connectionrefused", "connection refused", None),
    ("timedout", "timed out", None),
    ("noroutetohost", "no route to host", None),
    ("dnserror", "dns error", None),
)


# A server that refuses a client certificate under TLS 1.3 does so after the client
# thinks the handshake done; its alert is sometimes lost in the race and all the client
# sees is a connection closed under it.
_CLOSED = ("connectionreset", "brokenpipe", "connectionclosed", "unexpectedeof")


def _why(err: Exception, kind: str) -> tuple[str, str | None]:
    """The gist of a transport error and, if it tells, what to do."""
    text = str(err).lower().replace(" ", "")
    for needle, gist, hint in _GISTS:
        if needle in text:
            return gist, hint
    if any(needle in text for needle in _CLOSED):
        if kind == "plaintext":
            return "the server closed the connection", "does it need TLS? set TEMPORAL_TLS=true"
        return (
            "the server closed the connection after the TLS handshake: it may refuse or"
            " require a client certificate",
            _CERTS,
        )
    raw = str(err).splitlines()[0] if str(err) else type(err).__name__
    return (raw if len(raw) <= 160 else raw[:157] + "..."), None
