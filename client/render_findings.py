"""Reconciliation's findings for people: the CLI's `reconcile` and `anomalies`, and the note
beside a refund's status of a finding that still stands."""

from __future__ import annotations

from typing import Any

from client.render import typed, when
from workflows import vocabulary
from workflows.money import format_minor
from workflows.read_models import Finding, Reconciliation


def findings(rows: list[Finding], open_only: bool = False) -> str:
    """Newest first; `open` marks a finding that still stands, with when it was first found
    when an earlier run found it too."""
    if not rows:
        return "no open findings" if open_only else "no findings"
    return "\n".join(
        f"{when(r.created_at)}  {r.action:<9} {'open' if r.open else '':<4} {r.kind:<34}"
        f" {r.refund_id or r.order_id or '-'}  "
        + (f"first found {when(r.first_found_at)}; " if r.first_found_at < r.created_at else "")
        + _details(r.details)
        + _acknowledged(r)
        for r in rows
    )


def _acknowledged(finding: Finding) -> str:
    """Who said it is dealt with (`refundflow acknowledge`): `reconcile --check` leaves it."""
    if not finding.acknowledged_by:
        return ""
    return (
        f" (acknowledged by {finding.acknowledged_by} {when(finding.acknowledged_at)}:"
        f" {typed(finding.acknowledged_reason or '')})"
    )


def open_finding(finding: Finding) -> str:
    """A finding that still stands, as a note beside the refund's status: the refund's own,
    or its order's (no refund id: about the order as a whole)."""
    if finding.refund_id is None:
        return (
            f"note: reconciliation {finding.action} {finding.kind} for order {finding.order_id}"
            f" (first found {when(finding.first_found_at)}): {_details(finding.details)};"
            f" `refundflow anomalies --order {finding.order_id}` lists its findings"
            + _acknowledged(finding)
        )
    why = finding.details.get("not_healed") or finding.details.get("heal_error")
    by = (
        "the outbox dispatcher" if finding.run_id == vocabulary.DISPATCHER_RUN else "reconciliation"
    )
    return (
        f"note: {by} {finding.action} {finding.kind} for {finding.refund_id}"
        f" (first found {when(finding.first_found_at)})"
        + (f": {typed(str(why))}" if why else "")
        + f"; `refundflow anomalies --refund {finding.refund_id}` lists its findings"
        + _acknowledged(finding)
    )


_MONEY_DETAILS = frozenset(
    {
        "provider_paid",
        "accounted_for",
        "ledger",
        "refund_amount",
        "out",
        "captured",
        "paid_elsewhere",
        "provider_amount",
        "unaccounted",
    }
)
"""Details in minor units of the finding's `currency` (shown as money when it says one)."""


def _details(details: dict[str, Any]) -> str:
    """A finding's details as `key value` pairs (`--json` has them as they are stored)."""
    currency = details.get("currency")

    def text(key: str, value: Any) -> str:
        if currency and key in _MONEY_DETAILS and isinstance(value, int):
            return format_minor(value, currency)
        return ", ".join(map(str, value)) if isinstance(value, list) else str(value)

    shown = {k: v for k, v in details.items() if not (currency and k == "currency")}
    return "; ".join(f"{key} {typed(text(key, value))}" for key, value in shown.items())


def reconciliation(report: Reconciliation, grace_s: int = 0) -> str:
    head = (
        f"reconciliation {report.run_id}: {_count(report.refunds, 'refund')},"
        f" {_count(report.provider_refunds, 'provider refund')}, {report.seconds} s;"
        f" healed {report.healed}, escalated {report.escalated}"
        + _of_them_acknowledged(report.details)
        + (f", reported {report.reported} (--no-heal: nothing changed)" if report.reported else "")
    )
    left = (  # not a hint to lower it: the grace covers a provider call still in flight
        f"\n(refunds changed in the last {grace_s} s are left for the next run, --grace)"
        if grace_s
        else ""
    )
    return head + "\n" + findings(report.details) + left


def _of_them_acknowledged(details: list[Finding]) -> str:
    """Said beside the count: `--check` exits 0 when a person acknowledged them all."""
    acknowledged = sum(1 for f in details if f.acknowledged_by)
    return f" ({acknowledged} acknowledged)" if acknowledged else ""


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
