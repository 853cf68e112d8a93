"""RefundClient: the typed async API services use to start and act on refunds."""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import structlog
from temporalio.client import Client, WorkflowFailureError
from temporalio.runtime import Runtime
from temporalio.service import RPCError

from activities.http_adapters import HttpOrderSystem, HttpService
from activities.outbox import events_for
from activities.pg_store import PostgresRefundStore, create_pool
from activities.ports import OrderSystem
from client import workflow_reads
from client.action_attestation import ActionSigner, signer_for
from client.connections import connect_temporal
from client.edge import (
    customer_history,
    fetch_order,
    hold_at_the_edge,
    judge_eligibility,
    resolve,
    same_hold_or_conflict,
    same_request_or_conflict,
    takes_the_request,
)
from client.errors import (
    InvalidRefundRequest,
    RefundEndedElsewhere,
    RefundflowError,
    RefundNotFound,
    did_not_finish,
    rpc_error,
)
from client.ledger_ahead import LedgerReadAhead
from client.policy_source import load_policy
from client.refund_actions import RefundActions

# The refund's keys; still importable from here, where services found them.
from client.refund_ids import REFUND_ID_PATTERN as REFUND_ID_PATTERN
from client.refund_ids import default_refund_key as default_refund_key
from client.refund_ids import refund_id_for as refund_id_for
from client.settings import Settings, dev_stack_place
from client.start_outcome import with_start_noted
from client.starting import opening, start_for_first_step, start_received
from client.timings import step
from workflows.eligibility import EligibilityAnswer
from workflows.models import (
    OrderSnapshot,
    PinnedPolicy,
    ReconcileInput,
    ReconcileReport,
    RefundRequest,
    RefundWorkflowInput,
    ResolvedRefund,
    StatusQuery,
    StatusView,
)
from workflows.read_models import (
    AuditEntry,
    CustomerHistory,
    ListedRefund,
    OrderLedger,
    OutboxEvent,
)
from workflows.reconciliation_workflow import ReconciliationWorkflow
from workflows.refund import patches
from workflows.wording import as_read_at, customer_view

log = structlog.get_logger("refundflow.client")
# How long a person waits for a refund to answer before being told no worker is running.
QUERY_TIMEOUT = timedelta(seconds=15)
EARLIER_REQUEST = timedelta(seconds=2)  # a refund asked longer ago was started by another call


