"""`refundflow worker`: wire the real adapters into a Temporal worker and run it."""

from __future__ import annotations

import asyncio
import os
import signal
from datetime import timedelta
from pathlib import Path

import aiohttp
import asyncpg
import structlog
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
)
from temporalio.worker import Worker

from activities.dispatcher import OutboxDispatcher
from activities.http_adapters import (
    HttpInventory,
    HttpOrderSystem,
    HttpPaymentProvider,
    HttpService,
)
from activities.order_payouts import GuardedPaymentProvider, OrderPayoutActivities, PaymentGuard
from activities.pg_store import PostgresRefundStore, create_pool
from activities.reconciliation import ReconciliationActivities
from activities.refund_activities import RefundActivities
from activities.subscribers import ensure_configured_subscriber
from activities.tracking_links import TrackingLinks
from activities.verification import RequestVerifier, known_policy_hashes
from api.pages.settings import dev_secret
from client.connections import connect_temporal
from client.heap import freeze_startup_heap
from client.payload_codec import encryption_label
from client.settings import Settings
from client.tracing import flush_tracing, start_tracing
from worker.logging_setup import configure_logging
from worker.metrics import MetricsEndpoint, metrics_runtime, plan_metrics
from worker.sandbox import refund_workflow_runner, runner_label
from worker.versioning import Deployment, deployment_from_env, make_current
from worker.vouched_actions import interceptors as vouching_interceptors
from workflows import names, vocabulary
from workflows.models import ReconcileInput
from workflows.reconciliation_workflow import ReconciliationWorkflow
from workflows.refund.fast_path import FAST_PATH_BUDGET
from workflows.refund.workflow import RefundWorkflow

log = structlog.get_logger("refundflow.worker")
CUSTOMER_CHANNEL = vocabulary.CUSTOMER_CHANNEL
# Longer than one provider HTTP call may take (10 s), shorter than `stop_process` waits (20 s).
SHUTDOWN_GRACE = timedelta(seconds=12)


def tracking_links(settings: Settings) -> TrackingLinks | None:
    """The customer's link to their tracking page, put in every notification to them: the
    pages' secret (REFUNDFLOW_PAGES_SECRET; the dev stack's own file) and where customers
    reach the API (REFUNDFLOW_PUBLIC_URL, else its URL). None: notifications go without."""
    secret = os.environ.get("REFUNDFLOW_PAGES_SECRET", "").encode()
    dev_home = os.environ.get("REFUNDFLOW_DEV_ISSUER_HOME")
    if not secret and dev_home:
        secret = dev_secret(Path(dev_home))
    public_url = os.environ.get("REFUNDFLOW_PUBLIC_URL") or settings.api_url
    return TrackingLinks(public_url, secret) if secret and public_url else None


WFT_WARN_ENV = "TEMPORAL_WORKFLOW_TASK_DURATION_WARN_SECONDS"
WFT_WARN_S = int(FAST_PATH_BUDGET.total_seconds()) + 5
"""When Temporal's core warns that a workflow task ran long (TMPRL1104; its default is 5 s).
An auto-approved refund is one workflow task whose provider call may take up to the fast
path's budget (10 s) before it goes durable: a slow provider is not a slow workflow."""


async def run_worker(settings: Settings, stop: asyncio.Event) -> None:
    os.environ.setdefault(WFT_WARN_ENV, str(WFT_WARN_S))  # read by the core at its first task
    metrics = plan_metrics(settings.metrics_addr)  # a malformed address fails before anything
    deployment = deployment_from_env(os.environ)
    pool = await create_pool(settings.require_database_url())
    client = await connect_temporal(settings, metrics_runtime(metrics))
    await _prepare(client, pool, settings)
    async with aiohttp.ClientSession() as session:
        worker = _worker(client, pool, session, settings, deployment)
        # Ready, before any work starts: what work holds is never frozen (client/heap.py).
        frozen = freeze_startup_heap()
        outbox = OutboxDispatcher(
            pool, session, tracking=tracking_links(settings), customer_channel=CUSTOMER_CHANNEL
        )
        dispatcher = asyncio.create_task(outbox.run(stop))
        endpoint = metrics and MetricsEndpoint(metrics, pool, session)
        if endpoint:
            await endpoint.start()
        async with worker:
            log.info(
                "worker_started",
                task_queue=settings.task_queue,
                temporal=settings.temporal_address,
                namespace=settings.temporal_namespace,
                security=settings.temporal.kind,
                payloads=encryption_label(client.data_converter),
                deployment=deployment.label if deployment else "unversioned",
                startup_objects_frozen=frozen,
                workflow_runner=runner_label(worker.config().get("workflow_runner")),
            )
            if deployment and deployment.promote:
                await make_current(client, deployment.version)
            await stop.wait()
            log.info("worker_stopping")
        await dispatcher
        if endpoint:
            await endpoint.stop()
    await pool.close()


