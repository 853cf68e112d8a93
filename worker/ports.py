"""Free ports for servers a test or bench stack starts a moment later.

Why not bind(0): the kernel hands out ports from its ephemeral range, the same range every
outgoing connection's local port comes from. Between our asking and the server binding,
an outgoing connection (there are hundreds on a busy test run), or another process asking
the same way, could take the port: seen in a fresh-clone run, the sandbox failed with
"address already in use" on 45117 and nine chaos tests errored.

So: ports below the ephemeral range, which the kernel gives to nobody on its own; each
pytest-xdist worker draws from its own slice of them, so two test processes never pick the
same one; a process never hands out a port twice; and each is checked free before it is
handed out. Where the range cannot be read or leaves too little room, bind(0) as before.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

LOWEST = 20000  # below: well-known services and other software's defaults
EPHEMERAL = Path("/proc/sys/net/ipv4/ip_local_port_range")
_given: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now and that no other process of this run will pick."""
    low, high = _slice()
    for _ in range(64):
        port = random.randint(low, high) if high > low else 0
        if port and port not in _given and _bindable(host, port):
            _given.add(port)
            return port
    return _any_port(host)


def _slice() -> tuple[int, int]:
    """This process's share of the ports below the ephemeral range ((0, 0): none)."""
    try:
        first_ephemeral = int(EPHEMERAL.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0, 0
    if first_ephemeral - LOWEST < 2000:
        return 0, 0
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, ...
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    size = (first_ephemeral - LOWEST) // max(count, 1)
    low = LOWEST + (index % max(count, 1)) * size
    return low, low + size - 1


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _any_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port
