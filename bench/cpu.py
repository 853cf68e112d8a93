"""CPU time per process, read from /proc: what each part of the stack spent on a phase."""

from __future__ import annotations

import os
from pathlib import Path

TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, user + system CPU ms) of a live process, None once it has gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: the fields after its ')' are fixed.
    fields = text[text.rindex(")") + 2 :].split()
    return int(fields[1]), (int(fields[11]) + int(fields[12])) * TICK_MS


def trees_cpu_ms(roots: dict[str, int]) -> dict[str, float]:
    """CPU ms of each root process and every live descendant (Postgres forks a backend per
    connection; some servers run under a wrapper), from one pass over /proc."""
    parents: dict[int, int] = {}
    spent: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            parents[int(entry.name)], spent[int(entry.name)] = stat
    owner = {pid: name for name, pid in roots.items()}
    totals = dict.fromkeys(roots, 0.0)
    for pid, ms in spent.items():
        walk = pid
        while walk not in owner and walk not in (0, 1) and walk in parents:
            walk = parents[walk]
        if walk in owner:
            totals[owner[walk]] += ms
    return totals


def own_cpu_ms() -> float:
    """This process's CPU ms (not its children's: they are measured as themselves)."""
    stat = _stat(os.getpid())
    assert stat is not None
    return stat[1]


class CpuMeter:
    """CPU ms named processes spend between `start` and `spent`."""

    def __init__(self, processes: dict[str, int]) -> None:
        self.processes = processes
        self.before: dict[str, float] = {}

    def _now(self) -> dict[str, float]:
        now = trees_cpu_ms(self.processes)
        now["bench client"] = own_cpu_ms()
        return now

    def start(self) -> None:
        self.before = self._now()

    def spent(self) -> dict[str, float]:
        """CPU ms each process spent since `start`."""
        after = self._now()
        return {name: after[name] - self.before.get(name, 0.0) for name in after}
