"""Where a request's time went, step by step: the API answers it in a `Server-Timing` header
(api/metrics.RequestMetrics), the bench reads it to show what an acknowledgement is made of.

Steps are recorded only while someone collects them (`collecting`): RefundClient used by a
script or the CLI records nothing and pays one context-variable read per step. Names are
fixed words (`order`, `hold`, `start`), never identifiers or amounts. The API shows them
only to callers it has verified as staff or services (`show_to_caller`): which steps a
customer's refusal took, or how long a lock was waited for, is not the customer's to read.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

Steps = list[tuple[str, float]]
"""(step, milliseconds), in the order the steps ended."""


@dataclass
class Collected:
    steps: Steps = field(default_factory=list)
    shown: bool = False
    """Whether the answer may carry the steps (`show_to_caller`)."""


# One mutable object per collection: a step taken in a dependency or a task the request
# awaits (each runs in a copy of the context) lands in the same list.
_collected: ContextVar[Collected | None] = ContextVar("refundflow_steps", default=None)


@contextmanager
def collecting() -> Iterator[Collected]:
    """Collect the steps taken inside this block (and the tasks it awaits)."""
    collected = Collected()
    token = _collected.set(collected)
    try:
        yield collected
    finally:
        _collected.reset(token)


def show_to_caller() -> None:
    """The caller being answered may see the steps (the API: staff and services)."""
    collected = _collected.get()
    if collected is not None:
        collected.shown = True


@contextmanager
def step(name: str) -> Iterator[None]:
    """Time this block as step `name`, if someone is collecting (also when it raises)."""
    collected = _collected.get()
    if collected is None:
        yield
        return
    started = time.perf_counter()
    try:
        yield
    finally:
        collected.steps.append((name, (time.perf_counter() - started) * 1000))


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
