"""docker-compose.yml cannot run here (no Docker engine), so test what can be tested: it
parses, has the promised topology, and agrees with the settings the code reads."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import opentelemetry.sdk.environment_variables as otel_environment
import pytest
import yaml

from client.settings import ENV_VARS, PROJECT_ROOT, Settings
from client.tracing import tracing_configured

# The OpenTelemetry SDK's own variables (OTEL_TRACES_SAMPLER, ...): the SDK reads them.
OTEL_SDK_VARIABLES = {name for name in dir(otel_environment) if name.startswith("OTEL_")}

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def env_of(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in SERVICES[service].get("environment", {}).items()}


def resolve(value: str) -> str:
    """Apply compose's ${VAR:-default} with the defaults, as on a machine with no .env, and
    ${VAR:?message} (required, no default) with a stand-in value `VAR`."""
    value = re.sub(r"\$\{([A-Z_]+):\?[^}]*\}", r"\1", value)
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def test_topology_has_every_part_and_no_auto_setup() -> None:
    assert {
        "temporal-postgresql",
        "temporal",
        "temporal-ui",
        "app-postgres",
        "worker",
        "sandbox",
    } <= SERVICES.keys()
    images = [s.get("image", "") for s in SERVICES.values()]
    assert not any("auto-setup" in image for image in images)
    assert SERVICES["temporal"]["image"].startswith("temporalio/server:")


def test_worker_reads_only_variables_the_code_knows() -> None:
    for service in ("worker", "sandbox", "webhooks", "api"):
        unknown = set(env_of(service)) - set(ENV_VARS) - OTEL_SDK_VARIABLES
        assert not unknown, f"{service} sets variables no code reads: {unknown}"


def test_the_temporal_ui_is_read_only_unless_the_operator_says_otherwise() -> None:
    setting = env_of("temporal-ui")["TEMPORAL_DISABLE_WRITE_ACTIONS"]
    assert resolve(setting) == "true"  # a machine with no .env
    # The operator's switch, under the UI's own name.
    assert setting.startswith("${TEMPORAL_DISABLE_WRITE_ACTIONS:-")


def test_worker_and_api_pass_the_trace_settings_through_and_trace_nothing_by_default() -> None:
    for service in ("worker", "api"):
        env = env_of(service)
        passed = {name for name in env if name.startswith("OTEL_")}
        assert {"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_TRACES_SAMPLER"} <= passed, service
        for name in passed:  # each one the operator's, from the environment or .env
            assert env[name].startswith(f"${{{name}:-"), (service, name)
        defaults = {name: resolve(env[name]) for name in passed}
        assert not tracing_configured(defaults), service
        # An empty sampler name makes the SDK warn at every start.
        assert defaults["OTEL_TRACES_SAMPLER"] == "parentbased_always_on"


def _without_the_list(path: Path) -> str:
    """A module's source, less the ENV_VARS assignment itself (client/settings.py): each
    name in it would otherwise be found in its own entry."""
    source = path.read_text()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == "ENV_VARS" for target in node.targets
        ):
            source = source.replace(ast.get_source_segment(source, node) or "", "")
    return source


def test_every_listed_variable_is_really_read_by_the_code() -> None:
    modules = [
        p for d in ("worker", "sandbox", "client", "api") for p in (PROJECT_ROOT / d).rglob("*.py")
    ]
    source = "\n".join(_without_the_list(p) for p in modules)
    assert "ENV_VARS = (" not in source  # the list itself is out of the search
    unread = [name for name in ENV_VARS if not re.search(rf"[\"']{name}[\"']", source)]
    assert unread == []


@pytest.mark.parametrize("service", ["worker", "api"])
def test_addresses_point_at_services_and_their_ports(service: str) -> None:
    env = {k: resolve(v) for k, v in env_of(service).items()}
    settings = Settings.from_env({**env, "REFUNDFLOW_HOME": "/nonexistent"})
    db = urlparse(settings.require_database_url())
    assert db.hostname == "app-postgres" and db.port == 5432
    # The app's restricted role, the one `migrate` grants (not the owner, POSTGRES_USER).
    assert db.username == urlparse(resolve(env_of("migrate")["DATABASE_URL"])).username
    assert db.path.lstrip("/") == SERVICES["app-postgres"]["environment"]["POSTGRES_DB"]
    host, port = settings.temporal_address.split(":")
    assert host == "temporal" and port in SERVICES["temporal"]["expose"]
    if service == "worker":
        sandbox_url = urlparse(settings.payment_provider_url)
        assert sandbox_url.hostname == "sandbox"
        assert str(sandbox_url.port) == env_of("sandbox")["SANDBOX_PORT"]
        assert settings.task_queue == "refunds"
        assert (PROJECT_ROOT / "policies" / f"{settings.policy}.toml").exists()


def test_ui_on_the_dev_port_and_files_referenced_exist() -> None:
    assert "8233:8080" in SERVICES["temporal-ui"]["ports"]
    assert env_of("temporal-ui")["TEMPORAL_ADDRESS"] == "temporal:7233"
    dynamic = env_of("temporal")["DYNAMIC_CONFIG_FILE_PATH"].split("/")[-1]
    assert (PROJECT_ROOT / "deploy/temporal/dynamicconfig" / dynamic).exists()
    for service in ("temporal-schema", "temporal-namespace"):
        script = SERVICES[service]["entrypoint"][-1].replace("/deploy/", "")
        assert (PROJECT_ROOT / "deploy/temporal" / script).exists()
    assert (PROJECT_ROOT / "Dockerfile").exists()
    assert "build" in SERVICES["worker"] and "build" in SERVICES["sandbox"]


def test_dockerfile_ships_the_policies_the_worker_needs() -> None:
    dockerfile = (PROJECT_ROOT / "Dockerfile").read_text()
    assert "COPY policies policies" in dockerfile
    assert "REFUNDFLOW_POLICY_DIR=/app/policies" in dockerfile
    for package in ("workflows", "activities", "worker", "client", "sandbox"):
        assert f"COPY {package} {package}" in dockerfile
    assert Path(PROJECT_ROOT / "pyproject.toml").exists()


def test_printed_database_urls_hide_the_password() -> None:
    from worker.devstack import redact_url

    assert redact_url("postgresql://app:s3cret@db:5432/x") == "postgresql://app:***@db:5432/x"
    assert (
        redact_url("postgresql://postgres@127.0.0.1:1/x") == "postgresql://postgres@127.0.0.1:1/x"
    )


def test_sandbox_sends_webhooks_to_the_receiver_with_the_same_secret() -> None:
    target = urlparse(env_of("sandbox")["SANDBOX_WEBHOOK_URL"])
    assert target.hostname == "webhooks" and target.path == "/webhooks/payments"
    command = SERVICES["webhooks"]["command"]
    assert str(target.port) == command[command.index("--port") + 1]
    assert str(target.port) in SERVICES["webhooks"]["expose"]
    secret = "REFUNDFLOW_WEBHOOK_SECRET"
    assert env_of("sandbox")[secret] == env_of("webhooks")[secret]


def test_customer_notifications_reach_the_sandbox_inbox_with_the_shared_secret() -> None:
    worker, sandbox = env_of("worker"), env_of("sandbox")
    url = urlparse(worker["REFUNDFLOW_CUSTOMER_NOTIFY_URL"])
    assert (url.hostname, url.port) == ("sandbox", int(sandbox["SANDBOX_PORT"]))
    assert url.path == "/notifications/v1/inbox"
    assert f'"{url.path}"' in (PROJECT_ROOT / "sandbox" / "app.py").read_text()
    # The worker signs with the secret the inbox verifies with.
    assert worker["REFUNDFLOW_CUSTOMER_NOTIFY_SECRET"] == sandbox["SANDBOX_NOTIFY_SECRET"]
    assert resolve(worker["REFUNDFLOW_CUSTOMER_NOTIFY_SECRET"])
