"""In-memory stand-ins for the refund activities, registered under the real activity names
(samples-python style), so workflow tests run the real workflow code on the dev server
without Postgres, the sandbox or HTTP."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.verification import known_policy_hashes
from workflows import names
from workflows.models import (
    CheckRefundInput,
    FindProviderRefundsInput,
    IssueRefundInput,
    Notice,
    OrderPayouts,
    OrderPayoutsInput,
    OrderSnapshot,
    ProviderRefundResult,
    ProviderRefunds,
    RecordTransitionsInput,
    ReserveInput,
    ReserveResult,
    RestockInput,
    RestockResult,
    TimelineEntry,
)
from workflows.recorded_payment import RecordAndPayInput
from workflows.verification import (
    AdmitInput,
    AdmitResult,
    VerifyRequestInput,
    VerifyRequestResult,
    order_differences,
)

POLICIES = Path(__file__).resolve().parents[2] / "policies"
ProviderAnswer = Literal["succeeded", "pending", "requires_action", "refuse"]
INSTRUCTIONS = "confirm your bank details at https://pay.example.test/x"


@dataclass
class FakeSystems:
    """The audit store, reservations, provider and warehouse of one test, in memory."""

    provider_answers: list[ProviderAnswer] = field(default_factory=lambda: ["succeeded"])
    """What the provider does on each new idempotency key, in turn (the last one repeats)."""
    remaining: dict[str, int] = field(default_factory=dict)
    """Per order, what is still refundable (absent: the whole capture)."""
    held: set[str] = field(default_factory=set)
    """Refunds holding their amount: asked again (a retry, a reset run), held once, as the
    ledger holds by refund id."""
    audit: dict[str, dict[int, TimelineEntry]] = field(default_factory=dict)
    provider_refunds: dict[str, ProviderRefundResult] = field(default_factory=dict)
    """By idempotency key: a retried call with the same key gets the same refund."""
    restocked: dict[str, RestockResult] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    provider_down_for: int = 0
    """The provider answers this many calls with a 503 (retryable) before it works."""
    lookups: list[str] = field(default_factory=list)
    """Idempotency keys of the calls that asked to look up an existing refund first."""
    durable_lookups: list[str] = field(default_factory=list)
    """The same, for calls made as a regular (durable) activity, not the local fast path."""
    provider_delay_s: float = 0.0
    """How long each provider call takes (lets a test query the refund meanwhile)."""
    fast_path_broken: bool = False
    """The in-process (local activity) call fails at once, as a lost connection would."""
    polled_at: list[datetime] = field(default_factory=list)
    """When (workflow time) each poll of a pending provider refund was scheduled."""
    told: dict[str, list[Notice]] = field(default_factory=dict)
    """Per refund, the notices written to the outbox (customers and subscribers)."""
    store_down: bool = False
    """Postgres is unavailable: every audit write fails (retryable) until this is cleared."""
    store_calls: int = 0
    other_run_entries: int = 0
    """Another run of the refund (a reset) has written this many entries from seq 2 on,
    found by the first write that reaches seq 2."""
    other_run_event: str = "other_run"
    """What the other run's entries are (`item_received`: it kept a returned item)."""
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _keys_seen: int = 0

    orders: dict[str, OrderSnapshot] = field(default_factory=dict)
    """The order system: what each order really is (Env.start registers its order)."""
    known_policies: set[str] = field(default_factory=lambda: set(known_policy_hashes(POLICIES)))
    """The policies the worker was deployed with, by content hash."""
    paid_around: dict[str, int] = field(default_factory=dict)
    """Per order, money the provider paid on it for no refund of ours (a dashboard refund)."""

    def activities(self) -> list[Any]:
        return [
            self.verify_request,
            self.reserve_refund,
            self.admit_refund,
            self.record_transitions,
            self.issue_provider_refund,
            self.record_and_issue_provider_refund,
            self.check_provider_refund,
            self.cancel_provider_refund,
            self.find_provider_refunds,
            self.order_payouts,
            self.restock_line,
        ]

    def settle(
        self, provider_refund_id: str, status: Literal["succeeded", "failed", "canceled"]
    ) -> None:
        """The provider decides a pending refund (as polls will now see it)."""
        for key, refund in self.provider_refunds.items():
            if refund.provider_refund_id == provider_refund_id:
                self.provider_refunds[key] = refund.model_copy(
                    update={"status": status, "instructions": None}
                )

    def paid(self) -> list[ProviderRefundResult]:
        return [r for r in self.provider_refunds.values() if r.status == "succeeded"]

    def events(self, refund_id: str) -> list[str]:
        entries = self.audit.get(refund_id, {})
        return [entries[seq].event for seq in sorted(entries)]

    @activity.defn(name=names.ACTIVITY_VERIFY_REQUEST)
    async def verify_request(self, request: VerifyRequestInput) -> VerifyRequestResult:
        self.calls.append("verify")
        problems = order_differences(request.order, self.orders.get(request.order.order_id))
        if request.policy_hash not in self.known_policies:
            problems.append("policy unknown")
        return VerifyRequestResult(problems=problems)

    @activity.defn(name=names.ACTIVITY_RESERVE_REFUND)
    async def reserve_refund(self, request: ReserveInput) -> ReserveResult:
        self.calls.append("reserve")
        left = self.remaining.get(request.order_id, request.captured_amount)
        if request.refund_id in self.held:
            return ReserveResult(reserved=True, remaining=left)
        if request.amount > left:
            return ReserveResult(reserved=False, remaining=left)
        self.remaining[request.order_id] = left - request.amount
        self.held.add(request.refund_id)
        return ReserveResult(reserved=True, remaining=left - request.amount)

    @activity.defn(name=names.ACTIVITY_ADMIT_REFUND)
    async def admit_refund(self, request: AdmitInput) -> AdmitResult:
        """As the worker's: verify, then hold only a start that holds up."""
        verified = await self.verify_request(request.verify)
        if verified.problems or request.reserve is None:
            return AdmitResult(problems=verified.problems)
        return AdmitResult(reservation=await self.reserve_refund(request.reserve))

    @activity.defn(name=names.ACTIVITY_RECORD_TRANSITIONS)
    async def record_transitions(self, batch: RecordTransitionsInput) -> int:
        self.calls.append("audit")
        self.store_calls += 1
        if self.store_down:
            raise ApplicationError("connection refused: Postgres is unavailable")
        entries = self.audit.setdefault(batch.refund_id, {})
        self._other_run_writes(batch, entries)
        clash = [e for e in batch.entries if e.seq in entries and e.event != entries[e.seq].event]
        if clash:
            # As the Postgres store does: nothing of the batch is written.
            kept = any(e.event == "item_received" for s, e in entries.items() if s >= clash[0].seq)
            raise ApplicationError(
                f"entry {clash[0].seq} is already recorded as {entries[clash[0].seq].event}",
                clash[0].seq,
                max(entries),
                *([True] if kept else []),  # as the Postgres store tells a kept receipt
                type=names.AUDIT_CONFLICT_ERROR,
                non_retryable=batch.conflict_is_final,
            )
        new = [e for e in batch.entries if e.seq not in entries]
        told = self.told.setdefault(batch.refund_id, [])
        told += [n for n in batch.notices if n.seq in {e.seq for e in new}]
        entries.update({e.seq: e for e in new})
        return len(new)

    def _other_run_writes(
        self, batch: RecordTransitionsInput, entries: dict[int, TimelineEntry]
    ) -> None:
        if not self.other_run_entries or not any(e.seq >= 2 for e in batch.entries):
            return
        first = batch.entries[0]
        if first.seq == 1:
            entries[1] = first  # both runs start with the same request
        for seq in range(2, 2 + self.other_run_entries):
            entries[seq] = first.model_copy(update={"seq": seq, "event": self.other_run_event})
        self.other_run_entries = 0

    @activity.defn(name=names.ACTIVITY_ISSUE_PROVIDER_REFUND)
    async def issue_provider_refund(self, request: IssueRefundInput) -> ProviderRefundResult:
        self.calls.append(f"provider:{request.idempotency_key}")
        local = activity.info().is_local
        await asyncio.sleep(self.provider_delay_s)
        if request.look_up_first:
            self.lookups.append(request.idempotency_key)
            if not local:
                self.durable_lookups.append(request.idempotency_key)
        if local and self.fast_path_broken:
            raise ApplicationError("connection reset by peer", non_retryable=True)
        if self.provider_down_for > 0:
            self.provider_down_for -= 1
            raise ApplicationError("payment provider answered 503")
        if request.idempotency_key in self.provider_refunds:
            return self.provider_refunds[request.idempotency_key]
        answer = self.provider_answers[min(self._keys_seen, len(self.provider_answers) - 1)]
        self._keys_seen += 1
        if answer == "refuse":
            raise ApplicationError(
                "card expired", type=names.PROVIDER_REFUSED_ERROR, non_retryable=True
            )
        result = ProviderRefundResult(
            provider_refund_id=f"re_{next(self._ids)}",
            status=answer,
            amount=request.amount,
            currency=request.currency,
            idempotency_key=request.idempotency_key,
            instructions=INSTRUCTIONS if answer == "requires_action" else None,
        )
        self.provider_refunds[request.idempotency_key] = result
        return result

    @activity.defn(name=names.ACTIVITY_RECORD_AND_PAY)
    async def record_and_issue_provider_refund(
        self, request: RecordAndPayInput
    ) -> ProviderRefundResult:
        """As the worker's: the record first; a refused record pays nothing."""
        await self.record_transitions(request.record)
        return await self.issue_provider_refund(request.pay)

    @activity.defn(name=names.ACTIVITY_CHECK_PROVIDER_REFUND)
    async def check_provider_refund(self, request: CheckRefundInput) -> ProviderRefundResult:
        self.calls.append("poll")
        self.polled_at.append(activity.info().scheduled_time)
        for refund in self.provider_refunds.values():
            if refund.provider_refund_id == request.provider_refund_id:
                return refund
        raise ApplicationError(f"no provider refund {request.provider_refund_id}")

    @activity.defn(name=names.ACTIVITY_CANCEL_PROVIDER_REFUND)
    async def cancel_provider_refund(self, request: CheckRefundInput) -> ProviderRefundResult:
        """Stripe's rule: only a refund that requires action can be canceled."""
        self.calls.append("cancel")
        for key, refund in self.provider_refunds.items():
            if refund.provider_refund_id == request.provider_refund_id:
                if refund.status != "requires_action":
                    raise ApplicationError(
                        f"refund is {refund.status}: only one that requires action can be canceled",
                        type=names.PROVIDER_REFUSED_ERROR,
                        non_retryable=True,
                    )
                canceled = refund.model_copy(update={"status": "canceled", "instructions": None})
                self.provider_refunds[key] = canceled
                return canceled
        raise ApplicationError(f"no provider refund {request.provider_refund_id}")

    @activity.defn(name=names.ACTIVITY_FIND_PROVIDER_REFUNDS)
    async def find_provider_refunds(self, request: FindProviderRefundsInput) -> ProviderRefunds:
        self.calls.append("find")
        mine = [r for k, r in self.provider_refunds.items() if k.startswith(request.refund_id)]
        return ProviderRefunds(refunds=mine)

    @activity.defn(name=names.ACTIVITY_ORDER_PAYOUTS)
    async def order_payouts(self, request: OrderPayoutsInput) -> OrderPayouts:
        """One refund per order in these tests: only money paid around it is out."""
        self.calls.append("payouts")
        around = self.paid_around.get(request.order_id, 0)
        captured = self.orders[request.order_id].captured_amount
        return OrderPayouts(
            captured_amount=captured, others_out=around, provider_out=around, around=around
        )

    @activity.defn(name=names.ACTIVITY_RESTOCK_LINE)
    async def restock_line(self, request: RestockInput) -> RestockResult:
        self.calls.append(f"restock:{request.sku}")
        return self.restocked.setdefault(
            request.idempotency_key,
            RestockResult(
                movement_id=f"mv_{request.sku}", sku=request.sku, quantity=request.quantity
            ),
        )
