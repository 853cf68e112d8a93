"""The grammar of `refundflow sandbox`: the dev stack's stand-ins for the payment provider,
inventory and order system, and their fault injection."""

from __future__ import annotations

from pydantic import BaseModel

from client.cli import arguments as types
from client.cli.fast_forward import duration, refund_to_move
from client.cli.grammar import Subcommands, group, with_json
from sandbox.faults import Faults


def add_sandbox(sub: Subcommands) -> None:
    sandbox = group(
        sub, "sandbox", "the sandbox payment provider, inventory and orders", "sandbox_command"
    )
    order = sandbox.add_parser("order", help="create a paid, delivered order")
    order.add_argument("--amount", type=types.minor, help="minor units, e.g. 12000 (one line)")
    order.add_argument("--currency", default="USD", help="ISO 4217 code (default USD)")
    order.add_argument(
        "--category", default="general", help="the --amount line's category (default general)"
    )
    order.add_argument(
        "--delivered-days-ago", type=int, default=3, help="for the return window (default 3)"
    )
    order.add_argument(
        "--rail",
        choices=["card", "wallet", "bank_transfer"],
        default="card",
        help="how it was paid: when refunded money arrives (default card)",
    )
    order.add_argument(
        "--customer", type=types.customer_id, help="who placed it, cust_… (default: a new one)"
    )
    order.add_argument(
        "--line", type=types.priced_line, action="append", help="SKU:QTY:PRICE:CATEGORY"
    )
    with_json(order)
    inbox = sandbox.add_parser("inbox", help="what customers were notified of")
    inbox.add_argument("--refund", type=types.refund_id, help="only this refund")
    with_json(inbox)
    refunds = sandbox.add_parser("refunds", help="the provider's refund ledger")
    refunds.add_argument("--order", type=types.order_id, help="only this order")
    with_json(refunds)
    said = "move one refund's own clock on (its timers fire: escalations, expiry, windows)"
    skip = sandbox.add_parser(
        "fast-forward",
        help=said,
        description=f"Dev stack only: {said}; what it records carries that time.",
    )
    skip.add_argument("refund_id", type=refund_to_move)
    skip.add_argument("by", type=duration, metavar="DURATION", help="how far: 90m, 25h, 15d")
    with_json(skip)
    faults = group(sandbox, "faults", "inject faults into the sandbox systems", "faults_command")
    faults_set = faults.add_parser("set", help="set SYSTEM.FIELD=VALUE ...", epilog=_fault_fields())
    faults_set.add_argument("assignments", nargs="+", type=types.assignment, metavar="KEY=VALUE")
    with_json(faults_set)
    for name, text in (("clear", "remove every fault"), ("show", "show the faults in force")):
        with_json(faults.add_parser(name, help=text))


def _fault_fields() -> str:
    """The faults `set` takes, per system (a trial found them only in the README)."""
    systems = Faults.model_fields
    return "faults: " + "; ".join(
        f"{system}.{{{', '.join(annotated.model_fields)}}}"
        for system, field in systems.items()
        for annotated in [field.annotation]
        if isinstance(annotated, type) and issubclass(annotated, BaseModel)
    )
