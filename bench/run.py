"""The benchmark: one run, on one machine, refundflow beside a naive refund and a ceiling.

Figures are reported, never asserted: timing belongs here, not in tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import aiohttp
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.service import RPCError

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.pg_store import create_pool
from api.config import dev_issuer_url
from api.dev_issuer import lookup, mint
from bench import temporal_metrics
from bench.cpu import CpuMeter, trees_cpu_ms
from bench.history_cost import history_cost
from bench.naive import NAIVE_TASK_QUEUE
from bench.pg_statements import StatementMeter
from bench.seed import seed_reconciliation
from bench.shapes import (
    CORES,
    Leg,
    Race,
    RefundflowThroughApi,
    Shape,
    ceiling_one,
    ceiling_worker,
    naive_one,
    summarize,
)
from bench.stats import bounded, latency_summary, ratios
from bench.temporal_metrics import Scrape
from client.action_attestation import signer_for
from client.connections import connect_temporal
from client.heap import freeze_startup_heap
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from worker import dev_api
from worker.devstack import DevStack
from workflows.models import ReconcileInput, RefundRequest

DIRECTORY = PROJECT_ROOT / "deploy" / "dev-directory.json"
UNLOADED = 20  # respond-async requests made one at a time after the race
WARM_UP = 5
"""Refunds of each shape before measuring: connections, caches and imports warm up."""
IDLE_CPU_MS = 50  # in a second, all processes together: 5 % of one core
SETTLE_LIMIT_S = 120


@dataclass
class BenchConfig:
    refunds: int = 200
    concurrency: int = 20
    lookups: int = 1000
    lookup_concurrency: int = 50
    open_refunds: int = 5000
    reconcile_rows: int = 100_000
    rounds: int = 2


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Bench:
    def __init__(
        self, stack: DevStack, config: BenchConfig, say: Any, naive_worker: Popen[bytes]
    ) -> None:
        self.stack = stack
        self.config = config
        self.say = say
        self.naive_worker = naive_worker
        self.results: dict[str, Any] = {
            "config": {**asdict(config), "cores": CORES, "warm_up": WARM_UP}
        }
        self.statements = StatementMeter(stack.owner_database_url or stack.database_url or "")
        """Postgres statements of the respond-async refunds' legs (the stack loads
        pg_stat_statements: bench/stack_run.py)."""
        self.draining: list[float] = []
        """Lookup seconds while the worker still delivered the open refunds' notices."""

    async def run(self) -> dict[str, Any]:
        settings = Settings.from_env(self.stack.env())
        self.temporal = await connect_temporal(settings)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as http:
            self.http = http
            self.orders = HttpOrderSystem(HttpService(http, settings.orders_url, "orders"))
            self.refunds = RefundClient(
                self.temporal, self.orders, task_queue=settings.task_queue,
                policy=load_policy(PROJECT_ROOT / "policies", "standard-v1"),
                database_url=settings.database_url, signer=signer_for(settings),
            )  # fmt: skip
            self.pool = await create_pool(settings.require_database_url(), migrate=False)
            # This process is a client service too: what the worker and the API do once
            # ready (client/heap.py), or its own full collections time its lookups.
            freeze_startup_heap()
            try:
                await self.naive_worker_polling()
                await self.race()
                await self.cost_per_refund()
                open_ids = await self.memory_per_open_refund()
                await self.status_lookups(open_ids)
                await self.reconciliation()
            finally:
                await self.pool.close()
                await self.refunds.close()
        return self.results

    @property
    def temporal_metrics_url(self) -> str:
        assert self.stack.temporal is not None, "the stack is started"
        return self.stack.temporal.metrics_url

    def processes(self) -> dict[str, int]:
        stack = self.stack
        servers = {"temporal": stack.temporal, "postgres": stack.postgres}
        named = {"api": stack.api, "worker": stack.worker, "sandbox": stack.sandbox}
        named.update({name: server.proc for name, server in servers.items() if server})
        pids = {name: proc.pid for name, proc in named.items() if proc is not None}
        return {**pids, "naive worker": self.naive_worker.pid}

    async def naive_worker_polling(self) -> None:
        """Wait until the naive worker polls its queue (a query before that is refused)."""
        queue = TaskQueue(name=NAIVE_TASK_QUEUE)
        ask = DescribeTaskQueueRequest(namespace=self.temporal.namespace, task_queue=queue)
        for _ in range(600):
            with contextlib.suppress(RPCError):  # "no poller seen" on newer servers
                if (await self.temporal.workflow_service.describe_task_queue(ask)).pollers:
                    return
            if self.naive_worker.poll() is not None:
                break
            await asyncio.sleep(0.1)
        log = (self.stack.logs / "naive-worker.log").read_text()[-2000:]
        raise RuntimeError(f"the naive refund's worker did not start polling:\n{log}")

    def api_token(self) -> str:
        url = dev_api.api_url(self.stack.config.api_port)
        entry = lookup(DIRECTORY, "checkout")
        token: str = mint(self.stack.config.home, dev_issuer_url(url), entry, 3600)["access_token"]
        return token

    async def race(self) -> None:
        cfg = self.config
        self.say(
            f"1. {cfg.refunds} refunds of each shape at concurrency {cfg.concurrency},"
            f" in {cfg.rounds} round{'' if cfg.rounds == 1 else 's'}"
        )
        race = Race(self.temporal, self.http, CpuMeter(self.processes()), cfg.concurrency, self.say)
        api_url = dev_api.api_url(self.stack.config.api_port)
        token = self.api_token()
        through_api = {
            "refunds": RefundflowThroughApi(race, api_url, token, respond_async=True),
            "refunds_first_step": RefundflowThroughApi(race, api_url, token, False),
        }
        shapes: dict[str, Shape] = {
            **{key: shape.one for key, shape in through_api.items()},
            "naive": lambda order: naive_one(race, order),
            "ceiling": ceiling_one(race),
            "ceiling_not_eager": ceiling_one(race, eager=False),
        }
        for key, one in shapes.items():
            await self.leg(race, key, await self.orders_for(key, WARM_UP, "warm-up"), one)
        for shape in through_api.values():
            shape.steps.clear()  # the warm-up's are not the race's
        orders = {key: await self.orders_for(key, cfg.refunds, "orders") for key in shapes}
        await self.race_in_rounds(race, shapes, orders)
        for key, shape in through_api.items():
            self.results[key]["ack_steps_ms"] = shape.step_summary()
        # The same respond-async requests one at a time: what an answer costs without a
        # queue, beside what it costs at the race's concurrency.
        alone = Race(self.temporal, self.http, race.meter, 1, self.say, race.samples)
        one_by_one = RefundflowThroughApi(alone, api_url, token, respond_async=True).one
        unloaded = await self.make_orders(UNLOADED, 4000, "unloaded orders")
        self.results["refunds_unloaded"] = await alone.run("refunds unloaded", unloaded, one_by_one)
        self.samples = race.samples
        self.results["cpu_ms_per_refund"] = self.results["refunds"]["cpu_ms_per_refund"]

    async def orders_for(self, key: str, count: int, label: str) -> list[dict[str, Any]]:
        """Orders for `count` refunds of a shape (the ceiling needs none: nothing real)."""
        if key.startswith("ceiling"):
            return [{}] * count
        return await self.make_orders(count, 4000, f"{key} {label}")

    async def leg(
        self,
        race: Race,
        key: str,
        orders: list[dict[str, Any]],
        one: Shape,
        label: str | None = None,
    ) -> Leg:
        """One leg of a shape; the ceiling's with its worker in this process for just that
        long (its pollers' CPU would count as the bench client's in every other leg)."""
        if not key.startswith("ceiling"):
            return await race.leg(key, orders, one, label)
        async with ceiling_worker(race):
            return await race.leg(key, orders, one, label)

    async def race_in_rounds(
        self, race: Race, shapes: dict[str, Shape], orders: dict[str, list[dict[str, Any]]]
    ) -> None:
        """Each shape's refunds in `rounds` legs, the shapes' order mirrored every other
        round (A B C, C B A, ...): a machine that speeds up or slows down during the run
        weighs on every shape alike, not on whichever came first. The ratios of each round
        are kept, so their spread shows how far one run's ratios can be trusted."""
        rounds = self.config.rounds
        legs: dict[str, list[Leg]] = {key: [] for key in shapes}
        spans: dict[str, list[tuple[Scrape, Scrape]]] = {key: [] for key in shapes}
        await self.settle(quiet=True)
        before = await temporal_metrics.scrape(self.http, self.temporal_metrics_url)
        for number in range(rounds):
            keys = list(shapes) if number % 2 == 0 else list(reversed(shapes))
            for key in keys:
                label = f"{key} (round {number + 1} of {rounds})"
                mine = orders[key][number::rounds]
                counting = self.statements if key == "refunds" else None
                if counting:
                    await counting.start()
                leg = await self.leg(race, key, mine, shapes[key], label)
                # What a leg leaves behind (notices still going out) is its own, not the
                # next leg's: its CPU is read, and its server calls scraped, once the stack
                # has settled (its refunds/s stay those of its refunds' own time).
                await self.settle(quiet=True)
                leg.cpu_ms = race.meter.spent()
                if counting:
                    await counting.stop()
                legs[key].append(leg)
                after = await temporal_metrics.scrape(self.http, self.temporal_metrics_url)
                spans[key].append((before, after))
                before = after
        for key in shapes:
            self.results[key] = summarize(legs[key])
        refunds = sum(leg.count for leg in legs["refunds"])
        self.results["refunds"]["postgres_statements"] = self.statements.per_refund(refunds)
        for key in shapes:
            self.results[key]["temporal_server_ms"] = temporal_metrics.means_ms(spans[key])
        self.results["ratios"] = ratios(
            {key: self.results[key]["per_second"] for key in shapes},
            [{key: legs[key][n].per_second for key in shapes} for n in range(rounds)],
        )

    def request(self, order: dict[str, Any]) -> RefundRequest:
        return RefundRequest(
            refund_key=f"bench-{uuid.uuid4().hex[:12]}", order_id=order["order_id"],
            amount=order["captured_amount"], reason_code="damaged", channel="api",
            requested_by=order.get("customer_id") or f"cust_bench_{uuid.uuid4().hex[:10]}",
        )  # fmt: skip

    async def make_orders(self, count: int, amount: int, label: str) -> list[dict[str, Any]]:
        return await bounded(
            count, 50, lambda i: self.orders.create_order({"amount": amount}), self.say, label
        )

    async def cost_per_refund(self) -> None:
        self.say("2. billable actions, history events and payload bytes of one of each")
        costs = {}
        for label in ("refunds", "refunds_first_step", "naive", "ceiling"):
            handle = self.temporal.get_workflow_handle(self.samples[label])
            costs[label] = asdict(history_cost(await handle.fetch_history()))
        self.results["cost_per_refund"] = costs.pop("refunds")
        self.results["cost_per_shape"] = costs

    async def open_review_refunds(self, count: int, label: str) -> list[str]:
        orders = await self.make_orders(count, 12000, f"{label} orders")
        statuses = await bounded(
            count, 50, lambda i: self.refunds.request(self.request(orders[i])), self.say, label
        )
        return [s.refund_id for s in statuses]

    async def reconciliation(self) -> None:
        rows = self.config.reconcile_rows
        self.say(f"5. reconciliation over {rows} refunds seeded in Postgres, and the bench's own")
        await seed_reconciliation(self.pool, rows)
        started = time.monotonic()
        report = await self.refunds.reconcile(ReconcileInput(heal=False, grace_seconds=0))
        self.results["reconciliation"] = {
            "refunds": report.refunds, "provider_refunds": report.provider_refunds,
            "seconds": round(time.monotonic() - started, 2), "activity_seconds": report.seconds,
            "findings": report.findings,
        }  # fmt: skip

    async def memory_per_open_refund(self) -> list[str]:
        cfg = self.config
        self.say(f"3. worker memory with {cfg.open_refunds} refunds waiting for review")
        worker = self.stack.worker
        assert worker is not None
        before = rss_kib(worker.pid)
        ids = await self.open_review_refunds(cfg.open_refunds, "open")
        # Lookups while the worker still delivers the new refunds' notices: reported, but
        # the target reads the ones on the settled stack (status_lookups).
        self.draining = await self._concurrent_lookups(
            self._picked(ids), "lookups while notices go out"
        )
        settled_after = await self.settle()
        after = rss_kib(worker.pid)
        self.results["memory"] = {
            "worker_rss_before_kib": before, "worker_rss_after_kib": after,
            "kib_per_open_refund": round((after - before) / max(cfg.open_refunds, 1), 2),
            "settled_after_s": settled_after,
        }  # fmt: skip
        return ids

    async def settle(self, quiet: bool = False) -> float:
        """Wait until the stack is idle: every process together under IDLE_CPU_MS of CPU in
        a second (the last workflow tasks done, the notices delivered), at most
        SETTLE_LIMIT_S. The seconds it took."""
        started = time.monotonic()
        spent = sum(trees_cpu_ms(self.processes()).values())
        while time.monotonic() - started < SETTLE_LIMIT_S:
            await asyncio.sleep(1)
            now = sum(trees_cpu_ms(self.processes()).values())
            if now - spent < IDLE_CPU_MS:
                break
            spent = now
        else:  # said even when quiet: the figures after this are taken on a busy stack
            self.say(f"  the stack did not settle within {SETTLE_LIMIT_S} s; going on")
        waited = round(time.monotonic() - started, 1)
        if not quiet:
            self.say(f"  the stack settled in {waited} s")
        return waited

    async def status_lookups(self, open_ids: list[str]) -> None:
        cfg = self.config
        self.say(f"4. status lookups with {len(open_ids)} refunds open, the stack settled")
        picked = self._picked(open_ids)
        alone = [await self._timed_status(one) for one in picked[: max(1, cfg.lookups // 4)]]
        together = await self._concurrent_lookups(picked, "concurrent lookups")
        at = f"concurrency_{min(cfg.lookup_concurrency, cfg.lookups)}"  # as many as were asked
        self.results["status_lookup"] = {
            "alone": latency_summary(alone),
            at: latency_summary(together),
            f"{at}_while_notices_go_out": latency_summary(self.draining),
        }

    def _picked(self, open_ids: list[str]) -> list[str]:
        """The refunds to look up, the same ones in every pass."""
        return random.Random(7).choices(open_ids, k=self.config.lookups)

    async def _concurrent_lookups(self, picked: list[str], label: str) -> list[float]:
        return await bounded(
            len(picked), self.config.lookup_concurrency, lambda i: self._timed_status(picked[i]),
            self.say, label,
        )  # fmt: skip

    async def _timed_status(self, refund_id: str) -> float:
        started = time.monotonic()
        await self.refunds.status(refund_id)
        return time.monotonic() - started
