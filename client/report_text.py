"""`refundflow report` as text for a terminal (client.report builds the report)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from client.render import when as format_moment  # the CLI's one format for a moment
from workflows.money import format_minor
from workflows.read_models import MoneyTotals, RefundReport

OUTCOMES = ("completed", "cancelled", "open")
TEXT_SERIES_AT_MOST = 62
"""Longer series are left to the chart: a terminal is no place for a year of days."""


def format_duration(seconds: float | None) -> str:
    """180.0 -> '3m 00s': durations people can read at a glance."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    if whole < 120:
        return f"{seconds:g} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 120:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def format_period(report: RefundReport) -> str:
    since = format_moment(report.since) if report.since else "the beginning"
    until = format_moment(report.until) if report.until else "now"
    return f"{since} .. {until} (requested_at, until exclusive)"


def duplicates_line(
    count: int, orders: Sequence[str] = (), acknowledged: Sequence[str] = ()
) -> str:
    """The duplicate refunds' count; when there are some, where to look (`orders`: the
    orders behind them, at most five named) and whether to (`acknowledged`: the orders whose
    findings someone said are dealt with outside refundflow)."""
    if count == 0:
        return "0 (must be 0)"
    where = f" on {_named('order', orders)}" if orders else ""
    # Or around refundflow: a dashboard refund on an order refundflow paid nothing on counts
    # too (a trial read "refunded twice" of it).
    said = f"{count} !!! MUST BE 0: money may have been refunded twice or around refundflow{where};"
    left = [order for order in orders if order not in acknowledged]
    if orders and not left:  # every one dealt with: a fact of the period, not an alarm
        return (
            f"{said} {'it is' if len(orders) == 1 else 'all are'} acknowledged as dealt with"
            " outside refundflow (`refundflow anomalies --order ORDER` says by whom and how)"
        )
    also = f" ({_named('order', acknowledged)} acknowledged)" if acknowledged else ""
    return (
        f"{said} `refundflow anomalies` lists what reconciliation found, `refundflow reconcile"
        f" --no-heal` checks again now: investigate now{also}"
    )


def duplicates_of(report: RefundReport) -> tuple[int, list[str], list[str]]:
    """What `duplicates_line` says of a report's duplicates (the banner and the figure)."""
    return report.duplicate_refunds, report.duplicate_orders, report.acknowledged_orders


def _named(noun: str, ids: Sequence[str]) -> str:
    """'order ord_1' or 'orders ord_1, ord_2 and 3 more' (at most five named)."""
    named = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
    return f"{noun if len(ids) == 1 else noun + 's'} {named}"


def money_line(totals: MoneyTotals) -> str:
    """`  money USD  255.00 USD refunded, 300.00 USD open, 0.00 USD not paid (cancelled)`."""

    def money(amount: int) -> str:
        return format_minor(amount, totals.currency)

    return (
        f"  {'money ' + totals.currency:<22} {money(totals.refunded)} refunded,"
        f" {money(totals.open)} open, {money(totals.not_paid)} not paid (cancelled)"
    )


def render_text(report: RefundReport) -> str:
    """The report as aligned lines for a terminal."""
    ttr = report.time_to_refund_seconds
    lines = ["refund report"]
    if report.duplicate_refunds:
        said = duplicates_line(*duplicates_of(report))
        lines.append(f"!!! DUPLICATE REFUNDS: {said}")
    lines += [
        f"  {'period':<22} {format_period(report)}",
        f"  {'generated':<22} {format_moment(report.generated_at)}",
        f"  {'refunds':<22} {report.refunds}",
        *(money_line(totals) for totals in report.money),
        f"  {'time to refund p50':<22} {_duration_with_seconds(ttr.p50)}",
        f"  {'time to refund p90':<22} {_duration_with_seconds(ttr.p90)}"
        f"   ({ttr.count} completed {'refund' if ttr.count == 1 else 'refunds'} measured)",
        f"  {'SLA breaches':<22} {report.sla_breaches}",
        f"  {'escalation rate':<22} {_percent(report.escalation_rate)}",
        f"  {'reopen rate':<22} {_percent(report.reopen_rate)}"
        f"   ({report.reopened} of {report.refused} refused asked again)",
        f"  {'reversals':<22} {report.reversals}",
        f"  {'duplicate refunds':<22} {duplicates_line(*duplicates_of(report))}",
    ]
    if report.refunds == 0:
        lines.append("")
        lines.append("no refunds in this period")
        return "\n".join(lines)

    lines += ["", "by state"]
    lines += [f"  {state:<22} {n:>6}" for state, n in report.by_state.items()]

    states = [s for s in report.by_state if any(s in r for r in report.by_reason.values())]
    width = max(len("reason"), *(len(reason) for reason in report.by_reason)) + 2
    lines += ["", "by reason", "  " + "reason".ljust(width) + _columns([*states, "total"])]
    for reason, counts in report.by_reason.items():
        cells = [counts.get(s, 0) for s in states]
        lines.append("  " + reason.ljust(width) + _columns([*cells, sum(cells)]))

    series = report.series
    lines += ["", f"per {report.bucket} (UTC)"]
    if len(series) > TEXT_SERIES_AT_MOST:
        lines.append(f"  {len(series)} buckets: too many to list here (`--chart FILE` draws them)")
        return "\n".join(lines)
    lines.append(f"  {'start':<18}" + _columns([*OUTCOMES]) + f"  {'p50 time to refund':>18}")
    shown = [b for b in series if any(b.by_outcome().values())]  # an empty hour says nothing
    for bucket in shown:
        outcomes = bucket.by_outcome()
        lines.append(
            f"  {bucket.start:%Y-%m-%d %H:%M}  "
            + _columns([outcomes[o] for o in OUTCOMES])
            + f"  {format_duration(bucket.p50_time_to_refund_seconds):>18}"
        )
    if len(shown) < len(series):
        lines.append(f"  ({len(series) - len(shown)} {report.bucket}s without refunds left out)")
    return "\n".join(lines)


def _columns(values: list[Any]) -> str:
    return "".join(f"{v!s:>15}" for v in values)


def _percent(rate: float) -> str:
    return f"{rate * 100:.2f}%"


def _duration_with_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "- (no completed refunds)"
    readable = format_duration(seconds)
    return readable if readable.endswith(" s") else f"{readable}  ({seconds:g} s)"
