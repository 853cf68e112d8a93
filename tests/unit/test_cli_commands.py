"""`refundflow` is put together from the client's commands and the stack's own: all of them
are listed, in their usual order, and each has exactly one handler."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from client.cli import arguments as types
from client.cli.commands import CLIENT_COMMANDS, build_parser
from client.cli.handlers import HANDLERS
from worker import cli as worker_cli

STACK_COMMANDS = [
    "dev", "worker", "webhooks", "migrate", "bench", "api", "token", "codec-server", "codec-key",
    "action-key",
]  # fmt: skip


def command_names(parser: argparse.ArgumentParser) -> list[str]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_refundflow_lists_every_command_in_the_usual_order() -> None:
    assert command_names(worker_cli.build_parser()) == [
        "dev", "worker", "webhooks", "migrate", "sandbox", "operator", "request",
        "eligibility", "policy", "track", "events", "subscribers", "status", "list",
        "approve", "reject", "cancel", "received", "reconcile", "anomalies", "acknowledge",
        "bench",
        "audit", "report", "api", "token", "codec-server", "codec-key", "action-key",
    ]  # fmt: skip


def test_each_command_has_one_handler_on_its_own_side() -> None:
    client_side = command_names(build_parser(CLIENT_COMMANDS))
    assert sorted(client_side) == sorted(HANDLERS)
    assert sorted(worker_cli.STACK_HANDLERS) == sorted(STACK_COMMANDS)
    assert not set(client_side) & set(STACK_COMMANDS)


def test_a_file_to_write_is_checked_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`bench --json-out` and `report --chart` are written at the end: a folder that does not
    exist is refused at once (exit 2), not after the bench ran for minutes."""
    missing = tmp_path / "no-such-folder" / "bench.json"
    for argv, option in (
        (["bench", "--json-out", str(missing)], "--json-out"),
        (["report", "--chart", str(tmp_path)], "--chart"),
    ):
        with pytest.raises(SystemExit) as stopped:
            worker_cli.build_parser().parse_args(argv)
        assert stopped.value.code == 2
        said = capsys.readouterr().err
        assert f"argument {option}:" in said
        assert ("does not exist" in said) if argv[0] == "bench" else ("is a folder" in said)
    fine = worker_cli.build_parser().parse_args(["bench", "--json-out", str(tmp_path / "b.json")])
    assert fine.json_out == tmp_path / "b.json"


@pytest.mark.parametrize(
    ("name", "refusal"),
    [
        ("", "expected a file name, got ''"),
        ("out/", "expected a file name, got 'out/'"),
        ("afile/b.json", "afile is a file, not a folder"),
        ("afile/.", "expected a file name"),
        ("loop", "Symlink loop"),
        ("dangling.json", "nowhere does not exist"),  # a symlink is checked where it points
    ],
)
def test_a_file_to_write_is_a_file_in_a_folder(tmp_path: Path, name: str, refusal: str) -> None:
    (tmp_path / "afile").write_text("")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere" / "b.json")
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    with pytest.raises(argparse.ArgumentTypeError, match=re.escape(refusal)):
        types.file_to_write(name if name in ("", "out/") else f"{tmp_path}/{name}")


def test_an_existing_file_is_written_whatever_its_folder_allows(tmp_path: Path) -> None:
    """Written in place: a file that takes writes in a folder that does not (a user's, say)."""
    assert types.file_to_write(os.devnull) == Path(os.devnull)
    # Named as given: /dev/stdout resolved is /proc/<pid>/fd/pipe:[…] in a pipe, not a file.
    assert types.file_to_write("/dev/stdout") == Path("/dev/stdout")
