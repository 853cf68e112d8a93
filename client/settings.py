"""Configuration from the environment, falling back to a running `refundflow dev` stack.

`refundflow dev` writes `<home>/stack.json` with the addresses it started; any other command
run from the same folder reads it, so nothing needs to be exported by hand. Environment
variables always win.

Here in client/ because the client and the worker read the same settings, and the worker
may import the client but never the other way round.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from client.temporal_config import TemporalConfigError, TemporalConnection, load_temporal_profile

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_POLICY = "standard-v4"
"""The policy in force for new refunds unless REFUNDFLOW_POLICY names another."""
STACK_FILE = "stack.json"

# Every variable the code reads; docker-compose.yml is tested against this list.
ENV_VARS = (
    "TEMPORAL_ADDRESS",
    "TEMPORAL_NAMESPACE",
    "REFUNDFLOW_TASK_QUEUE",
    "DATABASE_URL",
    "MIGRATION_DATABASE_URL",
    "SANDBOX_URL",
    "PAYMENT_PROVIDER_URL",
    "ORDERS_URL",
    "INVENTORY_URL",
    "REFUNDFLOW_POLICY",
    "REFUNDFLOW_POLICY_DIR",
    "REFUNDFLOW_HOME",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "SANDBOX_HOST",
    "SANDBOX_PORT",
    "SANDBOX_WEBHOOK_URL",
    "REFUNDFLOW_WEBHOOK_SECRET",
    "WEBHOOK_HOST",
    "WEBHOOK_PORT",
    "RECONCILE_EVERY_MINUTES",
    "REFUNDFLOW_CUSTOMER_NOTIFY_URL",
    "REFUNDFLOW_CUSTOMER_NOTIFY_SECRET",
    "SANDBOX_NOTIFY_SECRET",
    # The HTTP API (api/config.py): where it listens and which tokens it trusts.
    "REFUNDFLOW_API_URL",
    # People's actions: the API signs them, workers verify (client/action_attestation.py).
    "REFUNDFLOW_ACTION_SIGNING_KEY",
    "REFUNDFLOW_ACTION_VERIFY_KEYS",
    # The CLI's access token outside the dev stack (client/cli/acting.py); never logged.
    "REFUNDFLOW_TOKEN",
    "REFUNDFLOW_API_HOST",
    "REFUNDFLOW_API_PORT",
    "REFUNDFLOW_API_METRICS_ADDR",
    "REFUNDFLOW_API_MAX_BODY_BYTES",
    "REFUNDFLOW_API_RATE_PER_MINUTE",
    "REFUNDFLOW_API_RATE_BURST",
    "REFUNDFLOW_OIDC_ISSUER",
    "REFUNDFLOW_OIDC_JWKS_URL",
    "REFUNDFLOW_OIDC_AUDIENCE",
    "REFUNDFLOW_OIDC_ROLES_CLAIM",
    "REFUNDFLOW_OIDC_SCOPE_CLAIM",
    "REFUNDFLOW_OIDC_SUBJECT_CLAIM",
    "REFUNDFLOW_OIDC_LEEWAY_SECONDS",
    "REFUNDFLOW_DEV_ISSUER_HOME",
    "REFUNDFLOW_DEV_DIRECTORY",
    # The pages' secret and public URL (api/pages); the worker signs customers' tracking links.
    "REFUNDFLOW_PAGES_SECRET",
    "REFUNDFLOW_PUBLIC_URL",
    # Temporal connection (client/temporal_config.py; read through temporalio.envconfig).
    "TEMPORAL_PROFILE",
    "TEMPORAL_CONFIG_FILE",
    "TEMPORAL_API_KEY",
    "TEMPORAL_TLS",
    "TEMPORAL_TLS_CLIENT_CERT_PATH",
    "TEMPORAL_TLS_CLIENT_KEY_PATH",
    "TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    "TEMPORAL_TLS_SERVER_NAME",
    "REFUNDFLOW_METRICS_ADDR",
    # Traces (client/tracing.py): off unless one names an OTLP/HTTP collector; the other
    # OTEL_* variables (OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_HEADERS, ...) go to the SDK.
    "OTEL_EXPORTER_OTLP_ENDPOINT",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    # Encrypted payloads (client/payload_codec.py) and the codec server (api/codec_server.py).
    "REFUNDFLOW_CODEC_KEYS",
    "REFUNDFLOW_CODEC_KEY_FILE",
    "REFUNDFLOW_CODEC_HOST",
    "REFUNDFLOW_CODEC_PORT",
    "REFUNDFLOW_CODEC_ORIGINS",
    "REFUNDFLOW_CODEC_DEV_UI_ORIGINS",
    # Worker Deployment Versioning (worker/versioning.py): off without a deployment name.
    "REFUNDFLOW_DEPLOYMENT_NAME",
    "REFUNDFLOW_BUILD_ID",
    "REFUNDFLOW_DEPLOYMENT_PROMOTE",
    # The worker runs workflow code directly unless this is `on` (worker/sandbox.py).
    "REFUNDFLOW_WORKFLOW_SANDBOX",
)


@dataclass(frozen=True)
class Settings:
    temporal_address: str
    temporal_namespace: str
    sandbox_url: str
    """Base of the sandbox services (its admin API: faults)."""
    task_queue: str
    database_url: str | None
    payment_provider_url: str
    orders_url: str
    inventory_url: str
    policy: str
    """File name (without .toml) of the policy in force for new refunds."""
    policy_dir: Path
    home: Path
    log_format: str
    log_level: str
    webhook_secret: str = ""
    """Shared with the payment provider; signs its webhooks."""
    reconcile_every_minutes: int = 15
    """Interval of the reconciliation schedule the worker creates (0: create none)."""
    customer_notify_url: str = ""
    """The customer notification channel (e-mail/SMS/push gateway); the worker subscribes
    it to the outbox as `customer-notifications`. Empty: none."""
    customer_notify_secret: str = ""
    api_url: str = ""
    """The HTTP API's base URL (REFUNDFLOW_API_URL, or the dev stack's); empty: unknown."""
    migration_database_url: str | None = None
    """The owner's URL, for `refundflow migrate` only: the app's own processes connect with
    `database_url`, whose role may not change the schema or the audit. None: migrate as
    `database_url`'s role."""
    temporal: TemporalConnection = field(default_factory=TemporalConnection)
    """TLS, client certificate, API key: from TEMPORAL_* or a TOML profile."""
    metrics_addr: str = ""
    """host:port of the worker's Prometheus endpoint (worker/metrics.py); empty: none."""
    codec_keys: str = field(default="", repr=False)
    """REFUNDFLOW_CODEC_KEYS: `id:base64key,...`, the current key first (payload_codec.py)."""
    codec_key_file: str = ""
    """REFUNDFLOW_CODEC_KEY_FILE, or the running dev stack's; both empty: plaintext payloads."""
    workflow_sandbox: bool = False
    """REFUNDFLOW_WORKFLOW_SANDBOX=on: the worker runs workflows in Temporal's sandbox."""
    action_signing_key: str = ""
    """REFUNDFLOW_ACTION_SIGNING_KEY: the API signs people's actions with it."""
    action_verify_keys: str = ""
    """REFUNDFLOW_ACTION_VERIFY_KEYS: the worker accepts people's actions signed by these."""

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        home, stack = find_stack(env.get("REFUNDFLOW_HOME"))

        def pick(name: str, stack_key: str, default: str) -> str:
            return env.get(name) or str(stack.get(stack_key) or default)

        sandbox = pick("SANDBOX_URL", "sandbox_url", "http://127.0.0.1:8088").rstrip("/")
        try:
            # A profile (or TEMPORAL_ADDRESS) names the cluster; else the running dev stack.
            profile = load_temporal_profile(env)
        except TemporalConfigError as err:
            raise ConfigurationError(str(err)) from None
        return cls(
            temporal_address=profile.address
            or pick("TEMPORAL_ADDRESS", "temporal_address", "localhost:7233"),
            temporal_namespace=profile.namespace
            or pick("TEMPORAL_NAMESPACE", "temporal_namespace", "default"),
            sandbox_url=sandbox,
            task_queue=pick("REFUNDFLOW_TASK_QUEUE", "task_queue", "refunds"),
            database_url=env.get("DATABASE_URL") or stack.get("database_url"),
            payment_provider_url=env.get("PAYMENT_PROVIDER_URL") or f"{sandbox}/payments",
            orders_url=env.get("ORDERS_URL") or f"{sandbox}/orders",
            inventory_url=env.get("INVENTORY_URL") or f"{sandbox}/inventory",
            policy=pick("REFUNDFLOW_POLICY", "policy", DEFAULT_POLICY),
            policy_dir=Path(env.get("REFUNDFLOW_POLICY_DIR") or PROJECT_ROOT / "policies"),
            home=home,
            log_format=env.get("LOG_FORMAT", "auto"),
            log_level=env.get("LOG_LEVEL", "info"),
            webhook_secret=pick("REFUNDFLOW_WEBHOOK_SECRET", "webhook_secret", ""),
            reconcile_every_minutes=_whole_number(env, "RECONCILE_EVERY_MINUTES", 15),
            customer_notify_url=env.get("REFUNDFLOW_CUSTOMER_NOTIFY_URL", ""),
            customer_notify_secret=env.get("REFUNDFLOW_CUSTOMER_NOTIFY_SECRET", ""),
            api_url=pick("REFUNDFLOW_API_URL", "api_url", "").rstrip("/"),
            migration_database_url=_migration_url(env, stack),
            temporal=profile.connection,
            metrics_addr=env.get("REFUNDFLOW_METRICS_ADDR", ""),
            codec_keys=env.get("REFUNDFLOW_CODEC_KEYS", ""),
            codec_key_file=_codec_key_file(env, stack, profile.address),
            workflow_sandbox=_on_or_off(env, "REFUNDFLOW_WORKFLOW_SANDBOX"),
            action_signing_key=env.get("REFUNDFLOW_ACTION_SIGNING_KEY")
            or _stacks_own(env, stack, profile.address, "action_signing_key"),
            action_verify_keys=_action_verify_keys(env, stack, profile.address),
        )

    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigurationError(
                f"no database: set DATABASE_URL, or start `refundflow dev` {dev_stack_place()}"
            )
        return self.database_url


