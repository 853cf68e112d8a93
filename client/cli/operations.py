"""The operators' commands that read Postgres or run reconciliation themselves, not through
the API: `reconcile`, `anomalies` and `report`."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import Any

from client import render_findings
from client.cli.arguments import EXIT_NEEDS_A_PERSON, EXIT_OK, UserError
from client.cli.backends import with_client, with_store
from client.cli.output import emit, note
from client.errors import RefundflowError


async def reconcile(args: argparse.Namespace) -> int:
    from workflows.models import ReconcileInput
    from workflows.read_models import Reconciliation

    async def run_now(client: Any) -> Reconciliation:
        report = await client.reconcile(
            ReconcileInput(heal=not args.no_heal, grace_seconds=max(args.grace, 0))
        )
        findings = await (await client.store()).findings(run_id=report.run_id, limit=10_000)
        return Reconciliation(**report.model_dump(), details=findings)

    result = await with_client(run_now)
    grace = max(args.grace, 0)
    emit(args, result, lambda report: render_findings.reconciliation(report, grace))
    return exit_for_check(left_for_a_person(result.details), args.check)


def left_for_a_person(findings: list[Any]) -> int:
    """A run's findings a person must look at: not healed, and not said to be dealt with
    (`refundflow acknowledge`)."""
    return sum(1 for f in findings if f.action != "healed" and not f.acknowledged_by)


def exit_for_check(left_for_a_person: int, check: bool) -> int:
    """`reconcile --check`: a script tells "ran, all well" from "ran, someone must look"
    without reading the report (a trial's cron job read only the exit status)."""
    return EXIT_NEEDS_A_PERSON if check and left_for_a_person else EXIT_OK


async def acknowledge(args: argparse.Namespace) -> int:
    from activities.acknowledgements import NothingToAcknowledge
    from activities.acknowledgements import acknowledge as acknowledged

    _staff_named(args)

    async def write(store: Any) -> Any:
        try:
            return await acknowledged(
                store, args.kind, refund_id=args.refund, order_id=args.order,
                by=args.by, reason=args.reason,
            )  # fmt: skip
        except NothingToAcknowledge as err:
            raise RefundflowError(str(err)) from None

    were, now = await with_store(write)
    emit(args, now, render_findings.findings)
    for was in were:  # said, not replaced in silence (a trial)
        if was.acknowledged_by:
            earlier = f"{was.acknowledged_by}: {was.acknowledged_reason}"
            note(args, f"note: replaces the acknowledgement by {earlier}")
    return EXIT_OK


def _staff_named(args: argparse.Namespace) -> None:
    """In the dev stack, --by names a member of its staff directory (a trial's `--by
    nobodyxyz` was kept as who decided a double payment is dealt with). Elsewhere the name is
    kept as given: the command works with the database's own credentials."""
    dev_tokens = getattr(args, "dev_tokens", None)
    try:
        who = dev_tokens(args.by) if dev_tokens is not None else None
    except UserError as err:  # not --as's words: a customer's id would be refused too
        # Its hint only where it names a member (not `cust_42` for CUST_42: a review).
        meant = re.search(r"; did you mean (?!cust_)[\w.-]+\?", str(err))
        said = f"--by {args.by}: not in the dev stack's staff directory"
        raise UserError(said + (meant.group(0) if meant else "")) from None
    if who is not None and who.kind != "staff":
        raise UserError(f"--by {args.by}: a member of staff acknowledges, not a {who.kind}")


async def anomalies(args: argparse.Namespace) -> int:
    """Findings, newest first; `--open` keeps what still stands. None for an `--order`
    or `--refund` refundflow has no refund of: a note says so (a trial's mistyped id read "no
    findings")."""

    async def read(store: Any) -> tuple[Any, str | None]:
        rows = await store.findings(
            kind=args.kind,
            refund_id=args.refund,
            order_id=args.order,
            open_only=args.open,
            limit=args.limit,
        )
        unknown = None
        if not rows and args.order and await store.order_ledger(args.order) is None:
            unknown = f"refundflow has no refund of order {args.order}"
        elif not rows and args.refund and await store.status_view(args.refund) is None:
            unknown = f"refundflow has no refund {args.refund}"  # a trial: "no findings" only
        return rows, unknown

    rows, unknown = await with_store(read)
    emit(args, rows, lambda found: render_findings.findings(found, open_only=args.open))
    if unknown:
        note(args, f"note: {unknown}: is the id right?")
    return EXIT_OK


async def report(args: argparse.Namespace) -> int:
    from client.report import build_report
    from client.report_chart import write_chart
    from client.report_text import render_text

    if args.since and args.until and args.since >= args.until:
        raise UserError("--since must be before --until")
    if args.since and args.since > datetime.now(UTC):
        raise UserError(
            f"--since {args.since:%Y-%m-%d %H:%M} UTC is in the future: no refund was requested"
            " then (a report covers refunds requested from --since until --until, or now)"
        )
    report = await with_store(lambda store: build_report(store.pool, args.since, args.until))
    chart = None
    if args.chart:  # only where asked: never a file left in whatever folder this ran in
        try:
            chart = str(write_chart(report, args.chart))
        except OSError as err:
            raise RefundflowError(
                f"cannot write the chart to {args.chart}: {err.strerror or err}"
            ) from None
    written = f"\n\nchart written to {chart}" if chart else ""
    emit(
        args,
        {**report.model_dump(mode="json"), "chart": chart},
        lambda _: f"{render_text(report)}{written}",
    )
    return EXIT_OK
