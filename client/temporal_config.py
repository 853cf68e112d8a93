"""How to reach Temporal beyond an address: TLS, mTLS client certificates, API keys.

Read with the SDK's `temporalio.envconfig`, so refundflow understands the same TOML profiles
and TEMPORAL_* variables as the `temporal` CLI and every other Temporal SDK:

- Environment only (the default): TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_API_KEY,
  TEMPORAL_TLS, TEMPORAL_TLS_CLIENT_CERT_PATH / _DATA, TEMPORAL_TLS_CLIENT_KEY_PATH / _DATA,
  TEMPORAL_TLS_SERVER_CA_CERT_PATH / _DATA, TEMPORAL_TLS_SERVER_NAME, TEMPORAL_GRPC_META_*.
- A TOML profile, when TEMPORAL_PROFILE or TEMPORAL_CONFIG_FILE is set: the file (default
  ~/.config/temporalio/temporal.toml) under that profile (default `default`), with the
  variables above still overriding it.

The file is opt-in on purpose: a developer's `temporal` CLI profile pointing at Temporal
Cloud must not redirect `refundflow dev` and the commands run beside it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: Temporal's SDK costs the CLI's HTTP commands 0.3 s
    from temporalio.envconfig import ClientConfigTLS

CONNECTION_VARS = (
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_CERT_DATA",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_DATA",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_DATA",
    "TEMPORAL_TLS_SERVER_NAME",
)
"""What selects a cluster's security besides TEMPORAL_ADDRESS and TEMPORAL_NAMESPACE (plus
TEMPORAL_GRPC_META_*): the dev stack drops them for its own processes, whose server is local
and plaintext."""
TLS_VALUES = {"true": True, "1": True, "false": False, "0": False}

# Where each certificate comes from, to name it in an error.
_SOURCES = {
    "server_root_ca_cert": ("server CA certificate", "TEMPORAL_TLS_SERVER_CA_CERT_PATH"),
    "client_cert": ("client certificate", "TEMPORAL_TLS_CLIENT_CERT_PATH"),
    "client_private_key": ("client key", "TEMPORAL_TLS_CLIENT_KEY_PATH"),
}


def without_connection_vars(env: Mapping[str, str]) -> dict[str, str]:
    """`env` less every variable that would send a process to another cluster's security."""
    return {
        name: value
        for name, value in env.items()
        if name not in CONNECTION_VARS and not name.startswith("TEMPORAL_GRPC_META_")
    }


class TemporalConfigError(Exception):
    """A Temporal connection setting that cannot work; one line saying which and why."""


@dataclass(frozen=True)
class TemporalConnection:
    """Everything Client.connect needs besides address and namespace."""

    source: str = ""
    """The profile and file the settings came from, for messages; empty: variables only."""
    api_key: str | None = field(default=None, repr=False)
    tls: ClientConfigTLS | None = None
    rpc_metadata: Mapping[str, str] = field(default_factory=dict, repr=False)

    @property
    def kind(self) -> str:
        """How the connection is secured, for logs and messages (never the secrets)."""
        tls = self.tls_option()
        if tls is False:
            return "plaintext"
        if not isinstance(tls, bool) and tls.client_cert:
            return "mTLS"
        return "TLS with API key" if self.api_key else "TLS"

    def tls_option(self) -> bool | ClientConfigTLS:
        """False (plaintext), True (TLS with the system's roots) or the TLS settings."""
        if self.tls is not None:
            return False if self.tls.disabled is True else self.tls
        return bool(self.api_key)  # Temporal Cloud's API keys only travel over TLS

    def connect_options(self) -> dict[str, Any]:
        """Keyword arguments for Client.connect, certificate files read now."""
        options: dict[str, Any] = {}
        if self.api_key:
            options["api_key"] = self.api_key
        if self.rpc_metadata:
            options["rpc_metadata"] = dict(self.rpc_metadata)
        tls = self.tls_option()
        if not isinstance(tls, bool):
            try:
                options["tls"] = tls.to_connect_tls_config()
            except OSError as err:
                raise TemporalConfigError(f"cannot read a Temporal TLS file: {err}") from None
        else:
            options["tls"] = tls
        return options


@dataclass(frozen=True)
class TemporalProfile:
    address: str | None
    namespace: str | None
    connection: TemporalConnection


def load_temporal_profile(env: Mapping[str, str]) -> TemporalProfile:
    """The profile the environment selects; TemporalConfigError (one line) if it cannot work."""
    # The native bridge ships no type stubs; its ConfigError is what a bad profile raises.
    from temporalio.bridge.temporal_sdk_bridge import (  # type: ignore[import-not-found]
        envconfig as _bridge_envconfig,
    )
    from temporalio.envconfig import ClientConfigProfile

    profile = env.get("TEMPORAL_PROFILE") or None
    config_file = env.get("TEMPORAL_CONFIG_FILE") or None
    if config_file and not Path(config_file).is_file():
        raise TemporalConfigError(f"TEMPORAL_CONFIG_FILE {config_file}: no such file")
    _check_tls_flag(env.get("TEMPORAL_TLS"))
    use_file = bool(profile or config_file)
    try:
        loaded = ClientConfigProfile.load(
            profile=profile,
            config_source=Path(config_file) if config_file else None,
            disable_file=not use_file,
            override_env_vars=dict(env),
        )
    except _bridge_envconfig.ConfigError as err:
        where = config_file or "~/.config/temporalio/temporal.toml"
        gist = str(err).strip().splitlines()[0]
        raise TemporalConfigError(f"Temporal profile in {where}: {gist}") from None
    source = f"profile {profile or 'default'} in {config_file or 'the default file'}"
    connection = TemporalConnection(
        source=source if use_file else "",
        api_key=loaded.api_key or None,
        tls=loaded.tls,
        rpc_metadata=dict(loaded.grpc_meta),
    )
    _check_tls_files(connection)
    return TemporalProfile(loaded.address or None, loaded.namespace or None, connection)


def _check_tls_flag(raw: str | None) -> None:
    # The SDK takes any other word as "TLS on, unconfigured": a typo would silently differ.
    if raw and raw.lower() not in TLS_VALUES:
        raise TemporalConfigError(f"TEMPORAL_TLS must be true or false, got {raw!r}")


def _check_tls_files(connection: TemporalConnection) -> None:
    """Missing certificate files and a half client identity fail at start, by name."""
    tls = connection.tls
    if tls is None or tls.disabled is True:
        return
    for attribute, (what, variable) in _SOURCES.items():
        source = getattr(tls, attribute)
        if isinstance(source, Path) and not source.is_file():
            raise TemporalConfigError(
                f"Temporal {what} {source}: no such file ({connection.source or variable})"
            )
    if bool(tls.client_cert) != bool(tls.client_private_key):
        raise TemporalConfigError(
            "a Temporal client certificate needs its key and the other way round"
            " (TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH)"
        )
