"""Two roles on real Postgres: migrations run as the owner, the app as a role that may read
and append to the audit but not UPDATE, DELETE or TRUNCATE it (Postgres itself refuses);
`refundflow migrate` creates and grants that role, and refuses bad input changing nothing."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import asyncpg
import pytest

from activities.migrate import MigrationRefused, apply_migrations, url_as, url_user
from activities.pg_store import MIGRATIONS, SCHEMA, PostgresRefundStore, create_pool
from client.settings import Settings
from tests.conftest import unique_key
from tests.integration.helpers import eventually, fresh_database, run_cli
from tests.integration.test_audit_chain import PAID, trail
from worker.dev_api import api_url
from worker.devstack import APP_ROLE, DevStack

pytestmark = pytest.mark.stack

CHANGES = {
    "UPDATE": "UPDATE refundflow.audit SET reason = 'x' WHERE refund_id = $1",
    "DELETE": "DELETE FROM refundflow.audit WHERE refund_id = $1",
    "TRUNCATE": "TRUNCATE refundflow.audit",
    "DISABLE TRIGGER": "ALTER TABLE refundflow.audit DISABLE TRIGGER audit_append_only",
    "replica mode": "SET session_replication_role = replica",
}


async def assert_may_only_append(app_url: str, owner_url: str) -> None:
    """As the app's role: the store writes; every way to change the audit is refused."""
    pool = await create_pool(app_url, migrate=False)
    try:
        refund_id = unique_key("rf")
        assert await PostgresRefundStore(pool).record_transitions(trail(refund_id, PAID)) == 3
        for what, sql in CHANGES.items():
            async with pool.acquire() as conn:
                args = [refund_id] if "$1" in sql else []
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(sql, *args)
                    pytest.fail(f"the app's role could {what}")
    finally:
        await pool.close()
    owner = await asyncpg.connect(owner_url)
    try:
        reasons = await owner.fetch(
            "SELECT reason FROM refundflow.audit WHERE refund_id = $1", refund_id
        )
        assert len(reasons) == 3 and "x" not in {r["reason"] for r in reasons}
    finally:
        await owner.close()


async def test_the_stack_connects_as_the_app_role(
    stack: DevStack, settings: Settings, http: aiohttp.ClientSession
) -> None:
    assert stack.database_url and stack.owner_database_url
    assert url_user(settings.require_database_url()) == APP_ROLE
    assert url_user(stack.env()["DATABASE_URL"]) == APP_ROLE
    assert "MIGRATION_DATABASE_URL" not in stack.env()  # the app never holds the owner's
    await assert_may_only_append(stack.database_url, stack.owner_database_url)

    async def roles_by_process() -> dict[str, set[str]]:
        owner = await asyncpg.connect(stack.owner_database_url or "")
        try:
            by_port = {
                r["client_port"]: r["usename"]
                for r in await owner.fetch(
                    "SELECT client_port, usename FROM pg_stat_activity"
                    " WHERE backend_type = 'client backend' AND client_port IS NOT NULL"
                )
            }
        finally:
            await owner.close()
        return {
            name: {by_port[port] for port in local_ports(proc.pid) if port in by_port}
            for name, proc in stack.children().items()
            if name in ("worker", "sandbox", "webhooks", "api")
        }

    # The API connects on its first need: /readyz asks the database.
    async with http.get(f"{api_url(stack.config.api_port)}/readyz") as ready:
        assert ready.status == 200, await ready.text()
    # The worker connects once it is up; each process only ever as the app's role.
    seen = await eventually(roles_by_process, lambda found: all(found.values()))
    assert seen == {name: {APP_ROLE} for name in ("worker", "sandbox", "webhooks", "api")}


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of a process's sockets (Linux: /proc), to find its connections
    among Postgres's clients."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if found := re.fullmatch(r"socket:\[(\d+)\]", os.readlink(fd)):
                inodes.add(found.group(1))
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.fixture
async def scratch(stack: DevStack) -> AsyncIterator[tuple[str, str]]:
    """An empty database (its owner's URL) and a role name of its own, both gone after."""
    assert stack.database_url and stack.owner_database_url
    role = f"rf_test_app_{uuid.uuid4().hex[:8]}"
    try:
        async with fresh_database(stack.database_url, "roles") as url:
            yield url, role
    finally:
        owner = await asyncpg.connect(stack.owner_database_url)
        try:
            await owner.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await owner.close()