class RefundClient(RefundActions):
    def __init__(
        self,
        temporal: Client,
        orders: OrderSystem,
        *,
        task_queue: str,
        policy: PinnedPolicy,
        database_url: str | None = None,
        session: aiohttp.ClientSession | None = None,
        signer: ActionSigner | None = None,  # the API's: vouches for people's actions
    ) -> None:
        self.temporal = with_start_noted(temporal)  # which start made a refund (201 or 200)
        self._orders = orders
        self._task_queue = task_queue
        self.policy = policy
        self._database_url = database_url
        self._session = session
        self._signer = signer
        self._pool: asyncpg.Pool | None = None
        self._pool_opening = asyncio.Lock()  # a first burst of calls shares one pool (50
        # concurrent first requests without it opened 50 pools and left 49 open)

    @classmethod
    async def connect(
        cls, settings: Settings, *, policy: str | None = None, runtime: Runtime | None = None
    ) -> RefundClient:
        """`runtime`: a Temporal Runtime exporting the SDK's metrics (the API's endpoint)."""
        temporal = await connect_temporal(settings, runtime)
        session = aiohttp.ClientSession()
        return cls(
            temporal,
            HttpOrderSystem(HttpService(session, settings.orders_url, "order system")),
            task_queue=settings.task_queue,
            policy=load_policy(settings.policy_dir, policy or settings.policy),
            database_url=settings.database_url,
            session=session,
            signer=signer_for(settings),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        if self._pool is not None:
            await self._pool.close()

    # --- requests -----------------------------------------------------------------------

    async def order(self, order_id: str) -> OrderSnapshot:
        """The order as the order system has it now (InvalidRefundRequest: unknown)."""
        return await fetch_order(self._orders, order_id)

    async def eligibility(
        self, request: RefundRequest, *, order: OrderSnapshot | None = None
    ) -> EligibilityAnswer:
        """Would this request be refunded, how much, how fast, and why: the answer the refund
        would reach now, judged as the store judges it (ledger, budgets, money refunded
        around refundflow). Starts nothing. `order`: the order just looked up (else it is)."""
        order = order or await fetch_order(self._orders, request.order_id)
        takes_the_request(request, order)
        store = await self._store() if self._database_url else None
        return await judge_eligibility(store, self.policy, request, order)

    async def request(self, request: RefundRequest) -> StatusView:
        """Start the refund, or return the one already started for this key.

        Refused with InvalidRefundRequest (nothing started) when the order is unknown, the
        request does not fit it, or other refunds of the order hold or have refunded what
        it asks for (the message names them); with RefundConflict when the key was used for
        another request."""
        return (await self.request_again_or_new(request))[0]

    @contextlib.asynccontextmanager
    async def ledger_read_ahead(
        self, order_id: str, refund_key: str
    ) -> AsyncIterator[LedgerReadAhead | None]:
        """Start reading the order's ledger for a request now, while the caller looks the
        order up; pass it to `request_again_or_new` (client/ledger_ahead.py). None: no store."""
        if not self._database_url:
            yield None
            return
        ahead = LedgerReadAhead(await self._store(), order_id, refund_id_for(order_id, refund_key))
        try:
            yield ahead
        finally:
            ahead.discard()

    async def request_again_or_new(
        self,
        request: RefundRequest,
        *,
        order: OrderSnapshot | None = None,
        first_step: bool = True,
        ahead: LedgerReadAhead | None = None,
    ) -> tuple[StatusView, bool]:
        """As `request`, and whether the refund existed before this call (asked before).
        `order`: the order just looked up (the API's, to check whose it is), else it is.
        `first_step` False: a new refund is answered as soon as Temporal holds it (its
        opening status, "requested"), not once it has decided who acts next. `ahead`: the
        ledger read started with the order's look-up (`ledger_read_ahead`)."""
        asked_at = datetime.now(UTC)
        order = order or await fetch_order(self._orders, request.order_id)
        takes_the_request(request, order)
        refund_id = refund_id_for(request.order_id, request.refund_key)
        held_before = False
        if not self._database_url:
            resolved = resolve(request, order, self.policy)
        else:  # resolved as the order's ledger knows it; an amount-only one comes back split
            existing, held_before, resolved = await self._check_and_hold(
                request, order, refund_id, asked_at, ahead
            )
            if existing is not None:
                return same_request_or_conflict(existing, request, order, resolved), True
        # started_on: every path the code has from the start, no patch marker to write or bill.
        inp = RefundWorkflowInput(
            refund_id=refund_id, request=request, order=order, resolved=resolved,
            policy=self.policy, asked_at=asked_at, started_on=patches.RECORD_WITH_PAYMENT,
        )  # fmt: skip
        started: StatusView | None = None  # None: the refund was there already, asked below
        created: bool | None  # whether this call's start made the refund (only one can)
        with step("start"):  # answered with the first step: until it is decided
            if first_step:
                started, created = await start_for_first_step(
                    self.temporal, inp, self._task_queue, QUERY_TIMEOUT
                )
            else:
                created = await start_received(self.temporal, inp, self._task_queue)
        if created and not first_step:
            started = await self._opened(inp)
        answered = await self._as_recorded(refund_id, started, fresher=first_step)
        status = answered or await self._first_step(refund_id)
        if created is None:  # the start's answer never came: asked before if another call
            # held it (the hold, under the order's lock, makes one new) or started it earlier
            earlier = bool(status.timeline) and status.timeline[0].at < asked_at - EARLIER_REQUEST
            created = not (held_before or earlier)
        return same_request_or_conflict(status, request, order, resolved), not created

    async def _check_and_hold(
        self,
        request: RefundRequest,
        order: OrderSnapshot,
        refund_id: str,
        asked_at: datetime,
        ahead: LedgerReadAhead | None,
    ) -> tuple[StatusView | None, bool, ResolvedRefund]:
        """The order's ledger (read ahead, or now), then the hold: the refund's status if
        recorded already, else None once held; whether it held before; the request resolved
        with the capture the ledger judges by (`judged_order`; the workflow gets `order`,
        which it checks with the order system). A refusal on holds read ahead is said only
        once a fresh read agrees: a hold released since the order's look-up frees units."""
        store = await self._store()
        if ahead is not None and not ahead.answers(order.order_id, refund_id):
            ahead = None  # read for another key or order id: read this one now
        ledger = await (ahead or LedgerReadAhead(store, order.order_id, refund_id)).result()
        judged = ledger.judged_order(order)
        resolved = resolve(request, judged, holds=ledger.holds)
        if ledger.state is not None:
            existing = await self._existing_refund(refund_id, ledger.state)
            await same_hold_or_conflict(store, self.policy, request, judged, resolved)
            return existing, True, resolved
        try:
            with step("hold"):
                held_before, resolved = await hold_at_the_edge(
                    store, self.policy, request, judged, resolved, asked_at, ledger.holds
                )
        except InvalidRefundRequest:
            if ahead is None:
                raise
            return await self._check_and_hold(request, order, refund_id, asked_at, None)
        return None, held_before, resolved

    async def _opened(self, inp: RefundWorkflowInput) -> StatusView:
        """A refund just started without waiting: its opening status, also put in the
        projection (until the workflow records) so that reads agree with this answer and
        never ask the workflow while it works on its first step."""
        projection, view = opening(inp)
        if self._database_url:
            try:
                with step("opening"):
                    await (await self._store()).open_status(projection, view)
            except (OSError, asyncpg.PostgresError, RefundflowError) as err:
                # Only a head start for reads: the refund is started and held, and its
                # workflow writes its status; the caller must not be told it failed.
                log.warning("opening_status_not_written", refund_id=inp.refund_id, error=str(err))
        return view

    async def _existing_refund(self, refund_id: str, state: str) -> StatusView:
        """A refund already recorded under this id (its last recorded `state`): its status;
        refused while Temporal ended it and reconciliation has not closed it, or when its
        workflow is gone (past Temporal's retention), so that it is never run twice."""
        try:
            ended = await self.abnormal_end(refund_id)
            if ended and state not in ("completed", "cancelled"):  # not closed by reconciling
                raise RefundEndedElsewhere(
                    f"refund {refund_id} for this key ended in Temporal ({ended}) before it"
                    " finished; `refundflow reconcile` closes it (or escalates it to a person),"
                    " then asking again with a new key can have what it holds"
                )
            return await self.status(refund_id)
        except RefundNotFound:
            raise RefundEndedElsewhere(
                f"refund {refund_id} for this key already exists ({state}); its workflow"
                " history has passed Temporal's retention, see `refundflow audit`"
            ) from None

    async def _first_step(self, refund_id: str) -> StatusView:
        """The status once the workflow has checked the order and decided who acts next."""
        query = StatusQuery(include_timeline=True)
        try:
            return await workflow_reads.first_step(self._handle(refund_id), query, QUERY_TIMEOUT)
        except RPCError as err:
            raise rpc_error(refund_id, err) from None

    # --- reading ------------------------------------------------------------------------

    async def status(
        self, refund_id: str, *, include_timeline: bool = True, live: bool = False
    ) -> StatusView:
        """The refund's status: the store's projection, written with the audit (one indexed
        read, however many refunds are open); `live`, without a store, or for refunds older
        than the projection: asked of the workflow (a query; workflow_reads.live_status).
        Either is told as read now: an ETA already past is left out (wording.as_read_at)."""
        if not live and self._database_url:
            with step("projection"):
                view = await (await self._store()).status_view(refund_id)
            if view is not None:
                view = as_read_at(view, datetime.now(UTC))
                return view if include_timeline else view.model_copy(update={"timeline": []})

        query = StatusQuery(include_timeline=include_timeline)
        store = await self._store() if self._database_url else None
        try:
            live_view = await workflow_reads.live_status(
                self._handle(refund_id), query, QUERY_TIMEOUT, store
            )
        except RPCError as err:
            raise rpc_error(refund_id, err) from None
        return as_read_at(live_view, datetime.now(UTC))

    async def abnormal_end(self, refund_id: str) -> str | None:
        """How Temporal ended the refund's workflow, if not through the refund's own end."""
        try:
            return await workflow_reads.abnormal_end(self._handle(refund_id))
        except RPCError as err:
            raise rpc_error(refund_id, err) from None

    async def list(
        self,
        *,
        state: str | None = None,
        order_id: str | None = None,
        escalated: bool = False,
        limit: int = 100,
    ) -> list[ListedRefund]:
        return await (await self._store()).list_status(
            state=state, order_id=order_id, escalated=escalated, limit=limit
        )

    async def order_ledger(self, order_id: str) -> OrderLedger | None:
        """What every refund of the order holds and has refunded, per line (None: nothing
        reserved on it yet)."""
        return await (await self._store()).order_ledger(order_id)

    async def customer_history(self, refund_id: str) -> CustomerHistory | None:
        """The requester's other refunds, across orders, over the policy's customer window:
        what a reviewer weighs. None when the store does not know who asked."""
        return await customer_history(await self._store(), self.policy, refund_id)

    async def track(self, refund_id: str) -> dict[str, Any]:
        """What the customer may see of a refund: its status in their words and language."""
        return customer_view(await self.status(refund_id), datetime.now(UTC))

    async def events(self, refund_id: str) -> builtins.list[OutboxEvent]:
        """The refund's notification events and their delivery to each subscriber."""
        return await events_for((await self._store()).pool, refund_id)

    async def audit(self, refund_id: str) -> builtins.list[AuditEntry]:
        trail = await (await self._store()).audit_trail(refund_id)
        if not trail:
            raise RefundNotFound(f"no audit trail for refund {refund_id}")
        return trail

    # --- plumbing -----------------------------------------------------------------------

    async def reconcile(self, inp: ReconcileInput) -> ReconcileReport:
        """Run a reconciliation now (the schedule runs the same workflow)."""
        manual = f"refundflow-reconciliation-manual-{uuid.uuid4().hex[:12]}"
        try:
            return await self.temporal.execute_workflow(
                ReconciliationWorkflow.run, inp, id=manual, task_queue=self._task_queue
            )
        except WorkflowFailureError as err:
            raise did_not_finish("reconciliation", err) from None

    async def _store(self) -> PostgresRefundStore:
        pool = self._pool if self._pool is not None else await self._open_pool()
        return PostgresRefundStore(pool)

    store = _store  # public: tests and tools read the store directly

    async def _open_pool(self) -> asyncpg.Pool:
        async with self._pool_opening:
            if self._pool is not None:  # opened by a caller that held the lock first
                return self._pool
            if not self._database_url:
                raise RefundflowError(
                    f"no database: set DATABASE_URL, or start `refundflow dev` {dev_stack_place()}"
                )
            try:
                # Migrating is the worker's job (at its start, or `refundflow migrate`).
                self._pool = await create_pool(self._database_url, migrate=False)
            except (OSError, asyncpg.PostgresError) as err:
                raise RefundflowError(f"cannot reach the database: {err}") from None
            return self._pool
