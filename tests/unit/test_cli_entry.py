"""Ctrl-C while `refundflow` is still starting (importing for a second or more) ends in one
line and the interrupted status, not a traceback of the import (worker/entry.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from client.cli import sandbox_handlers
from client.cli.arguments import EXIT_INTERRUPTED
from client.errors import RefundflowError
from client.settings import PROJECT_ROOT, Settings
from worker import entry

SCRIPT = PROJECT_ROOT / ".venv" / "bin" / "refundflow"


def test_the_console_script_is_the_entry_that_survives_ctrl_c_while_importing() -> None:
    assert "from worker.entry import main" in SCRIPT.read_text()
    assert entry.EXIT_INTERRUPTED == EXIT_INTERRUPTED


# A Ctrl-C that lands while the command line is half imported: the child sends itself SIGINT
# as the import reaches the CLI's handlers, whatever the machine's speed.
CTRL_C_MID_IMPORT = """
import os, signal, sys

# As in a terminal: a test runner's worker may have passed SIGINT down ignored.
signal.signal(signal.SIGINT, signal.default_int_handler)

class CtrlCWhileImporting:
    def find_spec(self, name, path=None, target=None):
        if name == "client.cli.handlers":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlCWhileImporting())
sys.argv[1:] = ["--version"]
from worker.entry import main
main()
"""

# What `refundflow --help`, and any command's parsing, must not load: Temporal's SDK,
# aiohttp, asyncpg, structlog and cryptography took it from 0.4 s to 1.2-1.9 s here.
HEAVY = ("temporalio", "aiohttp", "asyncpg", "structlog", "cryptography", "uvicorn")


def _python(code: str) -> subprocess.CompletedProcess[str]:
    """`code` run by this interpreter in the project's folder, its output captured."""
    return subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )


def _loaded_after(code: str) -> set[str]:
    shown = _python(f"{code}\nimport sys; print(*sorted(sys.modules))")
    assert shown.returncode == 0, shown.stderr
    return {name.split(".")[0] for name in shown.stdout.split()}


def test_ctrl_c_while_starting_is_one_line_and_exit_130() -> None:
    started = _python(CTRL_C_MID_IMPORT)
    err = started.stderr
    assert started.returncode == EXIT_INTERRUPTED, (started.stdout, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert err.startswith("error: interrupted")


def test_the_command_line_parses_without_the_heavy_libraries() -> None:
    loaded = _loaded_after("from worker.cli import build_parser; build_parser()")
    assert not loaded & set(HEAVY), sorted(loaded & set(HEAVY))


def test_the_api_commands_load_neither_temporal_nor_the_database_driver() -> None:
    # status, list, request ... talk HTTP to the API: aiohttp and pydantic, nothing else.
    loaded = _loaded_after("import worker.cli, client.http_client, client.cli.acting")
    assert "aiohttp" in loaded
    assert not loaded & {"temporalio", "asyncpg", "structlog", "cryptography"}


def test_an_interrupted_command_says_what_it_may_have_done() -> None:
    """A read changed nothing; only a request is told that asking again returns the same
    refund (a trial read that after interrupting `report`); an action on a refund is told
    to look at its status (a trial asked again and read "refused", exit 1)."""
    from client.cli.app import (
        INTERRUPTED,
        INTERRUPTED_ACTING,
        INTERRUPTED_OTHER,
        INTERRUPTED_READING,
        interrupted_words,
    )
    from worker.cli import build_parser

    parser = build_parser()
    for argv, words in (
        (["report"], INTERRUPTED_READING),
        (["subscribers", "list"], INTERRUPTED_READING),
        (["policy", "show"], INTERRUPTED_READING),
        (["approve", f"rf_{'0' * 24}"], INTERRUPTED_ACTING),
        (["operator", "retry", f"rf_{'0' * 24}", "--operator", "omar"], INTERRUPTED_ACTING),
        (["request", "--order", "ord_1", "--amount", "100", "--reason", "damaged"], INTERRUPTED),
        (["subscribers", "remove", "crm"], INTERRUPTED_OTHER),
        (["reconcile"], INTERRUPTED_OTHER),
    ):
        assert interrupted_words(parser.parse_args(argv)) == words, argv
    assert "nothing was changed" in INTERRUPTED_READING


# Ctrl-C while the command line is parsed (argparse asks the terminal's size then): one line.
CTRL_C_WHILE_PARSING = """
import os, shutil, signal

signal.signal(signal.SIGINT, signal.default_int_handler)

def interrupted(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGINT)
    return os.terminal_size((80, 24))

shutil.get_terminal_size = interrupted
from worker.cli import main
main(["report", "--help"])
"""


def test_ctrl_c_while_parsing_is_one_line_and_exit_130() -> None:
    parsed = _python(CTRL_C_WHILE_PARSING)
    assert parsed.returncode == EXIT_INTERRUPTED, (parsed.stdout, parsed.stderr)
    assert parsed.stderr == "error: interrupted while starting: nothing was done\n"


async def test_sandbox_commands_find_no_stack_instead_of_trying_the_default_port(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trial: from a folder with no stack (and REFUNDFLOW_HOME unset), `sandbox faults
    show` asked 127.0.0.1:8088, where another folder's stack may answer (and be changed by
    `faults set`)."""
    monkeypatch.delenv("SANDBOX_URL", raising=False)
    monkeypatch.delenv("REFUNDFLOW_HOME", raising=False)
    settings = replace(Settings.from_env({}), home=tmp_path / ".refundflow")
    args = argparse.Namespace(sandbox_command="faults", faults_command="show")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(RefundflowError) as refused:
            await sandbox_handlers._ask_sandbox(args, session, settings)
    said = str(refused.value)
    assert said.startswith("no dev stack found, and the sandbox runs in one: start")
    assert "REFUNDFLOW_HOME" in said and said.endswith("or set SANDBOX_URL")


def test_a_bad_codec_key_id_is_the_option_s_mistake(capsys: pytest.CaptureFixture[str]) -> None:
    """A trial: `codec-key --id "bad id"` exited 1, where bad input exits 2 (README)."""
    from worker.cli import build_parser

    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["codec-key", "--id", "bad id"])
    assert refused.value.code == 2
    assert "argument --id: key id 'bad id': use letters, digits" in capsys.readouterr().err
