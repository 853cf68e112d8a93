"""`refundflow worker`: wire the real adapters into a Temporal worker and run it."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import structlog
from temporalio.worker import Worker

from activities.http_adapters import HttpInventory, HttpPaymentProvider, HttpService
from activities.pg_store import PostgresRefundStore, create_pool
from activities.refund_activities import RefundActivities
from worker.connections import connect_temporal, ensure_search_attributes
from worker.logging_setup import configure_logging
from worker.settings import Settings
from workflows.refund_workflow import RefundWorkflow

log = structlog.get_logger("refundflow.worker")


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    pool = await create_pool(settings.require_database_url())
    client = await connect_temporal(settings)
    added = await ensure_search_attributes(client)
    if added:
        log.info("search_attributes_registered", names=added)
    async with aiohttp.ClientSession() as session:
        store = PostgresRefundStore(pool)
        activities = RefundActivities(
            store=store,
            payment=HttpPaymentProvider(
                HttpService(session, settings.payment_provider_url, "payment provider")
            ),
            inventory=HttpInventory(HttpService(session, settings.inventory_url, "inventory")),
            reservations=store,
        )
        worker = Worker(
            client,
            task_queue=settings.task_queue,
            workflows=[RefundWorkflow],
            activities=[
                activities.record_transitions,
                activities.reserve_refund,
                activities.issue_provider_refund,
                activities.check_provider_refund,
                activities.find_provider_refunds,
                activities.restock_line,
            ],
        )
        async with worker:
            log.info(
                "worker_started",
                task_queue=settings.task_queue,
                temporal=settings.temporal_address,
                namespace=settings.temporal_namespace,
            )
            await stop.wait()
            log.info("worker_stopping")
    await pool.close()


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then drain and stop."""
    configure_logging(settings.log_format, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await run_worker(settings, stop)
