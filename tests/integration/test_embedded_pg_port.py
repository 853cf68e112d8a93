"""The embedded PostgreSQL whose port is taken as it starts: tried once more, then one clear
line naming the port and what to do (the dev stack's 55432 is in the kernel's ephemeral
range, so an outgoing connection may hold it for a moment)."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest

from worker.embedded_pg import EmbeddedPostgres
from worker.ports import free_port
from worker.processes import StackError


def test_a_port_held_by_another_program_is_one_clear_error(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "postgres.log"
    log.write_text("an earlier start's lines stay in the file\n")
    postgres = EmbeddedPostgres(tmp_path / "data", port, log_path=log, durable=False)
    with socket.socket() as holder:
        # Bound, not listening: as an outgoing connection's local port (nothing answers there).
        holder.bind(("127.0.0.1", port))
        started = time.monotonic()
        with pytest.raises(StackError) as refused:
            postgres.start()
    assert str(refused.value) == (
        f"PostgreSQL could not listen on 127.0.0.1:{port}: another program holds it (or held"
        " it as it started); run again, or choose another port (--pg-port)"
    )
    assert time.monotonic() - started >= 1  # tried again after a second
    assert log.read_text().count("Address already in use") == 2
    postgres.stop()


def test_a_start_that_fails_otherwise_says_why_from_its_log(tmp_path: Path) -> None:
    """Not a port: the error ends with what the server logged."""
    log = tmp_path / "postgres.log"
    log.write_text("2026-01-01 LOG:  could not bind IPv4 address: Address already in use\n")
    postgres = EmbeddedPostgres(tmp_path / "data", free_port(), log_path=log, durable=False)
    postgres.start()  # an earlier start's failure in the log is not this start's
    postgres.stop()
    (tmp_path / "data" / "PG_VERSION").write_text("9\n")  # a data folder of another version
    with pytest.raises(StackError, match=r"exited with status 1 while starting: .*PostgreSQL"):
        postgres.start()


def test_a_port_freed_within_the_second_is_taken_on_the_second_try(tmp_path: Path) -> None:
    port = free_port()
    log = tmp_path / "postgres.log"
    postgres = EmbeddedPostgres(tmp_path / "data", port, log_path=log, durable=False)
    holder = socket.socket()
    holder.bind(("127.0.0.1", port))  # as an outgoing connection's local port, for a moment

    def release_once_refused() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and "Address already in use" in log.read_text():
                break
            time.sleep(0.02)
        holder.close()

    releasing = threading.Thread(target=release_once_refused)
    releasing.start()
    try:
        assert postgres.start().endswith(f":{port}/refundflow")
    finally:
        releasing.join()
        postgres.stop()
    assert log.read_text().count("Address already in use") == 1
