"""The benchmark: one run, on one machine, refundflow beside the naive baseline.

Figures are reported, never asserted: timing belongs here, not in tests.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.pg_store import create_pool
from bench.baseline import BASELINE_TASK_QUEUE, BaselineWorkflow
from bench.history_cost import history_cost
from client.connections import connect_temporal
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.settings import PROJECT_ROOT, Settings
from worker.devstack import DevStack, StackConfig
from worker.processes import spawn, stop_process
from workflows.models import ReconcileInput, RefundRequest
from workflows.refund.workflow import RefundWorkflow

T = TypeVar("T")


@dataclass
class BenchConfig:
    refunds: int = 200
    concurrency: int = 20
    lookups: int = 1000
    lookup_concurrency: int = 50
    open_refunds: int = 5000
    reconcile_rows: int = 100_000


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency_summary(seconds: list[float]) -> dict[str, float]:
    return {
        f"p{int(q * 100)}_ms": round(percentile(seconds, q) * 1000, 2) for q in (0.5, 0.95, 0.99)
    }


async def bounded(
    count: int, concurrency: int, work: Callable[[int], Awaitable[T]], say: Callable[[str], None],
    label: str,
) -> list[T]:  # fmt: skip
    """Run work(0..count-1) at most `concurrency` at a time, reporting progress."""
    gate = asyncio.Semaphore(concurrency)
    done = 0
    step = max(1, count // 10)

    async def one(i: int) -> T:
        nonlocal done
        async with gate:
            result = await work(i)
        done += 1
        if done % step == 0 or done == count:
            say(f"  {label}: {done}/{count}")
        return result

    return await asyncio.gather(*(one(i) for i in range(count)))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Bench:
    def __init__(self, stack: DevStack, config: BenchConfig, say: Callable[[str], None]) -> None:
        self.stack = stack
        self.config = config
        self.say = say
        self.results: dict[str, Any] = {"config": asdict(config)}

    async def run(self) -> dict[str, Any]:
        settings = Settings.from_env(self.stack.env())
        self.temporal = await connect_temporal(settings)
        async with aiohttp.ClientSession() as http:
            orders = HttpOrderSystem(HttpService(http, settings.orders_url, "orders"))
            self.orders = orders
            self.refunds = RefundClient(
                self.temporal, orders, task_queue=settings.task_queue,
                policy=load_policy(PROJECT_ROOT / "policies", "standard-v1"),
                database_url=settings.database_url,
            )  # fmt: skip
            self.pool = await create_pool(settings.require_database_url())
            try:
                await self.throughput()
                await self.baseline()
                await self.cost_per_refund()
                await self.status_lookups()
                await self.memory_per_open_refund()
                await self.reconciliation()
            finally:
                await self.pool.close()
                await self.refunds.close()
        return self.results

    def request(self, order: dict[str, Any]) -> RefundRequest:
        return RefundRequest(
            refund_key=f"bench-{uuid.uuid4().hex[:12]}", order_id=order["order_id"],
            amount=order["captured_amount"], reason_code="damaged", channel="api",
            requested_by="bench",
        )  # fmt: skip

    async def make_orders(self, count: int, amount: int, label: str) -> list[dict[str, Any]]:
        return await bounded(
            count, 50, lambda i: self.orders.create_order({"amount": amount}), self.say, label
        )

    async def throughput(self) -> None:
        cfg = self.config
        self.say(
            f"1. {cfg.refunds} auto-approved refunds end to end at concurrency {cfg.concurrency}"
        )
        orders = await self.make_orders(cfg.refunds, 4000, "orders")
        latencies: list[float] = []
        ids: list[str] = []

        async def one(i: int) -> None:
            started = time.monotonic()
            status = await self.refunds.request(self.request(orders[i]))
            final = await self.temporal.get_workflow_handle_for(
                RefundWorkflow.run, status.refund_id
            ).result()
            assert final.state.value == "completed", final.state
            latencies.append(time.monotonic() - started)
            ids.append(status.refund_id)

        started = time.monotonic()
        await bounded(cfg.refunds, cfg.concurrency, one, self.say, "refunds")
        wall = time.monotonic() - started
        self.first_refund = ids[0]
        self.results["refunds"] = {
            "per_second": round(cfg.refunds / wall, 2), "seconds": round(wall, 2),
            **latency_summary(latencies),
        }  # fmt: skip

    async def baseline(self) -> None:
        cfg = self.config
        self.say(f"2. naive baseline: {cfg.refunds} workflows of 3 no-op activities")
        latencies: list[float] = []

        async def one(i: int) -> None:
            started = time.monotonic()
            await self.temporal.execute_workflow(
                BaselineWorkflow.run, 3, id=f"bench-baseline-{uuid.uuid4().hex}",
                task_queue=BASELINE_TASK_QUEUE,
            )  # fmt: skip
            latencies.append(time.monotonic() - started)

        started = time.monotonic()
        await bounded(cfg.refunds, cfg.concurrency, one, self.say, "baseline")
        wall = time.monotonic() - started
        per_second = cfg.refunds / wall
        self.results["baseline"] = {
            "per_second": round(per_second, 2), "seconds": round(wall, 2),
            **latency_summary(latencies),
        }  # fmt: skip
        self.results["refunds"]["ratio_to_baseline"] = round(
            self.results["refunds"]["per_second"] / per_second, 3
        )

    async def cost_per_refund(self) -> None:
        self.say("3. billable actions, history events and payload bytes of one refund")
        history = await self.temporal.get_workflow_handle(self.first_refund).fetch_history()
        cost = history_cost(history)
        self.results["cost_per_refund"] = asdict(cost)

    async def open_review_refunds(self, count: int, label: str) -> list[str]:
        orders = await self.make_orders(count, 12000, f"{label} orders")
        statuses = await bounded(
            count, 50, lambda i: self.refunds.request(self.request(orders[i])), self.say, label
        )
        return [s.refund_id for s in statuses]

    async def status_lookups(self) -> None:
        cfg = self.config
        self.say(f"4. status lookups over {cfg.lookups} refunds waiting for review")
        ids = await self.open_review_refunds(cfg.lookups, "open for lookups")
        alone: list[float] = []
        for refund_id in ids:
            started = time.monotonic()
            await self.refunds.status(refund_id)
            alone.append(time.monotonic() - started)
        together: list[float] = []

        async def one(i: int) -> None:
            started = time.monotonic()
            await self.refunds.status(ids[i])
            together.append(time.monotonic() - started)

        await bounded(len(ids), cfg.lookup_concurrency, one, self.say, "concurrent lookups")
        self.results["status_lookup"] = {
            "alone": latency_summary(alone),
            f"concurrency_{cfg.lookup_concurrency}": latency_summary(together),
        }

    async def memory_per_open_refund(self) -> None:
        cfg = self.config
        self.say(f"5. worker memory with {cfg.open_refunds} more refunds waiting for review")
        worker = self.stack.worker
        assert worker is not None
        before = rss_kib(worker.pid)
        await self.open_review_refunds(cfg.open_refunds, "open")
        await asyncio.sleep(2)  # let the last workflow tasks finish
        after = rss_kib(worker.pid)
        self.results["memory"] = {
            "worker_rss_before_kib": before, "worker_rss_after_kib": after,
            "kib_per_open_refund": round((after - before) / max(cfg.open_refunds, 1), 2),
        }  # fmt: skip

    async def reconciliation(self) -> None:
        rows = self.config.reconcile_rows
        self.say(f"6. reconciliation over {rows} refunds seeded in Postgres")
        await seed_reconciliation(self.pool, rows)
        started = time.monotonic()
        report = await self.refunds.reconcile(ReconcileInput(heal=False, grace_seconds=0))
        self.results["reconciliation"] = {
            "refunds": report.refunds, "provider_refunds": report.provider_refunds,
            "seconds": round(time.monotonic() - started, 2), "activity_seconds": report.seconds,
            "findings": report.findings,
        }  # fmt: skip


async def seed_reconciliation(pool: Any, rows: int) -> None:
    """`rows` completed refunds with matching payments and provider refunds, set-based."""
    tag = uuid.uuid4().hex[:8]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO sandbox.payments (payment_reference, order_id, currency, captured_amount,"
            " refunded_amount) SELECT 'pay_seed_' || $1 || i, 'ord_seed_' || $1 || i, 'USD',"
            " 5000, 2500 FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO sandbox.refunds (provider_refund_id, idempotency_key, request_hash,"
            " payment_reference, order_id, amount, currency, status, metadata)"
            " SELECT 're_seed_' || $1 || i, 'rf_seed_' || $1 || i || ':refund', 'seed',"
            " 'pay_seed_' || $1 || i, 'ord_seed_' || $1 || i, 2500, 'USD', 'succeeded',"
            " jsonb_build_object('refund_id', 'rf_seed_' || $1 || i)"
            " FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO refundflow.refund_status (refund_id, refund_key, order_id, state, amount,"
            " currency, awaiting, escalation_level, policy_version, reason_code, channel,"
            " requested_at, updated_at, last_seq)"
            " SELECT 'rf_seed_' || $1 || i, 'seed', 'ord_seed_' || $1 || i, 'completed', 2500,"
            " 'USD', 'nothing', 0, 'seed', 'damaged', 'api', now() - interval '1 day',"
            " now() - interval '1 day', 4 FROM generate_series(1, $2) AS i",
            tag, rows,
        )  # fmt: skip
        await conn.execute("ANALYZE refundflow.refund_status")
        await conn.execute("ANALYZE sandbox.refunds")


TARGETS: dict[str, Callable[[dict[str, Any]], bool]] = {
    "throughput ratio >= 1.5": lambda r: r["refunds"]["ratio_to_baseline"] >= 1.5,
    "billable actions <= 6": lambda r: r["cost_per_refund"]["actions"] <= 6,
    "history events <= 60": lambda r: r["cost_per_refund"]["events"] <= 60,
    "status lookup p99 alone <= 25 ms": lambda r: r["status_lookup"]["alone"]["p99_ms"] <= 25,
    "memory per open refund <= 150 KiB": lambda r: r["memory"]["kib_per_open_refund"] <= 150,
    "reconciliation < 10 s": lambda r: r["reconciliation"]["seconds"] < 10,
}


def table(r: dict[str, Any]) -> str:
    c = r["config"]
    cost = r["cost_per_refund"]
    lookup = r["status_lookup"]
    rows = [
        ("refunds/s (auto-approved, end to end)", r["refunds"]["per_second"]),
        ("  latency p50/p95/p99 ms", _triple(r["refunds"])),
        ("baseline workflows/s (3 no-op activities)", r["baseline"]["per_second"]),
        ("  latency p50/p95/p99 ms", _triple(r["baseline"])),
        ("ratio refunds/s / baseline/s", r["refunds"]["ratio_to_baseline"]),
        ("billable actions per refund", f"{cost['actions']} {cost['breakdown']}"),
        ("history events per refund", cost["events"]),
        ("payload bytes per refund", cost["payload_bytes"]),
        ("status lookup alone p50/p99 ms", _pair(lookup["alone"])),
        (f"status lookup at {c['lookup_concurrency']} p50/p99 ms",
         _pair(lookup[f"concurrency_{c['lookup_concurrency']}"])),
        ("worker KiB per open refund", r["memory"]["kib_per_open_refund"]),
        (f"reconciliation of {r['reconciliation']['refunds']} refunds, s",
         r["reconciliation"]["seconds"]),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines += [f"{'met ' if ok(r) else 'MISSED'} {name}" for name, ok in TARGETS.items()]
    return "\n".join(lines)


def _triple(d: dict[str, float]) -> str:
    return f"{d['p50_ms']} / {d['p95_ms']} / {d['p99_ms']}"


def _pair(d: dict[str, float]) -> str:
    return f"{d['p50_ms']} / {d['p99_ms']}"


async def run_bench(config: BenchConfig, json_out: Path | None, quiet: bool = False) -> int:
    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    # Pools notice the stack going away at the end; that is expected, not news.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)

    home = Path(tempfile.mkdtemp(prefix="refundflow-bench-"))
    stack_config = StackConfig.for_tests(home)
    stack_config.time_skipping = False
    stack = DevStack(stack_config)
    baseline_worker = None
    try:
        say("starting a private stack (embedded Postgres, Temporal, sandbox, worker) ...")
        await asyncio.to_thread(stack.start, say)
        baseline_worker = spawn(
            [sys.executable, "-m", "bench.baseline_worker"],
            log_path=stack.logs / "baseline-worker.log", env=stack.env(),
        )  # fmt: skip
        results = await Bench(stack, config, say).run()
    finally:
        if baseline_worker is not None:
            stop_process(baseline_worker)
        await asyncio.to_thread(stack.stop)
        shutil.rmtree(home, ignore_errors=True)
    print(table(results))
    if json_out:
        json_out.write_text(json.dumps(results, indent=2))
    return 0
