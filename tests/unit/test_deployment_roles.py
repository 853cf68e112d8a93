"""docker-compose.yml's two database roles: `migrate` runs as the owner and sets up the
app's role; every app service connects as that role only, after `migrate` has finished."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from activities.migrate import ROLE_NAME
from client.settings import ENV_VARS, PROJECT_ROOT, Settings
from tests.unit.test_deployment import SERVICES, env_of, resolve

APP_SERVICES = ("worker", "webhooks", "api")


def url_of(service: str, variable: str) -> Any:
    return urlparse(resolve(env_of(service)[variable]))


def test_migrate_runs_as_the_owner_and_sets_up_the_app_role() -> None:
    migrate = SERVICES["migrate"]
    assert migrate["command"][:2] == ["refundflow", "migrate"]
    # The sandbox, a stand-in for systems outside, migrates a database of its own.
    assert "--sandbox" not in migrate["command"]
    assert set(env_of("migrate")) <= set(ENV_VARS)
    owner = url_of("migrate", "MIGRATION_DATABASE_URL")
    app = url_of("migrate", "DATABASE_URL")
    assert owner.username == SERVICES["app-postgres"]["environment"]["POSTGRES_USER"]
    assert app.username != owner.username and ROLE_NAME.fullmatch(app.username)
    assert (owner.hostname, owner.port, owner.path) == (app.hostname, app.port, app.path)


def test_app_services_connect_as_the_app_role_once_migrate_is_done() -> None:
    app_url = env_of("migrate")["DATABASE_URL"]
    for service in APP_SERVICES:
        env = env_of(service)
        assert env["DATABASE_URL"] == app_url, service
        assert "MIGRATION_DATABASE_URL" not in env, f"{service} holds the owner's URL"
        depends = SERVICES[service]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", service
        resolved = {name: resolve(value) for name, value in env.items()}  # as compose would
        settings = Settings.from_env({**resolved, "REFUNDFLOW_HOME": "/nonexistent"})
        assert settings.migration_database_url is None


def test_the_app_role_password_has_no_default() -> None:
    # ${VAR:?}: compose refuses to start without it (and `refundflow migrate` would refuse
    # an empty password rather than create a role nobody can log in as).
    app_url = env_of("migrate")["DATABASE_URL"]
    assert "${REFUNDFLOW_APP_DB_PASSWORD:?" in app_url
    assert urlparse(resolve(app_url)).password == "REFUNDFLOW_APP_DB_PASSWORD"
    compose = (PROJECT_ROOT / "docker-compose.yml").read_text()
    assert "REFUNDFLOW_APP_DB_PASSWORD:-" not in compose