async def has_schema(url: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT to_regnamespace('refundflow') IS NOT NULL"))
    finally:
        await conn.close()


async def role_exists(url: str, role: str) -> bool:
    conn = await asyncpg.connect(url)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role))
    finally:
        await conn.close()


async def test_migrate_as_the_owner_creates_and_grants_the_app_role(
    stack: DevStack, scratch: tuple[str, str]
) -> None:
    owner_url, role = scratch
    app_url = url_as(owner_url, role, f"pw-{uuid.uuid4().hex}")
    env = {**stack.env(), "DATABASE_URL": app_url, "MIGRATION_DATABASE_URL": owner_url}

    # Bad input: one line, exit status, and nothing changed.
    elsewhere = url_as(owner_url, "postgres", None).rsplit("/", 1)[0] + "/postgres"
    code, _, err = await run_cli({**env, "MIGRATION_DATABASE_URL": elsewhere}, "migrate")
    assert code == 1 and "names database 'postgres'" in err, err
    code, _, err = await run_cli(env, "migrate", "--app-role", "someone_else")
    assert code == 1 and "is not DATABASE_URL's role" in err, err
    code, _, err = await run_cli(env, "migrate", "--app-role", "Bad-Name")
    assert code == 2 and "not a role name" in err, err
    assert not await has_schema(owner_url) and not await role_exists(owner_url, role)

    code, out, err = await run_cli(env, "migrate", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["applied"] == sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert result["migrated_as"] == "postgres" and "pw-" not in out
    assert result["app_role"] == {
        "name": role,
        "separate_from_owner": True,
        "created": True,
        "audit_protected": True,
        "may": [],
        "owner_or_superuser": False,
    }
    await assert_may_only_append(app_url, owner_url)

    code, out, err = await run_cli(env, "migrate")
    assert code == 0, err
    assert out.strip().splitlines() == [
        f"{owner_url} is up to date; nothing to apply",
        f"app role {role} (existing): may read and append to the audit;"
        " UPDATE, DELETE and TRUNCATE refused",
    ]


async def test_the_app_role_starts_on_an_up_to_date_database_and_refuses_to_migrate(
    stack: DevStack, tmp_path: Path
) -> None:
    """The worker migrates at its start: as the app's role that is reading only, and a
    migration still to apply is a clear error, with nothing changed."""
    assert stack.database_url is not None
    later = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, later)
    (later / "9999_later.sql").write_text("CREATE TABLE refundflow.later (x int);")
    conn = await asyncpg.connect(stack.database_url)
    try:
        assert await apply_migrations(conn, MIGRATIONS, SCHEMA) == []
        with pytest.raises(MigrationRefused, match=r"needs 9999_later\.sql.*refundflow_app") as err:
            await apply_migrations(conn, later, SCHEMA)
        assert "MIGRATION_DATABASE_URL" in str(err.value)
        assert await conn.fetchval("SELECT to_regclass('refundflow.later')") is None
    finally:
        await conn.close()


async def test_migrate_with_one_url_creates_an_app_role_on_request(
    stack: DevStack, scratch: tuple[str, str]
) -> None:
    owner_url, role = scratch
    env = {**stack.env(), "DATABASE_URL": owner_url}
    env.pop("MIGRATION_DATABASE_URL", None)

    code, out, err = await run_cli(env, "migrate")
    assert code == 0 and out.startswith(f"applied to {owner_url}:"), err
    # Connected as the owner: it works, and says what that leaves open and how to close it.
    assert "note: role postgres may UPDATE, DELETE, TRUNCATE the audit" in err
    assert "--app-role refundflow_app" in err

    code, out, err = await run_cli(env, "migrate", "--app-role", role, "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["app_role"]["created"] and result["app_role"]["audit_protected"]
    app_url = result["app_database_url"]
    assert url_user(app_url) == role and len(app_url.split(":")[2].split("@")[0]) >= 24
    await assert_may_only_append(app_url, owner_url)
