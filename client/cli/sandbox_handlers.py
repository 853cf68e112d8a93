"""`refundflow sandbox ...`: the dev stack's stand-ins for the payment provider, inventory and
order system (orders, the provider's ledger, the customer inbox, faults), and one refund's
clock on its Temporal (`fast-forward`)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client import render
from client.cli.arguments import EXIT_OK, UserError
from client.cli.output import emit
from client.errors import RefundflowError
from client.settings import Settings, dev_stack_place, read_stack_file

if TYPE_CHECKING:
    import aiohttp


async def handle(args: argparse.Namespace) -> int:
    """`refundflow sandbox ...`: the dev stack's stand-ins, and its Temporal's clock."""
    import aiohttp

    from activities.ports import ExternalSystemRefused, ExternalSystemUnavailable

    async with aiohttp.ClientSession() as session:
        try:
            result, human = await _ask_sandbox(args, session, Settings.from_env())
        except ExternalSystemRefused as err:
            raise UserError(str(err)) from None
        except ExternalSystemUnavailable as err:
            raise RefundflowError(f"{err}; {_sandbox_hint(err)}") from None
    emit(args, result, human)
    return EXIT_OK


def _sandbox_hint(err: Exception) -> str:
    """What to look at when the sandbox did not answer: it is not running (nothing took the
    connection), it is slow (it took it, then no answer in time), or it failed."""
    import aiohttp

    if isinstance(err.__cause__, aiohttp.ClientConnectionError) and not isinstance(
        err.__cause__, aiohttp.ServerTimeoutError
    ):
        return f"is `refundflow dev` running {dev_stack_place()}?"
    if isinstance(err.__cause__, TimeoutError):
        return "it did not answer in time: slowed by a fault (`refundflow sandbox faults show`)?"
    return (
        "an injected error (`refundflow sandbox faults show`)? Else see the sandbox's log"
        " (`refundflow dev` names its folder)"
    )


async def _ask_sandbox(
    args: argparse.Namespace, session: aiohttp.ClientSession, settings: Settings
) -> tuple[Any, Callable[[Any], str]]:
    """The sandbox's answer to `sandbox ...`, and how to show it to a person."""
    from activities.http_adapters import HttpOrderSystem, HttpPaymentProvider, HttpService
    from client.cli.fast_forward import said, skipped
    from sandbox.admin_client import SandboxAdmin

    if not os.environ.get("SANDBOX_URL") and not read_stack_file(settings.home):
        # Not the default port blindly: another folder's stack may answer there (a trial).
        raise RefundflowError(
            f"no dev stack found, and the sandbox runs in one: start `refundflow dev`"
            f" {dev_stack_place()}, or set SANDBOX_URL"
        )
    if args.sandbox_command == "fast-forward":  # the dev stack's Temporal, not the sandbox
        return await skipped(args), said
    admin = SandboxAdmin(HttpService(session, settings.sandbox_url, "sandbox"))
    if args.sandbox_command == "faults":
        if args.faults_command == "set":
            return await admin.set_faults(dict(args.assignments)), render.faults
        if args.faults_command == "clear":
            return await admin.clear_faults(), render.faults
        return await admin.faults(), render.faults
    if args.sandbox_command == "order":
        orders = HttpOrderSystem(HttpService(session, settings.orders_url, "sandbox orders"))
        return await orders.create_order(_order_spec(args)), render.order
    if args.sandbox_command == "inbox":
        rows = await admin.inbox(args.refund)
        if not rows and args.refund:
            # Empty for this refund says nothing about the inbox: say what it does say.
            return rows, lambda _: f"no notification for {args.refund} in the customer inbox"
        return rows, render.inbox
    payments = HttpPaymentProvider(
        HttpService(session, settings.payment_provider_url, "sandbox payments")
    )
    rows = await payments.list_refunds(args.order)
    if not rows and args.order:
        # "no provider refunds" of an order that does not exist read as a fact (a trial).
        orders = HttpOrderSystem(HttpService(session, settings.orders_url, "sandbox orders"))
        if await orders.get_order(args.order) is None:
            raise UserError(f"no order {args.order} in the sandbox's order system")
        return rows, lambda _: f"no provider refunds for order {args.order}"
    return rows, render.ledger


def _order_spec(args: argparse.Namespace) -> dict[str, Any]:
    """What `sandbox order` asks the order system for."""
    if (args.amount is None) == (args.line is None):
        raise UserError("give --amount or one or more --line, not both")
    spec: dict[str, Any] = {
        "currency": args.currency,
        "category": args.category,
        "delivered_days_ago": args.delivered_days_ago,
        "payment_rail": args.rail,
    }
    spec.update({"lines": args.line} if args.line else {"amount": args.amount})
    if args.customer:
        spec["customer_id"] = args.customer
    return spec
