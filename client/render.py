"""Human-readable rendering for the CLI. The words themselves come from the status object."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from workflows.models import StatusView
from workflows.money import format_minor


def validation_error(err: ValidationError) -> str:
    problems = []
    for problem in err.errors():
        where = ".".join(str(p) for p in problem["loc"]) or "request"
        message = problem["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
        if problem["type"] == "literal_error":
            message = f"must be one of {problem['ctx']['expected']}"
        elif problem["type"] == "string_too_long":
            message = f"is too long (at most {problem['ctx']['max_length']} characters)"
        problems.append(message if where == "request" else f"{where} {message}")
    return "; ".join(problems)


def status(view: StatusView) -> str:
    lines = [
        f"refund {view.refund_id}  order {view.order_id}",
        f"  state      {view.state.value}"
        + (f" ({view.cancel_reason.value})" if view.cancel_reason else ""),
        f"  amount     {format_minor(view.amount, view.currency)}"
        + (
            f" (requested {format_minor(view.requested_amount, view.currency)})"
            if view.amount != view.requested_amount
            else ""
        ),
        f"  awaiting   {view.awaiting.value}   escalation level {view.escalation_level}",
        f"  policy     {view.policy_version}",
        f"  next step  {view.next_step}",
        f"  eta        {view.eta:%Y-%m-%d %H:%M} UTC" if view.eta else "  eta        -",
        f"  message    {view.message}",
        "  timeline",
    ]
    for entry in view.timeline:
        lines.append(
            f"    {entry.seq:>2}. {entry.at:%Y-%m-%d %H:%M:%S}  {entry.state.value:<15}"
            f" {entry.event:<20} by {entry.actor} via {entry.source}: {entry.reason}"
        )
    return "\n".join(lines)


def listing(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no refunds match"
    lines = [f"{'REFUND':<28} {'ORDER':<22} {'STATE':<15} {'AMOUNT':>14} {'AWAITING':<17} ESC"]
    for r in rows:
        lines.append(
            f"{r['refund_id']:<28} {r['order_id']:<22} {r['state']:<15}"
            f" {format_minor(r['amount'], r['currency']):>14} {r['awaiting']:<17}"
            f" {r['escalation_level']}"
        )
    return "\n".join(lines)


def order(data: dict[str, Any]) -> str:
    lines = [
        f"order {data['order_id']}"
        f"  captured {format_minor(data['captured_amount'], data['currency'])}",
        f"  payment reference {data['payment_reference']}  delivered {data['delivered_at'] or '-'}",
    ]
    for line in data["lines"]:
        lines.append(
            f"  {line['sku']} x{line['quantity']} at"
            f" {format_minor(line['unit_price'], data['currency'])} ({line['category']})"
        )
    return "\n".join(lines)


def ledger(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no provider refunds"
    lines = [f"{'PROVIDER REFUND':<20} {'ORDER':<22} {'AMOUNT':>14} {'STATUS':<10} IDEMPOTENCY KEY"]
    for r in rows:
        lines.append(
            f"{r['id']:<20} {r['order_id']:<22} {format_minor(r['amount'], r['currency']):>14}"
            f" {r['status']:<10} {r['idempotency_key']}"
        )
    return "\n".join(lines)


def audit(rows: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r['seq']:>3}. {r['at']}  {r['from_state'] or '-':>15} -> {r['to_state']:<15}"
        f" {r['event']:<20} by {r['actor']} via {r['source']}: {r['reason']}"
        f"  [{r['policy_version']}]"
        for r in rows
    )


def faults(data: dict[str, Any]) -> str:
    from sandbox.faults import Faults

    defaults = Faults().model_dump()
    lines = []
    for system, settings in data.items():
        changed = {k: v for k, v in settings.items() if defaults[system].get(k) != v}
        shown = ", ".join(f"{k}={v}" for k, v in sorted(changed.items())) or "no faults"
        lines.append(f"{system:<10} {shown}")
    return "\n".join(lines)


def findings(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "no findings"
    return "\n".join(
        f"{r['created_at'][:19]}  {r['action']:<9} {r['kind']:<34} {r['refund_id'] or '-'}"
        f"  {r['details']}"
        for r in rows
    )


def reconciliation(report: dict[str, Any]) -> str:
    head = (
        f"reconciliation {report['run_id']}: {report['refunds']} refunds,"
        f" {report['provider_refunds']} provider refunds, {report['seconds']} s;"
        f" healed {report['healed']}, escalated {report['escalated']}"
    )
    return head + "\n" + findings(report["details"])
