"""Where a request's time went, step by step: the API answers it in a `Server-Timing` header
(api/server_timing.py), the bench reads it to show what an acknowledgement is made of.

Steps are recorded only while someone collects them (`collecting`): RefundClient used by a
script or the CLI records nothing and pays one context-variable read per step. Names are
fixed words (`order`, `hold`, `start`), never identifiers or amounts: the header goes to
whoever called, customers included.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Steps = list[tuple[str, float]]
"""(step, milliseconds), in the order the steps ended."""

_collected: ContextVar[Steps | None] = ContextVar("refundflow_steps", default=None)


@contextmanager
def collecting() -> Iterator[Steps]:
    """Collect the steps taken inside this block (and the tasks it awaits)."""
    steps: Steps = []
    token = _collected.set(steps)
    try:
        yield steps
    finally:
        _collected.reset(token)


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time this block as step `name`, if someone is collecting (also when it raises)."""
    steps = _collected.get()
    if steps is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        steps.append((name, (time.perf_counter() - started) * 1000))


def server_timing(steps: Steps) -> str:
    """The steps as a Server-Timing header value (W3C): `hold;dur=4.2, start;dur=21.7`."""
    return ", ".join(f"{name};dur={ms:.1f}" for name, ms in steps)


def parse_server_timing(value: str) -> dict[str, float]:
    """A Server-Timing header value back to {step: milliseconds} (steps without a duration,
    or with one that is not a number, are left out)."""
    parsed: dict[str, float] = {}
    for metric in value.split(","):
        name, *params = (part.strip() for part in metric.split(";"))
        for param in params:
            key, _, number = param.partition("=")
            if key == "dur" and name:
                try:
                    parsed[name] = float(number)
                except ValueError:
                    continue
    return parsed
