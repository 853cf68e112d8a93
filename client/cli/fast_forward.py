"""`refundflow sandbox fast-forward rf_… 25h`: on the dev stack, move one refund's own clock
on, so that what its durable timers do after hours or days (a review escalated at 24 h and
again later, a refund left in review expiring, a returned item's window closing, a
reminder to an operator) can be tried now. A trial could not rehearse a stalled refund at
all: only the test suite skipped time.

Temporal's per-workflow time skipping (the dev server started with
`frontend.WorkflowTimeSkippingEnabled`, as `refundflow dev` starts it): the refund's
workflow time moves on, its timers fire in order, and what it records carries that time.
Other refunds, the database's clock and the provider keep real time."""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any, NamedTuple

from client.errors import RefundflowError

_UNITS = {"m": "minutes", "h": "hours", "d": "days"}
_LONGEST = timedelta(days=400)
_DURATION = r"\s*(\d{1,6})\s*([mhd])\s*"


def refund_to_move(value: str) -> str:
    """The refund's id; a duration given first is said so (a trial's swapped arguments were
    pointed at `list --order 25h`)."""
    from client.cli.arguments import refund_id

    if re.fullmatch(_DURATION, value.lower()):
        raise argparse.ArgumentTypeError(
            f"{value!r} is a duration: the refund's id comes first"
            f" (`refundflow sandbox fast-forward rf_… {value.strip()}`)"
        )
    return refund_id(value)


class Skip(NamedTuple):
    said: str
    """As given (25h), to say it back."""
    by: timedelta


def duration(value: str) -> Skip:
    """`90m`, `25h`, `15d`: how far to move the refund's clock."""
    found = re.fullmatch(_DURATION, value.lower())
    if not found or int(found.group(1)) == 0:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 90m, 25h or 15d (minutes, hours, days), got {value!r}"
        )
    skip = timedelta(**{_UNITS[found.group(2)]: int(found.group(1))})
    if skip > _LONGEST:
        raise argparse.ArgumentTypeError(f"at most {_LONGEST.days}d at a time, got {value!r}")
    return Skip(f"{int(found.group(1))}{found.group(2)}", skip)


async def skipped(args: argparse.Namespace) -> dict[str, Any]:
    """`sandbox fast-forward`'s answer (the dev stack was found by the caller)."""
    from client.cli.backends import with_client
    from client.cli.output import note

    result: dict[str, Any] = await with_client(
        lambda client: fast_forward(client, args.refund_id, args.by, lambda said: note(args, said))
    )
    return result


async def fast_forward(
    client: Any, refund_id: str, skip: Skip, tell: Callable[[str], None] = lambda _: None
) -> dict[str, Any]:
    """Move the refund's clock on by `skip` and wait until its workflow has caught up: its
    state, escalation level and clock before and after. `tell` hears what it does before the
    wait (each timer that comes due runs the workflow before the next: a trial's 73 h took
    34 s with nothing on the screen)."""
    from temporalio.client import WorkflowExecutionStatus
    from temporalio.service import RPCError, RPCStatusCode
    from temporalio.testing import TimeSkipper, TimeSkippingConfig

    handle = client.temporal.get_workflow_handle(refund_id)
    try:
        described = await handle.describe()
    except RPCError as err:
        if err.status is RPCStatusCode.NOT_FOUND:
            raise RefundflowError(f"no refund {refund_id} (`refundflow list` shows them)") from None
        raise
    if described.status is not WorkflowExecutionStatus.RUNNING:
        raise RefundflowError(
            f"refund {refund_id}'s workflow is no longer running (Temporal:"
            f" {described.status.name.lower()}): nothing waits on its clock"
            f" (`refundflow status {refund_id}` says how the refund stands)"
        )
    before = await client.status(refund_id, live=True)
    tell(
        f"note: moving {refund_id}'s clock on by {skip.said}; its timers fire as they come"
        " due, which can take a minute ..."
    )
    skipper = TimeSkipper(client.temporal, config=TimeSkippingConfig(enabled=False))
    try:
        caught_up = await skipper.fast_forward(handle, skip.by)
    except RPCError as err:
        raise RefundflowError(
            f"Temporal did not move the refund's clock: {err.message} (only the dev stack's"
            " Temporal skips time: `refundflow dev` started by this release)"
        ) from None
    after = await client.status(refund_id, live=caught_up)
    return {
        "refund_id": refund_id,
        "skipped": skip.said,
        "skipped_seconds": int(skip.by.total_seconds()),
        "ended": not caught_up,
        "before": {"state": before.state.value, "escalation_level": before.escalation_level},
        "after": {"state": after.state.value, "escalation_level": after.escalation_level},
    }


def said(result: dict[str, Any]) -> str:
    before, after = result["before"], result["after"]
    moved = (
        f"{before['state']}, escalation {before['escalation_level']} ->"
        f" {after['state']}, escalation {after['escalation_level']}"
    )
    ended = "; its workflow ended meanwhile" if result["ended"] else ""
    return (
        f"{result['refund_id']}: {result['skipped']} of its time skipped: {moved}{ended}"
        f" (`refundflow status {result['refund_id']}` shows what its timers did)"
    )
