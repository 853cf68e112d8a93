"""Apply numbered SQL migrations once each, safely from several processes at a time; and the
two roles: migrations run as the owner of the schemas, the app as a role that may read and
write rows but may not UPDATE, DELETE or TRUNCATE the audit (nor change any table).

`prepare_database` is the whole of `refundflow migrate` (and of the dev stack's start):
migrate as the owner, create the app's role if asked and allowed, grant it what it needs.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import asyncpg

from activities.fair_pool import took_session_state

ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
"""Role names we create or grant to: plain lower-case identifiers, quoted all the same."""
AUDIT = "refundflow.audit"
AUDIT_REFUSED = ("UPDATE", "DELETE", "TRUNCATE")


class MigrationRefused(Exception):
    """The database cannot be brought up to date as asked; one line saying why and what to
    do. Raised before anything is changed, or with the change rolled back."""


@dataclass(frozen=True)
class Schema:
    """A schema and the folder of its numbered .sql files."""

    name: str
    migrations: Path


async def apply_migrations(conn: asyncpg.Connection, directory: Path, schema: str) -> list[str]:
    """Apply the .sql files in `directory` not yet recorded in `<schema>.schema_migrations`.

    An advisory lock keyed by the schema name serialises concurrent starters (worker,
    sandbox, CLI); each file runs in its own transaction. Returns the names applied now.
    Up to date, it needs nothing but reading `schema_migrations`, so the app's role (which
    may not create anything) starts as well as the owner; behind, as the app's role, it
    raises MigrationRefused naming what is missing, having changed nothing.
    """
    if await _pending(conn, directory, schema) == []:
        return []
    try:
        return await _apply_locked(conn, directory, schema)
    except asyncpg.InsufficientPrivilegeError as err:
        role = await conn.fetchval("SELECT current_user")
        missing = await _pending(conn, directory, schema)
        names = ", ".join(missing) if missing else "its migrations"
        raise MigrationRefused(
            f"schema {schema} needs {names}, which role {role} may not apply ({err}): run"
            " `refundflow migrate` with MIGRATION_DATABASE_URL set to the owner's URL"
        ) from None


async def _pending(conn: asyncpg.Connection, directory: Path, schema: str) -> list[str] | None:
    """The migrations not applied yet; None if this role cannot even read which."""
    try:
        rows = await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
    except asyncpg.UndefinedTableError:
        rows = []
    except asyncpg.InsufficientPrivilegeError:
        return None
    done = {r["name"] for r in rows}
    return [p.name for p in sorted(directory.glob("*.sql")) if p.name not in done]


async def _apply_locked(conn: asyncpg.Connection, directory: Path, schema: str) -> list[str]:
    lock_key = int.from_bytes(hashlib.sha256(schema.encode()).digest()[:8], "big", signed=True)
    applied_now: list[str] = []
    took_session_state(conn)  # the lock, and what migrations SET: reset fully when given back
    await conn.execute("SELECT pg_advisory_lock($1)", lock_key)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(
            f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["name"] for r in await conn.fetch(f'SELECT name FROM "{schema}".schema_migrations')
        }
        for path in sorted(directory.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text())
                await conn.execute(
                    f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', path.name
                )
            applied_now.append(path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", lock_key)
    return applied_now


# --- roles ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AppRole:
    """The role the app connects as, to be created if missing and granted its privileges."""

    name: str
    password: str | None = None
    """Set on the role only when it is created here; an existing role's is left alone."""


@dataclass(frozen=True)
class AuditGuard:
    """What Postgres lets a role do to the audit."""

    role: str
    may_append: bool
    """INSERT and SELECT: what the app needs."""
    allowed: tuple[str, ...]
    """Of UPDATE, DELETE, TRUNCATE, what it may do (none, for a protected audit)."""
    owner: bool
    """Superuser, or member of the audit's owner: may disable triggers and grant itself
    anything, whatever was granted."""

    @property
    def protected(self) -> bool:
        return self.may_append and not self.allowed and not self.owner


@dataclass
class Prepared:
    """What `prepare_database` did."""

    owner: str
    """The role that migrated."""
    applied: dict[str, list[str]]
    """Per schema, the migrations applied now."""
    guard: AuditGuard
    """What the app's role (the owner's, without one) may do to the audit."""
    app_role: str | None = None
    """The app's own role, other than the owner; None: the app connects as the owner."""
    created_role: bool = False
    notes: list[str] = field(default_factory=list)