def _migration_url(env: dict[str, str], stack: dict[str, Any]) -> str | None:
    """MIGRATION_DATABASE_URL; else the dev stack's owner, but only for the dev stack's own
    database: with DATABASE_URL set, migrating the stack's instead would be a surprise."""
    if env.get("MIGRATION_DATABASE_URL"):
        return env["MIGRATION_DATABASE_URL"]
    if env.get("DATABASE_URL"):
        return None
    url = stack.get("migration_database_url")
    return str(url) if url else None


def _codec_key_file(env: dict[str, str], stack: dict[str, Any], address: str | None) -> str:
    """REFUNDFLOW_CODEC_KEY_FILE; else the running dev stack's key, but only when talking to
    the stack's own Temporal: another cluster's data must never be sealed with a dev key."""
    if env.get("REFUNDFLOW_CODEC_KEY_FILE") or env.get("REFUNDFLOW_CODEC_KEYS"):
        return env.get("REFUNDFLOW_CODEC_KEY_FILE", "")
    return _stacks_own(env, stack, address, "codec_key_file")


def _action_verify_keys(env: dict[str, str], stack: dict[str, Any], address: str | None) -> str:
    """REFUNDFLOW_ACTION_VERIFY_KEYS; else the running dev stack's, when talking to its own
    Temporal (a worker started from another shell checks people's actions as its own do)."""
    if env.get("REFUNDFLOW_ACTION_VERIFY_KEYS"):
        return env["REFUNDFLOW_ACTION_VERIFY_KEYS"]
    return _stacks_own(env, stack, address, "action_verify_keys")


