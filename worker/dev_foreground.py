"""`refundflow dev`: the embedded dev stack in the foreground, with demo orders and a banner.

The stack itself (what runs, on which ports, in which order) is `worker.devstack.DevStack`;
this is only the interactive side: say what is happening, wait for Ctrl-C or a dying child.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import urllib.error
from pathlib import Path
from typing import Any
from urllib.parse import quote

from worker.devstack import DevStack, StackConfig, redact_url
from worker.processes import StackError, get_json
from workflows.money import format_minor


def run_foreground(config: StackConfig, *, demo_orders: bool = True, as_json: bool = False) -> int:
    """`refundflow dev`: start, print how to use it, wait for Ctrl-C or a dying child.

    With `as_json`, stdout gets exactly one JSON object (addresses and demo orders) once the
    stack is ready, and every other line goes to stderr.
    """
    stack = DevStack(config)
    stop = _StopRequests()
    say_stream = sys.stderr if as_json else sys.stdout

    def say(line: str) -> None:
        print(line, file=say_stream, flush=True)

    def progress(line: str) -> None:
        stop.check()
        say(line)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    try:
        try:
            stack.start(progress=progress)
            orders = _demo_orders(stack) if demo_orders else []  # not "up" before they are
            stop.check()
        finally:
            stop.starting = False
        if as_json:
            described = stack.describe()
            described["database_url"] = redact_url(described["database_url"] or "")
            print(json.dumps({**described, "demo_orders": orders}), flush=True)
        else:
            _print_demo_orders(orders)
            _print_banner(stack)
        while not stop.requested:
            problem = stack.dead_child()
            if problem:
                print(f"error: {problem}; stopping (logs in {stack.logs})", file=sys.stderr)
                return 1
            time.sleep(0.5)
        say("stopping ...")
        return 0
    except StackError as err:
        print(f"error: {err}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        stack.stop()  # start() stopped what it began, unless it was interrupted at its end
        say("interrupted while starting: stopped; nothing left running.")
        return 128 + (stop.requested[0] if stop.requested else signal.SIGINT)
    finally:
        started_something = bool(stack.children())
        stack.stop()
        if started_something:  # not when another stack was already running: that one runs on
            say("stopped; nothing left running.")


class _StopRequests:
    """Ctrl-C and SIGTERM: while the stack starts, out of the start at once (a trial's
    Ctrl-C waited for "is up", then exited 0); start() stops what it began, and a child
    caught between its fork and its record dies with us (processes.spawn). Once up, they
    end the wait."""

    def __init__(self) -> None:
        self.requested: list[int] = []
        self.starting = True

    def __call__(self, signum: int, frame: object) -> None:
        self.requested.append(signum)
        if self.starting and len(self.requested) == 1:  # a second one must not cut the stop
            raise KeyboardInterrupt

    def check(self) -> None:
        """Raised in a fork's callback, the interrupt is printed and dropped ("Exception
        ignored in: _releaseLock", seen in tests): the start asks again at every step."""
        if self.starting and self.requested:
            raise KeyboardInterrupt


DEMO_CUSTOMER = "cust_1"
"""Whose the demo orders are: `refundflow --as cust_1 request --order …` asks as their owner."""
DEMO_ORDERS = [
    {"amount": 4200, "currency": "USD", "category": "accessories", "delivered_days_ago": 3},
    {"amount": 12000, "currency": "USD", "category": "electronics", "delivered_days_ago": 5},
    {"amount": 8900, "currency": "EUR", "category": "final_sale", "delivered_days_ago": 2},
]


DEMO_FILE = "demo_orders.json"
"""In the stack's home: the ids of the demo orders it made, so a restart shows them again
instead of adding three more each time (a trial); `--fresh` wipes the home and the file."""


def _demo_orders(stack: DevStack) -> list[dict[str, Any]]:
    """The demo orders this home's sandbox holds from an earlier run, else new ones."""
    remembered = stack.config.home / DEMO_FILE
    try:
        order_ids = [str(order_id) for order_id in json.loads(remembered.read_text())]
    except (OSError, ValueError, TypeError):
        order_ids = []
    found = [_find_order(stack, order_id) for order_id in order_ids]
    if found and all(order is not None for order in found):
        return [order for order in found if order is not None]
    orders = [stack.create_order({**spec, "customer_id": DEMO_CUSTOMER}) for spec in DEMO_ORDERS]
    remembered.write_text(json.dumps([order["order_id"] for order in orders]))
    return orders


def _find_order(stack: DevStack, order_id: str) -> dict[str, Any] | None:
    """The sandbox's order, None if it has none by that id (a database wiped by hand)."""
    try:
        return get_json(f"{stack.sandbox_url}/orders/v1/orders/{quote(order_id, safe='')}")
    except urllib.error.HTTPError as err:
        if err.code == 404:
            return None
        raise


def _print_demo_orders(orders: list[dict[str, Any]]) -> None:
    if not orders:
        return
    print("demo orders (sandbox):", flush=True)
    for order in orders:
        print(
            f"  {order['order_id']}  captured"
            f" {format_minor(order['captured_amount'], order['currency'])}"
            f"  category {order['lines'][0]['category']}  customer {order['customer_id']}",
            flush=True,
        )


def _how_to_reach(stack: DevStack) -> list[str]:
    """How another shell's commands find this stack: by folder for ./.refundflow (from this
    folder or below), else only by REFUNDFLOW_HOME (another stack may answer in this folder)."""
    commands = [
        "refundflow sandbox order --amount 12000 --currency USD --json",
        "refundflow request --order ORDER_ID --amount 12000 --reason damaged --channel web",
    ]
    if stack.config.home == Path(".refundflow").resolve():
        where, prefix = "From another shell in this folder", ""
    else:
        where, prefix = "From another shell", f"REFUNDFLOW_HOME={stack.config.home} "
    heading = f"{where} (after `source .venv/bin/activate`):"
    return [heading, *(f"  {prefix}{command}" for command in commands)]


def _print_banner(stack: DevStack) -> None:
    lines = [
        "",
        "refundflow dev stack is up:",
        f"  Temporal      {stack.temporal_address}   Web UI {stack.ui_url or '(headless)'}",
        f"  PostgreSQL    {redact_url(stack.database_url or '')}",
        f"  sandbox       {stack.sandbox_url}   webhooks -> {stack.webhook_url}",
        f"  API           {stack.describe()['api_url']}   docs /docs; tokens: refundflow token"
        " --as NAME",
        f"  console       {stack.describe()['api_url']}/console   (sign in as li, alice, ...;"
        " the report at /console/report)",
        f"  metrics       {stack.metrics_url}   (the worker's Prometheus endpoint;"
        f" the API's: {stack.describe()['api_metrics_url']})",
        f"  codec server  {stack.describe()['codec_url']}   payloads sealed with"
        f" {stack.describe()['codec_key_file']} (the Web UI opens them through it)",
        f"  logs          {stack.logs}   (worker.log, api.log, ...: `tail -f` one)",
        *_how_to_reach(stack),
        "Press Ctrl-C to stop everything.",
    ]
    print("\n".join(lines), flush=True)
