"""Commands find the running dev stack from the clone's subfolders, and from anywhere the
installation's own clone runs one; REFUNDFLOW_HOME always wins."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client import settings
from client.settings import Settings, find_stack


def running_stack(folder: Path, database_url: str) -> Path:
    home = folder / ".refundflow"
    home.mkdir(parents=True)
    stack = {"pid": os.getpid(), "database_url": database_url}  # this process: alive
    (home / "stack.json").write_text(json.dumps(stack))
    return home


def test_a_subfolder_of_the_clone_finds_its_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = running_stack(tmp_path, "postgresql://here/db")
    deep = tmp_path / "docs" / "notes"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    assert find_stack(None) == (home, json.loads((home / "stack.json").read_text()))
    assert Settings.from_env({}).database_url == "postgresql://here/db"


def test_any_folder_finds_the_stack_of_the_installations_clone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clone = tmp_path / "clone"
    home = running_stack(clone, "postgresql://clone/db")
    monkeypatch.setattr(settings, "PROJECT_ROOT", clone)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert find_stack(None)[0] == home


def test_refundflow_home_wins_and_a_stopped_stack_is_no_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    running_stack(tmp_path, "postgresql://here/db")
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "other"
    assert find_stack(str(other)) == (other.resolve(), {})
    stopped = tmp_path / "stopped"
    (stopped / ".refundflow").mkdir(parents=True)
    (stopped / ".refundflow" / "stack.json").write_text(json.dumps({"pid": 2**22 + 12345}))
    monkeypatch.setattr(settings, "PROJECT_ROOT", stopped)
    monkeypatch.chdir(stopped)
    # The stopped stack here is passed over for the parent's running one.
    assert find_stack(None)[0] == tmp_path / ".refundflow"


def test_refundflow_home_naming_the_clone_finds_the_stack_in_it(tmp_path: Path) -> None:
    """A trial set REFUNDFLOW_HOME to the checkout, not its .refundflow: that stack it is."""
    home = running_stack(tmp_path / "repo", "postgresql://repo/db")
    assert find_stack(str(tmp_path / "repo"))[0] == home
    assert find_stack(str(home))[0] == home
    nothing = tmp_path / "empty"
    nothing.mkdir()
    assert find_stack(str(nothing)) == (nothing, {})
