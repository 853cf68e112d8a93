"""Which role migrates and which the app connects as, decided from the URLs before anything
connects: bad input is one clear sentence and changes nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from activities.migrate import (
    MigrationRefused,
    app_role_from,
    check_role_name,
    check_same_database,
    ident,
    url_as,
    url_user,
)
from client.settings import Settings


def test_the_app_role_and_its_password_come_from_database_url() -> None:
    role = app_role_from("postgresql://rf_app:s%40cret@db:5432/refundflow")
    assert (role.name, role.password) == ("rf_app", "s@cret")
    assert app_role_from("postgresql://rf_app@127.0.0.1:5/refundflow").password is None
    with pytest.raises(MigrationRefused, match="empty password"):
        app_role_from("postgresql://rf_app:@db/refundflow")  # REFUNDFLOW_APP_DB_PASSWORD unset
    with pytest.raises(MigrationRefused, match="names no role"):
        app_role_from("postgresql://db/refundflow")


def test_owner_and_app_must_name_the_same_database() -> None:
    check_same_database(
        "postgresql://owner@db/refundflow", "postgresql://app@pooler:6432/refundflow"
    )
    with pytest.raises(MigrationRefused, match=r"'other'.*'refundflow'"):
        check_same_database("postgresql://owner@db/other", "postgresql://app@db/refundflow")


def test_role_names_we_create_and_quoting() -> None:
    assert check_role_name("refundflow_app") == "refundflow_app"
    for bad in ("Refundflow", "1app", "app-role", 'a"b', "x" * 64, ""):
        with pytest.raises(MigrationRefused, match="not a role name"):
            check_role_name(bad)
    assert ident('we"ird') == '"we""ird"'


def test_url_as_swaps_the_role_and_keeps_the_rest() -> None:
    url = url_as("postgresql://postgres@127.0.0.1:5/refundflow?sslmode=disable", "a", "p/w@")
    assert url == "postgresql://a:p%2Fw%40@127.0.0.1:5/refundflow?sslmode=disable"
    assert url_user(url) == "a"
    assert url_as("postgresql://o:x@[::1]/db", "a", None) == "postgresql://a@[::1]/db"


def test_the_stack_owner_is_used_only_for_the_stacks_own_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / ".refundflow"
    home.mkdir()
    stack = {
        "pid": os.getpid(),
        "database_url": "postgresql://refundflow_app@127.0.0.1:1/refundflow",
        "migration_database_url": "postgresql://postgres@127.0.0.1:1/refundflow",
    }
    (home / "stack.json").write_text(json.dumps(stack))
    monkeypatch.chdir(tmp_path)
    found = Settings.from_env({})
    assert (found.database_url, found.migration_database_url) == (
        stack["database_url"],
        stack["migration_database_url"],
    )
    # DATABASE_URL names another database: migrating the stack's would be a surprise.
    other = Settings.from_env({"DATABASE_URL": "postgresql://me@elsewhere/db"})
    assert other.migration_database_url is None
    given = Settings.from_env(
        {"DATABASE_URL": "postgresql://a@h/db", "MIGRATION_DATABASE_URL": "postgresql://o@h/db"}
    )
    assert given.migration_database_url == "postgresql://o@h/db"
