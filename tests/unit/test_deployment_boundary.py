"""docker-compose.yml keeps Temporal and Postgres behind the API (issue 12 item 6): only the
API and the operators' UIs are published, only the worker (with its webhook receiver) and
the API hold Temporal's address and the app database's credentials, and no secret has a
default."""

from __future__ import annotations

import re

from api.config import ApiConfig
from client.settings import PROJECT_ROOT
from tests.unit.test_deployment import SERVICES, env_of

COMPOSE_TEXT = (PROJECT_ROOT / "docker-compose.yml").read_text()
PUBLISHED = {
    "api": "the HTTP API: everything outside reaches refunds through it",
    "temporal-ui": "the operators' Web UI",
    "codec-server": "the Web UI's codec server, which the operator's browser calls",
    "grafana": "the operators' dashboards (a login of its own)",
}
INSIDE = {"worker", "webhooks", "api", "migrate"}
"""The app's processes that may reach Temporal or the app's database (migrate: once, as the
owner, before anything else starts)."""


def test_only_the_api_and_the_operators_uis_are_published() -> None:
    published = {name for name, service in SERVICES.items() if service.get("ports")}
    assert published == set(PUBLISHED)
    for name in ("temporal", "app-postgres", "sandbox-postgres", "temporal-postgresql"):
        assert "ports" not in SERVICES[name], name


def test_the_api_is_published_where_it_listens() -> None:
    command = SERVICES["api"]["command"]
    port = command[command.index("--port") + 1]
    assert SERVICES["api"]["ports"] == [f"{port}:{port}"]
    assert int(port) == ApiConfig(issuer="x", jwks_url="", audience="y").port
    assert command[command.index("--host") + 1] == "0.0.0.0"


def test_only_the_worker_and_the_api_hold_temporal_and_the_app_database() -> None:
    built = {name for name, service in SERVICES.items() if service.get("build")}
    for name in built - INSIDE:
        env = env_of(name)
        assert "TEMPORAL_ADDRESS" not in env, f"{name} can reach Temporal"
        assert "app-postgres" not in env.get("DATABASE_URL", ""), f"{name} holds the app DB"
    assert "app-postgres" not in env_of("sandbox")["DATABASE_URL"]
    for name in ("worker", "api"):
        assert env_of(name)["TEMPORAL_ADDRESS"] == "temporal:7233"
        assert "@app-postgres:5432/" in env_of(name)["DATABASE_URL"]


def test_no_secret_has_a_default() -> None:
    variables = re.findall(r"\$\{([A-Z0-9_]+)(:?[-?])?([^}]*)\}", COMPOSE_TEXT)
    secrets = [v for v in variables if re.search(r"PASSWORD|SECRET|KEYS?$|TOKEN", v[0])]
    assert secrets, "no secrets found: the pattern is wrong"
    for name, how, _ in secrets:
        assert how == ":?", f"${{{name}}} must be required (${{{name}:?...}}), not defaulted"
    assert "change-me" not in COMPOSE_TEXT
