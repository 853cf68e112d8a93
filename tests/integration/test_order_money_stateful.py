"""Invariant 9 on the real stack as a hypothesis state machine: random sequences of requests
on one order (lines or amounts, every channel and reason, fresh, reused and content-derived
keys; two customers' orders), in batches issued at once, with reviewers approving and
customers withdrawing what waits for review. Checked after every step and once every refund
has settled, where the money moves (the sandbox provider) and where it is guarded (the ledger).

FIXED_SEED (printed), chosen as its run reaches every outcome in MIX; MONEY_SEED=<n> replays
seed n, MONEY_SEED=random draws one (a short run may then miss an outcome of MIX: that says
nothing about the code), MONEY_EXAMPLES=<n> runs more examples (a long run).
"""

from __future__ import annotations

import asyncio
import math
import os
import random
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal, TypeVar

import asyncpg
import pytest
from hypothesis import HealthCheck, Phase, seed, settings, stateful
from hypothesis import strategies as st
from hypothesis.errors import Flaky

from client.errors import InvalidRefundRequest, RefundActionRefused, RefundConflict
from client.policy_source import load_policy
from client.refund_client import RefundClient
from client.refund_ids import default_refund_key, refund_id_for
from client.settings import DEFAULT_POLICY, PROJECT_ROOT
from tests.conftest import Sandbox
from tests.integration.helpers import eventually
from tests.integration.money_ledger import Held, ledger, provider_money
from workflows.models import CHANNELS, REASON_CODES, OrderSnapshot, RefundRequest, StatusView
from workflows.policy import SELLER_FAULT_REASONS, parse_policy
from workflows.states import Awaiting, RefundState
from workflows.validation import RefundInputError, resolve_request

pytestmark = pytest.mark.stack
T = TypeVar("T")