def _stacks_own(env: dict[str, str], stack: dict[str, Any], address: str | None, key: str) -> str:
    """The running dev stack's `key`, only when talking to the stack's own Temporal."""
    target = address or env.get("TEMPORAL_ADDRESS") or stack.get("temporal_address")
    if not stack or target != stack.get("temporal_address"):
        return ""
    return str(stack.get(key) or "")


class ConfigurationError(Exception):
    """Settings that cannot work; reported as one line."""


def _whole_number(env: dict[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if not raw:
        return default
    if not raw.isdigit():
        raise ConfigurationError(f"{name} must be a whole number, got {raw!r}")
    return int(raw)


def _on_or_off(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw not in ("", "on", "off"):
        raise ConfigurationError(f"{name} must be on or off, got {env[name]!r}")
    return raw == "on"


def dev_stack_place() -> str:
    """Where `refundflow dev` is looked for, as an error's hint says it: "in this folder", or
    the REFUNDFLOW_HOME set (a hint naming this folder would send a user to the wrong one)."""
    home = os.environ.get("REFUNDFLOW_HOME")
    if home:
        return f"with REFUNDFLOW_HOME={home}"
    return "in this folder (or set REFUNDFLOW_HOME to a stack's home)"


def find_stack(explicit_home: str | None) -> tuple[Path, dict[str, Any]]:
    """The dev stack this command talks to: REFUNDFLOW_HOME if set (or the stack running in
    its .refundflow, when it names a clone's folder); else the nearest running
    one from this folder up (a subfolder of the clone finds it); else the one running in
    this installation's own clone (so any folder does). ./.refundflow when none runs."""
    if explicit_home:
        home = Path(explicit_home).resolve()
        stack = read_stack_file(home)
        if not stack and read_stack_file(home / ".refundflow"):  # named the clone, not its home
            home = home / ".refundflow"
            stack = read_stack_file(home)
        return home, stack
    here = Path.cwd().resolve()
    for folder in [here, *here.parents, PROJECT_ROOT]:
        stack = read_stack_file(folder / ".refundflow")
        if stack:
            return folder / ".refundflow", stack
    return here / ".refundflow", {}


def read_stack_file(home: Path) -> dict[str, Any]:
    """The running dev stack's addresses, or {} if there is none (or it has stopped)."""
    path = home / STACK_FILE
    try:
        data: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    pid = data.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return {}
    return data


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists (one of another user's, which we may not signal, does)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