def _worker(
    client: Client,
    pool: asyncpg.Pool,
    session: aiohttp.ClientSession,
    settings: Settings,
    deployment: Deployment | None = None,
) -> Worker:
    """The adapters, the activities that use them, and the Worker that runs them."""
    store = PostgresRefundStore(pool)
    payment = HttpPaymentProvider(
        HttpService(session, settings.payment_provider_url, "payment provider")
    )
    inventory = HttpInventory(HttpService(session, settings.inventory_url, "inventory"))
    activities = RefundActivities(
        store=store,
        # Money paid elsewhere counts against the capture too (activities/order_payouts.py).
        payment=GuardedPaymentProvider(payment, PaymentGuard(pool, payment)),
        inventory=inventory,
        reservations=store,
    )
    verifier = RequestVerifier(
        HttpOrderSystem(HttpService(session, settings.orders_url, "order system")),
        known_policy_hashes(settings.policy_dir),
        reservations=store,
    )
    reconciliation = ReconciliationActivities(pool, payment, inventory, client)
    payouts = OrderPayoutActivities(pool, payment)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        # On SIGTERM (a deploy, Ctrl-C) activities in flight may finish: a provider call
        # whose answer is lost costs a lookup on the retry; one that finishes does not.
        graceful_shutdown_timeout=SHUTDOWN_GRACE,
        # Versioned: refunds stay on the build they started on (worker/versioning.py).
        deployment_config=deployment.worker_config() if deployment else None,
        workflows=[RefundWorkflow, ReconciliationWorkflow],
        workflow_runner=refund_workflow_runner(settings.workflow_sandbox),  # worker/sandbox.py
        interceptors=vouching_interceptors(settings),  # people's actions only via the API
        activities=[
            activities.record_transitions,
            activities.reserve_refund,
            activities.issue_provider_refund,
            activities.record_and_issue_provider_refund,
            activities.check_provider_refund,
            activities.cancel_provider_refund,
            activities.find_provider_refunds,
            activities.restock_line,
            verifier.verify_request,
            verifier.admit_refund,
            reconciliation.reconcile,
            payouts.order_payouts,
        ],
    )
    return worker


async def _prepare(client: Client, pool: asyncpg.Pool, settings: Settings) -> None:
    """What the cluster and the database need before the worker polls: search attributes,
    the reconciliation schedule, the configured customer channel."""
    added = await ensure_search_attributes(client)
    if added:
        log.info("search_attributes_registered", names=added)
    if await ensure_reconciliation_schedule(client, settings):
        log.info("reconciliation_scheduled", every_minutes=settings.reconcile_every_minutes)
    if settings.customer_notify_url:
        await ensure_configured_subscriber(
            pool,
            CUSTOMER_CHANNEL,
            settings.customer_notify_url,
            settings.customer_notify_secret or None,
        )


async def ensure_search_attributes(client: Client) -> list[str]:
    """Register refundflow's custom search attributes if the cluster lacks them.

    The dev server gets them as start flags; a fresh production namespace gets them here.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=client.namespace)
    )
    missing = {
        name: getattr(IndexedValueType, f"INDEXED_VALUE_TYPE_{kind.upper()}")
        for name, kind in names.SEARCH_ATTRIBUTES.items()
        if name not in listed.custom_attributes
    }
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes=missing)
        )
    return sorted(missing)


async def ensure_reconciliation_schedule(client: Client, settings: Settings) -> bool:
    """Create the reconciliation schedule if it is missing; True if created now."""
    if settings.reconcile_every_minutes <= 0:
        return False
    try:
        await client.create_schedule(
            names.RECONCILIATION_SCHEDULE_ID,
            Schedule(
                action=ScheduleActionStartWorkflow(
                    ReconciliationWorkflow.run,
                    ReconcileInput(),
                    id="refundflow-reconciliation-run",
                    task_queue=settings.task_queue,
                ),
                spec=ScheduleSpec(
                    intervals=[
                        ScheduleIntervalSpec(
                            every=timedelta(minutes=settings.reconcile_every_minutes)
                        )
                    ]
                ),
                policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP),
            ),
        )
    except ScheduleAlreadyRunningError:
        return False
    return True


async def serve(settings: Settings) -> None:
    """Run until SIGINT or SIGTERM, then drain and stop."""
    configure_logging(settings.log_format, settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    start_tracing("refundflow-worker")  # only if OTEL_EXPORTER_OTLP_ENDPOINT is set
    try:
        await run_worker(settings, stop)
    finally:
        flush_tracing()