def ident(name: str) -> str:
    """`name` quoted as an SQL identifier (any role or schema name, safely)."""
    return '"' + name.replace('"', '""') + '"'


def check_role_name(name: str) -> str:
    if not ROLE_NAME.fullmatch(name):
        raise MigrationRefused(
            f"{name!r} is not a role name we create: lower-case letters, digits and _,"
            " starting with a letter or _, at most 63 characters"
        )
    return name


def url_user(url: str) -> str | None:
    """The role a database URL names, if it names one (else libpq's default applies)."""
    user = urlsplit(url).username
    return unquote(user) if user else None


def url_as(url: str, role: str, password: str | None) -> str:
    """`url` with another role (and password) in it: same server, same database."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = quote(role, safe="")
    if password:
        netloc += ":" + quote(password, safe="")
    netloc += "@" + host + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


def app_role_from(url: str) -> AppRole:
    """The app's role as DATABASE_URL names it (with MIGRATION_DATABASE_URL the owner's)."""
    user = url_user(url)
    if not user:
        raise MigrationRefused(
            "DATABASE_URL names no role: with MIGRATION_DATABASE_URL set, DATABASE_URL names"
            " the app's own role (postgresql://ROLE:PASSWORD@HOST/DATABASE)"
        )
    password = urlsplit(url).password
    if password == "":  # "ROLE:@": a password meant but not given (an unset variable, say)
        raise MigrationRefused(
            f"DATABASE_URL gives role {user} an empty password: set one (for docker-compose,"
            " REFUNDFLOW_APP_DB_PASSWORD), or leave the ':' out where the server trusts it"
        )
    return AppRole(user, unquote(password) if password else None)


def check_same_database(owner_url: str, app_url: str) -> None:
    """Migrating one database for an app that uses another would help no one (hosts may
    differ: a pooler in front of the app, say; the database may not)."""
    owner_db, app_db = _database_name(owner_url), _database_name(app_url)
    if owner_db != app_db:
        raise MigrationRefused(
            f"MIGRATION_DATABASE_URL names database {owner_db!r} but DATABASE_URL names"
            f" {app_db!r}: both must name the app's database"
        )


def _database_name(url: str) -> str:
    return unquote(urlsplit(url).path.lstrip("/"))


def new_password() -> str:
    """A password for a role created here: generated, never a default."""
    return secrets.token_urlsafe(24)


async def audit_guard(conn: asyncpg.Connection, role: str) -> AuditGuard:
    """What `role` may do to the audit, as Postgres says (asked by anyone: no need to log in
    as the role)."""
    row = await conn.fetchrow(
        """
        SELECT has_table_privilege($1, $2, 'INSERT') AND has_table_privilege($1, $2, 'SELECT')
                   AS may_append,
               has_table_privilege($1, $2, 'UPDATE') AS "UPDATE",
               has_table_privilege($1, $2, 'DELETE') AS "DELETE",
               has_table_privilege($1, $2, 'TRUNCATE') AS "TRUNCATE",
               (SELECT rolsuper FROM pg_roles WHERE rolname = $1)
                   OR pg_has_role($1, (SELECT relowner FROM pg_class WHERE oid = $2::regclass),
                                  'MEMBER') AS owner
        """,
        role,
        AUDIT,
    )
    allowed = tuple(p for p in AUDIT_REFUSED if row[p])
    return AuditGuard(role, bool(row["may_append"]), allowed, bool(row["owner"]))


async def check_may_create(conn: asyncpg.Connection, app: AppRole) -> None:
    """Refuse, before anything changes, to need a role we may not create."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", app.name):
        return
    me = await conn.fetchrow(
        "SELECT current_user AS name, rolsuper OR rolcreaterole AS may"
        " FROM pg_roles WHERE rolname = current_user"
    )
    if not me["may"]:
        raise MigrationRefused(
            f"role {app.name} does not exist and {me['name']} may not create roles: have an"
            f" administrator run CREATE ROLE {ident(app.name)} LOGIN PASSWORD '...', or grant"
            f" {me['name']} CREATEROLE; then run `refundflow migrate` again (nothing was changed)"
        )