FIXED_SEED = 14
EXAMPLES = int(os.environ.get("MONEY_EXAMPLES", "15"))
STEPS = 12
IN_FORCE = load_policy(PROJECT_ROOT / "policies", DEFAULT_POLICY)
POLICY = parse_policy(IN_FORCE.document)
PER_ORDER = POLICY.budgets.auto_approve_per_order if POLICY.budgets else None
PER_CUSTOMER = POLICY.budgets.auto_approve_per_customer if POLICY.budgets else None
LIMIT = POLICY.approval.auto_approve_limit
FINAL_SALE = sorted(POLICY.eligibility.final_sale_categories)
# Outcomes a run must reach, or the properties proved little.
MIX = {"auto-approved", "budget withheld", "refused naming a refund", "approved by a reviewer"}
AT_REST = (RefundState.COMPLETED, RefundState.CANCELLED)  # or waiting for a reviewer
ANSWERS = (InvalidRefundRequest, RefundConflict)  # what a request may get instead of a refund
SETTINGS = settings(
    max_examples=EXAMPLES, stateful_step_count=STEPS, deadline=None, database=None,
    suppress_health_check=[HealthCheck.too_slow],  # each step is real requests on a real stack
    # Shrinking replays sequences on the stack for minutes: only when MONEY_SHRINK=1 asks.
    phases=list(Phase) if os.environ.get("MONEY_SHRINK") else [Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
)  # fmt: skip


def line(sku: str, category: st.SearchStrategy[str], prices: list[int], most: int) -> Any:
    return st.fixed_dictionaries(
        {"sku": st.just(sku), "category": category, "unit_price": st.sampled_from(prices),
         "quantity": st.integers(1, most)}
    )  # fmt: skip


# General, maybe electronics (a fee when no fault), final sale: below evidence and four eyes.
ORDER_LINES = st.tuples(
    line("MUG", st.just("general"), [1500, 2500, 4000], 3),
    st.none() | line("TV", st.just("electronics"), [9000, 12000], 1),
    line("GIFT", st.sampled_from(FINAL_SALE), [2000, 6000], 2),
).map(lambda lines: [x for x in lines if x is not None])


@dataclass(frozen=True)
class Ask:  # one request, drawn before the order is known: line positions, not SKUs
    lines: tuple[int, ...] | None  # None: an amount-only request
    quantity: int
    amount: int
    reason: str
    channel: str
    key: Literal["fresh", "again", "content"]
    pick: int  # which earlier key "again" reuses
    customer: int  # drawn so that a seed keeps its examples; the order's customer asks


# Amounts mostly split just below the auto-approve limit, which spends the budgets fastest;
# quantities sometimes more than a line has (refused).
AMOUNTS = st.integers(LIMIT // 2, LIMIT) | st.integers(1, LIMIT) | st.integers(1, 30000)
ASKS = st.builds(
    Ask, st.none() | st.lists(st.integers(0, 2), min_size=1, max_size=2).map(tuple),
    st.integers(1, 3), AMOUNTS,
    st.sampled_from(REASON_CODES), st.sampled_from(CHANNELS),
    st.sampled_from(["fresh", "again", "content"]), st.integers(0, 20), st.integers(0, 1),
)  # fmt: skip


@dataclass
class Refund:  # what the test knows of a refund it started: who asked, why, which units
    requested_by: str
    reason: str
    units: dict[str, int]  # {} for an amount-only refund
    status: StatusView


@dataclass
class World:  # shared by the examples of a run: customers' budgets span their orders
    loop: asyncio.AbstractEventLoop
    refunds: RefundClient
    sandbox: Sandbox
    db: asyncpg.Pool
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    started: dict[str, Refund] = field(default_factory=dict)
    seen: Counter[str] = field(default_factory=Counter)
    failures: list[AssertionError] = field(default_factory=list)
    orders: int = 0  # made so far (every other one is the second customer's)

    def run(self, work: Awaitable[T]) -> T:
        try:
            return self.loop.run_until_complete(work)
        except AssertionError as failure:  # kept: a replay on this stack may not fail again
            self.failures.append(failure)
            raise


class OrderMoney(stateful.RuleBasedStateMachine):
    world: ClassVar[World]

    def __init__(self) -> None:
        super().__init__()
        self.order: OrderSnapshot | None = None
        self.refunds: dict[str, Refund] = {}
        self.keys: list[str] = []

    @stateful.initialize(lines=ORDER_LINES)
    def open_order(self, lines: list[dict[str, Any]]) -> None:
        customer = f"cust-{self.world.run_id}-{self.world.orders % 2}"  # whose: alternately
        self.world.orders += 1
        made = self.world.run(self.world.sandbox.order(lines=lines, customer_id=customer))
        self.order = OrderSnapshot.model_validate(made)

    @stateful.rule(asks=st.lists(ASKS, min_size=1, max_size=3))
    def ask_at_once(self, asks: list[Ask]) -> None:
        requests = [self.request(ask) for ask in asks]
        asked = (self.world.refunds.request(r) for r in requests)
        outcomes = self.world.run(asyncio.gather(*asked, return_exceptions=True))
        keys = [r.refund_key for r in requests]
        pairs = list(zip(requests, outcomes, strict=True))
        for request, outcome in pairs:  # refunds first: a refusal may name one of them
            if isinstance(outcome, StatusView):
                self.started(request, outcome)
        for request, outcome in pairs:
            self.judge(request, outcome, keys.count(request.refund_key) > 1)
        self.keys += keys

    # Drawn whatever the stack answered, so the same choices always draw alike (else hypothesis
    # stops: "inconsistent data generation"); with nothing waiting for review, nothing happens.
    @stateful.rule(pick=st.integers(0, 20), withdraw=st.integers(0, 3), reviewer=st.integers(0, 1))
    def someone_decides(self, pick: int, withdraw: int, reviewer: int) -> None:
        waiting = sorted(rid for rid, r in self.refunds.items() if waits_for_review(r.status))
        if not waiting:
            return
        refund, refunds = self.refunds[waiting[pick % len(waiting)]], self.world.refunds
        rid, role = refund.status.refund_id, refund.status.approval_by or "support"
        if withdraw == 3:  # the customer withdraws it (one time in four): its units are free
            refund.status = self.world.run(refunds.cancel(rid, refund.requested_by, "no"))
            assert refund.status.state is RefundState.CANCELLED, refund.status
            self.world.seen["withdrawn"] += 1
            return
        # Four eyes: the requester, however they type their name, is refused; nothing changes.
        with pytest.raises(RefundActionRefused, match="requested this refund"):
            self.world.run(refunds.approve(rid, refund.requested_by.upper(), role=role))
        who = f"rev-{self.world.run_id}-{reviewer}"
        refund.status = self.world.run(refunds.approve(rid, who, role=role))
        assert refund.status.state is not RefundState.PENDING_REVIEW, refund.status
        self.world.seen["approved by a reviewer"] += 1

    @stateful.invariant()
    def money_is_guarded(self) -> None:
        if self.order is not None:
            self.world.run(check_money(self.world, self.order, self.refunds))
            self.world.run(check_customer_ledger(self.world))

    def teardown(self) -> None:
        if self.order is not None:
            self.world.run(settle_and_check(self.world, self.order, self.refunds))

    def request(self, ask: Ask) -> RefundRequest:
        assert self.order is not None
        order_id, lines = self.order.order_id, self.order.lines
        skus = sorted({lines[i % len(lines)].sku for i in ask.lines or ()})
        units = [(sku, ask.quantity) for sku in skus] or None
        amount = None if units else ask.amount
        key = f"k-{uuid.uuid4().hex[:12]}"
        if ask.key == "again" and self.keys:
            key = self.keys[ask.pick % len(self.keys)]
        elif ask.key == "content":  # what a channel that brings no key gets
            key = default_refund_key(order_id, amount, units, ask.reason)
        return RefundRequest.model_validate(
            {"refund_key": key, "order_id": order_id, "amount": amount,
             "lines": [{"sku": s, "quantity": q} for s, q in units] if units else None,
             "reason_code": ask.reason, "channel": ask.channel,
             "requested_by": self.order.customer_id or ""}
        )  # fmt: skip

    def started(self, request: RefundRequest, status: StatusView) -> None:
        rid = refund_id_for(request.order_id, request.refund_key)
        assert status.refund_id == rid and status.order_id == request.order_id, status
        if (known := self.refunds.get(rid)) is not None:  # the same refund, never a second
            known.status = status
            return
        units = {x.sku: x.quantity for x in request.lines or []}
        refund = Refund(request.requested_by, request.reason_code, units, status)
        self.refunds[rid] = self.world.started[rid] = refund
        self.world.seen[status.state.value] += 1

    def judge(self, request: RefundRequest, outcome: Any, key_twice: bool) -> None:
        """The answer fits what the test knows: a key already used answers with its refund
        (same amount and reason) or a conflict; a refusal names refunds of this order."""
        if isinstance(outcome, BaseException) and not isinstance(outcome, ANSWERS):
            raise outcome
        self.world.seen[type(outcome).__name__] += 1
        if isinstance(outcome, InvalidRefundRequest):
            named = set(re.findall(r"rf_[0-9a-f]{24}", str(outcome)))
            assert named <= set(self.refunds), f"{outcome} names refunds not of this order"
            self.world.seen["refused naming a refund"] += bool(named)
        prior = self.refunds.get(refund_id_for(request.order_id, request.refund_key))
        assert not isinstance(outcome, RefundConflict) or prior or key_twice, outcome
        assert self.order is not None
        try:  # a request that does not fit the order is refused before its key is looked at
            asked = resolve_request(request, self.order).amount
        except RefundInputError:
            return
        if prior is not None and not key_twice:
            same = (prior.status.requested_amount, prior.reason) == (asked, request.reason_code)
            expected = StatusView if same else RefundConflict
            assert isinstance(outcome, expected), f"{request} -> {outcome!r}, not {expected}"


async def check_money(world: World, order: OrderSnapshot, known: Mapping[str, Refund]) -> None:
    order_id = order.order_id
    paid = await provider_money(world.sandbox, order_id)
    held = await ledger(world.db, order_id)
    live = {rid: h for rid, h in held.items() if h.state != "released"}
    assert set(paid) <= set(known), f"{order_id}: the provider paid refunds never started: {paid}"
    total = sum(sum(amounts) for amounts in paid.values())
    assert total <= order.captured_amount, f"{order_id}: paid {total} (invariant 2)"
    for rid, amounts in paid.items():
        assert len(amounts) == 1, f"{rid}: {amounts} provider refunds (invariant 1)"
        hold = live.get(rid)
        assert hold is not None, f"{rid}: paid {amounts} with no hold in the ledger"
        assert amounts[0] <= hold.amount <= whole(hold), f"{rid}: paid {amounts}, holds {hold}"
    no_fault = {rid for rid, r in known.items() if r.reason not in SELLER_FAULT_REASONS}
    for x in order.lines:
        value = x.quantity * x.unit_price
        units = sum(h.lines.get(x.sku, (0, 0))[0] for h in live.values())
        kept = sum(h.lines.get(x.sku, (0, 0))[1] for h in live.values())
        assert units <= x.quantity and kept <= value, f"{x.sku}: {units} units, {kept} held"
        # Each refund's money on the line, shared out like its holds and rounded up: never
        # more than its hold there, as it never pays more than it holds in all.
        on_line = {
            rid: math.ceil(sum(a) * live[rid].lines.get(x.sku, (0, 0))[1] / whole(live[rid]))
            for rid, a in paid.items()
        }
        assert sum(on_line.values()) <= value, f"{x.sku}: provider paid {on_line} of {value}"
        if x.category in FINAL_SALE:
            taken = {rid: held[rid].lines.get(x.sku) for rid in no_fault if rid in held}
            assert not any(taken.values()), f"{x.sku} (final sale) held for no-fault: {taken}"
            assert not any(on_line.get(rid) for rid in no_fault), f"{x.sku} paid: {on_line}"
    reach = sum(x.quantity * x.unit_price for x in order.lines if x.category not in FINAL_SALE)
    no_fault_paid = sum(sum(a) for rid, a in paid.items() if rid in no_fault)
    assert no_fault_paid <= reach, f"{order_id}: {no_fault_paid} paid for no-fault reasons"
    auto = sum(h.amount for h in live.values() if h.auto_approved)
    assert PER_ORDER is None or auto <= PER_ORDER, f"{order_id}: {auto} auto-approved"


def whole(hold: Held) -> int:  # the value it holds on all lines (the orders here have lines)
    return sum(v for _, v in hold.lines.values()) or 1


async def check_customer_ledger(world: World) -> None:
    """Auto-approved per customer by the ledger, over the run's orders (within the window)."""
    spent = await world.db.fetch(
        "SELECT requested_by, sum(amount) FROM refundflow.reservations WHERE requested_by"
        " LIKE $1 AND auto_approved AND state <> 'released' GROUP BY requested_by",
        f"cust-{world.run_id}-%",
    )
    assert PER_CUSTOMER is None or all(r[1] <= PER_CUSTOMER for r in spent), list(map(dict, spent))


def waits_for_review(status: StatusView) -> bool:
    return status.state is RefundState.PENDING_REVIEW and status.awaiting is Awaiting.REVIEWER


def settled(status: StatusView) -> bool:
    return status.state in AT_REST or waits_for_review(status)


def auto_approved(status: StatusView) -> bool:  # the policy approved it, no reviewer
    return any(e.event == "auto_approve" for e in status.timeline)


async def settle_and_check(world: World, order: OrderSnapshot, known: dict[str, Refund]) -> None:
    """Every refund at rest: paid exactly its amount if completed, nothing otherwise; no unit
    asked for by two refunds that are not cancelled; the ledger agrees with the timelines on
    which refunds the policy approved itself; the money checks once more."""

    async def final(refund: Refund) -> None:
        refund.status = await eventually(
            lambda: world.refunds.status(refund.status.refund_id), settled, timeout=60
        )

    await asyncio.gather(*(final(r) for r in known.values()))
    paid = await provider_money(world.sandbox, order.order_id)
    for rid, refund in known.items():
        expected = [refund.status.amount] if refund.status.state is RefundState.COMPLETED else []
        assert paid.get(rid, []) == expected, f"{rid}: {refund.status.state}, paid {paid.get(rid)}"
    units = Counter[str]()
    for refund in known.values():
        units.update(refund.units if refund.status.state is not RefundState.CANCELLED else {})
    for x in order.lines:
        assert units[x.sku] <= x.quantity, f"{x.sku}: {units} asked by open refunds"
    held = await ledger(world.db, order.order_id)
    auto = {rid for rid, r in known.items() if auto_approved(r.status)}
    flagged = {rid for rid, h in held.items() if h.auto_approved}
    assert auto == flagged, f"auto-approved per timelines {auto}, per ledger {flagged}"
    world.seen["auto-approved"] += len(auto)
    world.seen["budget withheld"] += sum(1 for h in held.values() if h.withheld)
    await check_money(world, order, known)
    # Per customer by the timelines, over every order of the run so far (all settled).
    spent = Counter[str]()
    for refund in world.started.values():
        spent[refund.requested_by] += refund.status.amount if auto_approved(refund.status) else 0
    assert PER_CUSTOMER is None or max(spent.values(), default=0) <= PER_CUSTOMER, spent


@pytest.fixture
async def loop() -> asyncio.AbstractEventLoop:
    return asyncio.get_running_loop()  # the stack clients' loop: idle in a sync test


def test_money_is_guarded_per_order_under_random_requests(
    loop: asyncio.AbstractEventLoop, refunds: RefundClient, sandbox: Sandbox, db: asyncpg.Pool
) -> None:
    assert refunds.policy.content_hash == IN_FORCE.content_hash  # judged by the policy in force
    assert PER_ORDER and PER_CUSTOMER and FINAL_SALE, "the policy in force has no budgets"
    wanted = os.environ.get("MONEY_SEED", "").strip() or str(FIXED_SEED)
    chosen = random.randrange(2**32) if wanted == "random" else int(wanted)
    print(f"order money state machine: MONEY_SEED={chosen}")  # shown with a failure's output

    class Run(OrderMoney):
        world = World(loop, refunds, sandbox, db)

    try:
        stateful.run_state_machine_as_test(seed(chosen)(Run), settings=SETTINGS)
    except Flaky as flaky:  # customers' budgets carry over, so a replay need not fail again
        if Run.world.failures:
            raise Run.world.failures[0] from flaky  # the first failure is the finding
        raise
    seen = dict(Run.world.seen)
    print(f"seed {chosen}: {seen}")
    assert MIX <= set(seen), (chosen, seen)
