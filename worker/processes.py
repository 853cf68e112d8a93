"""Child processes of the dev stack: started so they can never outlive us."""

from __future__ import annotations

import ctypes
import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

# Where the stack's users have always found it (worker/ports.py: why not bind(0)).
from worker.ports import free_port as free_port

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    # Runs in the child after fork (and after any user switch, which would clear it): if
    # the dev stack is killed, even with SIGKILL, the kernel signals its children.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


def spawn(
    args: Sequence[str],
    *,
    log_path: Path | None,
    env: dict[str, str] | None = None,
    user: str | None = None,
    death_signal: int = signal.SIGTERM,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a child in its own session (Ctrl-C reaches only us; we stop children in order)."""
    out = open(log_path, "ab") if log_path else None
    try:
        return subprocess.Popen(
            list(args),
            stdout=out,
            stderr=subprocess.STDOUT if out else None,
            stdin=subprocess.DEVNULL,
            env=env,
            user=user,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=lambda: _die_with_parent(death_signal),
        )
    finally:
        if out:
            out.close()


def stop_process(
    proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
) -> int:
    """Signal one process we started, wait for it, kill it if it will not stop."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        except ProcessLookupError:
            pass
    return proc.returncode if proc.returncode is not None else -1


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_for_port(
    port: int,
    proc: subprocess.Popen[bytes],
    what: str,
    timeout: float = 60,
    host: str = "127.0.0.1",
    log: Path | None = None,
) -> None:
    """Wait for a child to listen on `port`; if it exits first, the error ends with its
    log's last lines (`log`), which say why."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            said = f": {_tail(log)}" if log is not None else ""
            raise StackError(f"{what} exited with status {proc.returncode} while starting{said}")
        if port_in_use(port, host):
            return
        time.sleep(0.1)
    raise StackError(f"{what} did not open port {port} within {timeout:.0f} s")


class StackError(Exception):
    """The dev stack could not start or keep running; one line for the user."""


def wait_http(url: str, proc: subprocess.Popen[bytes], what: str, log: Path) -> None:
    """Wait (60 s at most) for a child's health URL to answer 200; its log's last lines in
    the error if it exits first."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{what} exited with status {proc.returncode}: {_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    raise StackError(f"{what} did not answer {url} within 60 s")


def post_json(url: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def get_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def redact_url(url: str) -> str:
    """The URL without its password, for printing."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"
