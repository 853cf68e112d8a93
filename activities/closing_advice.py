"""What reconciliation says of a refund whose workflow Temporal ended when it does not close
it now: the next run looks again (a payment that may still be on its way), or a person
decides (the reset that runs it on, in the `temporal` CLI's words for this cluster).
Split from activities.closing, which closes what it can."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from workflows.read_models import AuditEntry
from workflows.refund.case import RefundCase
from workflows.states import RefundState


@dataclass(frozen=True)
class EndedRun:
    refund_id: str
    run_id: str | None
    """The run reconciliation saw end (None: its latest)."""
    ended: str
    """How and when: "terminated 2026-11-27 10:46:03 UTC"."""


def reset_command(
    refund_id: str,
    run_id: str | None,
    to: str,
    target: str,
    reason: str = "run on",
) -> str:
    """The `temporal workflow reset` a finding tells a person to run, said once: `to` is
    FirstWorkflowTask or LastWorkflowTask, `target` the CLI's options for this cluster."""
    which_run = f" -r {run_id}" if run_id else ""
    return (
        f"`temporal workflow reset -w {refund_id}{which_run} --type {to}"
        f' --reason "{reason}"{target}`'
    )


def ended_before_its_first_step_was_kept(err: RPCError) -> bool:
    """Temporal answers no query of a run that ended before any of its workflow tasks
    completed (an auto-approved refund is one: terminated while it paid), now or ever; it
    was a raw error on every run (a red-team trial)."""
    return (
        err.status == RPCStatusCode.FAILED_PRECONDITION
        and "before WorkflowTaskStarted" in err.message
    )


def run_it_on_from_the_start(run: EndedRun, target: str) -> str:
    reset = reset_command(run.refund_id, run.run_id, "FirstWorkflowTask", target)
    return (
        "its run ended during its first step, before Temporal kept anything of it, so what"
        " it did cannot be read from it (the provider may have paid it). Run it on from the"
        f" start, before Temporal's retention removes the ended run: {reset}; it looks its"
        " payment up before paying (paid at most once) and records the rest itself"
    )


IN_FLIGHT_SECONDS = 120
"""How long after a run ended while paying its provider call may still be paid: the worker
goes on with the call's attempts (a local activity's three, a regular activity's current
one) until it learns the run ended, each attempt given up after 10 s, and a provider may
finish a call its caller gave up on. Until then, the provider holding no paid refund (none,
or an earlier attempt's failed one before an operator's retry: a review) is no proof that
no money moved (a red-team trial: closed "no money moved" by `reconcile --grace 0`, paid
5 s later, then paid again under a new key)."""


def payment_may_be_on_its_way(
    details: dict[str, Any], now: datetime | None = None, run_paying: bool = False
) -> str | None:
    """Why a refund whose run ended while it paid (by the run's own state, `run_paying`, or
    its projection's, in the finding's details), of which the provider holds no paid refund
    yet, is not closed as "no money moved" now (None: it may be). A run's end time that
    cannot be read counts as just now: waiting is the safe side."""
    projected = (
        details.get("state") == "refunding" and details.get("awaiting") == "payment_provider"
    )
    if not (run_paying or projected):
        return None
    now = now or datetime.now(UTC)
    try:
        ended_at = datetime.fromisoformat(details.get("closed_at") or "")
    except ValueError:
        ended_at = now
    if ended_at.tzinfo is None:  # Temporal's times are UTC
        ended_at = ended_at.replace(tzinfo=UTC)
    ago = (now - ended_at).total_seconds()
    if ago >= IN_FLIGHT_SECONDS:
        return None
    return (
        f"its run ended {max(ago, 0):.0f} s ago while it was paying: a provider call on its"
        f" way then may still be paid, so it is closed no sooner than {IN_FLIGHT_SECONDS} s"
        " after its end (as cancelled if the provider still holds nothing, completed if it"
        " paid): looked at again by the next run"
    )


def cli_target(temporal: Client) -> str:
    """The `temporal` CLI's options that reach a Temporal on this machine (a dev stack's: a
    trial's reset, given without them, asked localhost:7233, another stack's or nothing).
    Elsewhere (a cluster's service name, TLS, an API key) the worker's address is not the
    operator's: their own `temporal` profile or TEMPORAL_ADDRESS applies (a review)."""
    host = temporal.service_client.config.target_host
    if not host.startswith(("127.0.0.1:", "localhost:")) or temporal.service_client.config.tls:
        return ""
    target = f" --address {host}"
    if temporal.namespace != "default":
        target += f" --namespace {temporal.namespace}"
    return target


def person_decides(case: RefundCase, run: EndedRun, target: str = "") -> str:
    reset = reset_command(run.refund_id, run.run_id, "LastWorkflowTask", target)
    if case.p.item_received:
        has_it, after = (
            "the warehouse has received it",
            " If it then waits for an operator (its payment refused), `refundflow operator"
            " retry` pays it or `operator cancel` closes it.",
        )
    else:
        has_it, after = (
            "it may be on its way",
            " It then waits for the item again: if the warehouse sent a receipt meanwhile, it"
            f" was refused, so record it again (`refundflow received {run.refund_id}`); its"
            " return window closes it if none comes.",
        )
    asked = f"approved, and the customer was asked to send the item back ({has_it})"
    if case.p.state is RefundState.PENDING_REVIEW:  # a receipt kept before the approval
        asked = "waiting for its review, and the warehouse has received its returned item"
    return (
        f"{asked}: closed"
        " without paying, a customer who sent it would have neither, so a person decides."
        f" Run it on from its last step, before Temporal's retention removes the ended run:"
        f" {reset}, and act once `refundflow status {run.refund_id} --live` shows it waiting"
        f" again.{after}"
    )


def utc_words(when: str | None) -> str:
    """'2026-11-27 11:34:50 UTC' from the finding's ISO time (as the audit shows times)."""
    try:
        return f"{datetime.fromisoformat(when or '').astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    except ValueError:
        return when or ""


def last_action_unkept(refund_id: str, action: AuditEntry, last: AuditEntry, target: str) -> str:
    """A run Temporal ended while it recorded and paid an action (an approval, a receipt:
    the update's workflow task, whose payment runs in it), which its history never kept;
    the record has it. Not a reset: a trial was told to reset "the run that wrote it", which
    does not exist, and the refund stayed escalated though the provider had paid."""
    again = {
        "approve": f"`refundflow --as {action.actor} approve {refund_id}` (the same amount)",
        "start_refund": f"`refundflow --as {action.actor} received {refund_id}`",
        # A receipt kept before the approval (a review: "the reset does it again" of it).
        "item_received": f"`refundflow --as {action.actor} received {refund_id}`",
    }.get(action.event)
    reset = reset_command(refund_id, None, "LastWorkflowTask", target)
    if again is None:  # a timer's, a signal's, the provider's: the reset does it again
        return (
            f"Temporal ended its run while it recorded its last step ({action.event} by"
            f" {action.actor}, entry {action.seq}), which the run's history did not keep; the"
            f" record has it (entry {last.seq}, {last.to_state.value}). Run it on from its"
            f" last step, {reset}: it takes that step again, the payment looked up before"
            " anything is paid"
        )
    return (
        f"Temporal ended its run while it recorded and paid its last action ({action.event}"
        f" by {action.actor}, entry {action.seq}), which the run's history did not keep; the"
        f" record has it (entry {last.seq}, {last.to_state.value}). Run it on from its last"
        f" step, {reset}, then have {action.actor} send it again: {again}. The record"
        " takes it as the same action, and the payment is looked up before anything is paid"
    )