async def ensure_role(conn: asyncpg.Connection, app: AppRole) -> bool:
    """Create the app's role if it does not exist; True if created now."""
    if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", app.name):
        return False
    # Utility statements take no parameters: format() quotes the name and the password.
    if app.password is None:
        statement = await conn.fetchval("SELECT format('CREATE ROLE %I LOGIN', $1::text)", app.name)
    else:
        statement = await conn.fetchval(
            "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
            app.name,
            app.password,
        )
    await conn.execute(statement)
    return True


async def grant_app(conn: asyncpg.Connection, role: str, schemas: Sequence[str]) -> None:
    """What the app needs and no more: read and write the rows of every table, but only read
    and append to the audit and only read `schema_migrations`; no TRUNCATE, no DDL.
    Revoked first, so running it again (after a migration added tables) gives the same."""
    q = ident(role)
    async with conn.transaction():
        for schema in schemas:
            s = ident(schema)
            await conn.execute(f"GRANT USAGE ON SCHEMA {s} TO {q}")
            await conn.execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA {s} FROM {q}")
            await conn.execute(
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {s} TO {q}"
            )
            await conn.execute(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {s} TO {q}")
            await conn.execute(f"REVOKE INSERT, UPDATE, DELETE ON {s}.schema_migrations FROM {q}")
        if "refundflow" in schemas:
            await conn.execute(f"REVOKE UPDATE, DELETE ON {AUDIT} FROM {q}")


async def prepare_database(
    owner_url: str, schemas: Sequence[Schema], app: AppRole | None
) -> Prepared:
    """Migrate `schemas` as the role of `owner_url`; then, given an app role other than the
    owner, create it (if missing and allowed) and grant it the app's privileges. Reports
    what Postgres lets the app's role (or, without one, the owner) do to the audit."""
    try:
        conn = await asyncpg.connect(owner_url)
    except (OSError, asyncpg.PostgresError) as err:
        raise MigrationRefused(f"cannot reach the database to migrate it: {err}") from None
    try:
        owner = str(await conn.fetchval("SELECT current_user"))
        separate = app if app is not None and app.name != owner else None
        if separate:
            await check_may_create(conn, separate)
        applied = {s.name: await apply_migrations(conn, s.migrations, s.name) for s in schemas}
        if separate is None:
            return Prepared(owner, applied, await audit_guard(conn, owner))
        return await _set_up_app_role(conn, separate, owner, applied, [s.name for s in schemas])
    except asyncpg.InsufficientPrivilegeError as err:
        raise MigrationRefused(
            f"{err}: the migrating role must own the schemas (run as their owner)"
        ) from None
    finally:
        await conn.close()


async def prepare_for_app(owner_url: str, app_url: str, schemas: Sequence[Schema]) -> Prepared:
    """`prepare_database` for an app whose DATABASE_URL names its own role (created if
    missing, with the URL's password)."""
    check_same_database(owner_url, app_url)
    return await prepare_database(owner_url, schemas, app_role_from(app_url))


async def _set_up_app_role(
    conn: asyncpg.Connection,
    app: AppRole,
    owner: str,
    applied: dict[str, list[str]],
    schemas: list[str],
) -> Prepared:
    async with conn.transaction():  # a role is never left created without its grants
        created = await ensure_role(conn, app)
        await grant_app(conn, app.name, schemas)
    notes = await _grant_database(conn, app.name)
    if created and app.password is None:
        notes.append(
            f"role {app.name} was created without a password: it logs in only where"
            " pg_hba.conf trusts it (as in the embedded dev stack); put a password in"
            " DATABASE_URL to have one set"
        )
    guard = await audit_guard(conn, app.name)
    return Prepared(owner, applied, guard, app.name, created, notes)


async def _grant_database(conn: asyncpg.Connection, role: str) -> list[str]:
    """CONNECT, and TEMPORARY for reconciliation's scratch tables: PUBLIC has both unless
    an administrator revoked them; granted here if missing and we may."""
    missing = [
        p
        for p in ("CONNECT", "TEMPORARY")
        if not await conn.fetchval(
            "SELECT has_database_privilege($1, current_database(), $2)", role, p
        )
    ]
    if not missing:
        return []
    database = str(await conn.fetchval("SELECT current_database()"))
    try:
        async with conn.transaction():
            await conn.execute(
                f"GRANT {', '.join(missing)} ON DATABASE {ident(database)} TO {ident(role)}"
            )
    except asyncpg.InsufficientPrivilegeError:
        return [f"role {role} lacks {' and '.join(missing)} on database {database}: grant it"]
    return []
