"""Fault injection for the sandbox systems, switchable at run time.

Per system (payment, inventory, orders): added latency, transient 5xx (at random, or for
each refund's first calls), "commit, then lose the response", and for the payment provider:
answering `pending` and settling later (success or failure), refusing for good (e.g. an
expired card), and how long idempotency keys are kept. Probabilities are plain floats: they
are dice, not money.

The call log (`CallLog`) keeps, per refund, every call the sandbox saw and how it was
answered, so that a test can prove what a caller did: looked up before sending, sent once, had
a call in flight when it was killed.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

SYSTEMS = ("payment", "inventory", "orders", "notifications")
System = Literal["payment", "inventory", "orders", "notifications"]
# NaN is no probability: refused as not a number (it read "should be at most 1", a trial).
Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]


class SystemFaults(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    latency_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    error_rate: Probability = 0.0
    """Probability of answering 503 before doing anything."""
    lose_response_rate: Probability = 0.0
    """Probability of doing the work, committing, then dropping the connection."""
    response_delay_ms: Annotated[int, Field(ge=0, le=600_000)] = 0
    """Delay between committing the work and answering (beyond a caller's timeout, the
    caller sees a timeout after the provider has acted)."""
    fail_first_calls: Annotated[int, Field(ge=0, le=100)] = 0
    """Answer 503 to each refund's first N calls (counted per refund id from its first call
    to this system): a system that is down for a caller's first tries, then answers."""


class PaymentFaults(SystemFaults):
    pending_rate: Probability = 0.0
    """Probability that a new refund is answered `pending` and settled later."""
    settle_after_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 2000
    settle_failure_rate: Probability = 0.0
    """Probability that a pending refund settles as failed rather than succeeded."""
    settle_cancel_rate: Probability = 0.0
    """Probability that a pending refund settles as canceled (the provider gave up; no money
    moved), like Stripe's `canceled`."""
    requires_action_rate: Probability = 0.0
    """Probability that a pending refund needs the customer first (Stripe's
    `requires_action`): it says so, with instructions, until it settles. Of pending refunds
    only: set `pending_rate` too (alone it does nothing, a trial)."""
    reverse_rate: Probability = 0.0
    """Probability that a succeeded refund is taken back later (the customer's bank returns
    it): it turns `failed` after `reverse_after_ms` and a `refund.failed` webhook goes out."""
    reverse_after_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 2000
    refuse: Annotated[str, Field(pattern=r"^[a-z_]*$", max_length=40)] = ""
    """If set (e.g. `expired_card`), every new refund is refused for good with this code;
    `none` or `off` (or nothing) refuses none (a trial's `payment.refuse=none` became the
    refusal code "none")."""

    @field_validator("refuse", mode="before")
    @classmethod
    def _none_is_no_refusal(cls, value: Any) -> Any:
        return "" if isinstance(value, str) and value.strip().lower() in ("none", "off") else value

    idempotency_retention_s: Annotated[int, Field(ge=0)] = 86_400
    """Idempotency keys older than this are forgotten, as Stripe forgets them after 24 h."""
    webhooks: bool = True
    """Send webhooks when pending refunds settle."""
    duplicate_webhooks: Annotated[int, Field(ge=0, le=10)] = 0
    """Send each webhook this many extra times (receivers must deduplicate)."""


class Faults(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payment: PaymentFaults = PaymentFaults()
    inventory: SystemFaults = SystemFaults()
    orders: SystemFaults = SystemFaults()
    notifications: SystemFaults = SystemFaults()
    """The customer inbox that refundflow's notifications are delivered to."""

    def for_system(self, system: str) -> SystemFaults:
        faults: SystemFaults = getattr(self, system)
        return faults

    def apply(self, assignments: dict[str, str]) -> Faults:
        """Return a copy with `system.field=value` assignments applied (validated)."""
        data: dict[str, Any] = self.model_dump()
        for key, raw in assignments.items():
            system, _, field = key.partition(".")
            if system not in SYSTEMS or not field:
                raise ValueError(
                    f"unknown fault {key!r}: use SYSTEM.FIELD with SYSTEM in {SYSTEMS}"
                )
            model = type(self.for_system(system))
            if field not in model.model_fields:
                known = ", ".join(sorted(model.model_fields))
                raise ValueError(f"unknown fault {key!r}: {system} has {known}")
            data[system][field] = raw
        try:
            return Faults.model_validate(data)
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"{where}: {first['msg']}") from None


def roll(probability: float) -> bool:
    return probability > 0 and random.random() < probability


CallKind = Literal["lookup", "create", "poll", "restock"]
CallOutcome = Literal["in_flight", "injected_error", "answered", "lost"]


@dataclass
class Call:
    """One call about one refund, as the sandbox answered it."""

    kind: CallKind
    outcome: CallOutcome = "in_flight"
    """in_flight: not answered yet (with `status` set, the work is done and the answer held
    back by `response_delay_ms`)."""
    status: int | None = None
    found: int | None = None
    """Lookups: how many refunds for this refund id that have not failed were listed."""
    answered_at: float | None = None
    """When the answer went out (or was dropped), Unix seconds."""
    key: str | None = None
    """The Idempotency-Key a create or restock came with."""
    traceparent: str | None = None
    """The W3C trace context the call came with (refundflow's traces, when they are on)."""


@dataclass
class CallLog:
    """Per refund id and system, the calls in the order they arrived."""

    calls: dict[str, dict[str, list[Call]]] = field(default_factory=dict)

    def start(
        self,
        system: str,
        refund_id: str,
        kind: CallKind,
        key: str | None = None,
        traceparent: str | None = None,
    ) -> Call:
        call = Call(kind, key=key, traceparent=traceparent)
        self.calls.setdefault(refund_id, {}).setdefault(system, []).append(call)
        return call

    def count(self, system: str, refund_id: str) -> int:
        return len(self.calls.get(refund_id, {}).get(system, []))

    def observe(
        self, call: Call | None, method: str, body: dict[str, Any], retention_s: int
    ) -> tuple[Call | None, bool]:
        """Read a successful payment answer: a poll's refund id (it names the provider's
        refund only), a lookup's findings. True when a lookup found a refund whose
        idempotency key is past retention: the caller came back after the key was forgotten,
        and only the lookup by refund id (kept forever) stands between it and paying twice."""
        if call is None and method == "GET" and "id" in body:
            refund_id = (body.get("metadata") or {}).get("refund_id")
            if isinstance(refund_id, str):
                call = self.start("payment", refund_id, "poll")
        if call is None or call.kind != "lookup":
            return call, False
        refunds = body.get("data", [])
        call.found = sum(1 for r in refunds if r["status"] not in ("failed", "canceled"))
        forgotten_before = datetime.now(UTC) - timedelta(seconds=retention_s)
        forgotten = any(
            datetime.fromisoformat(r["created_at"]) <= forgotten_before for r in refunds
        )
        return call, forgotten

    def of(self, refund_id: str) -> dict[str, list[dict[str, Any]]]:
        systems = self.calls.get(refund_id, {})
        return {system: [asdict(c) for c in calls] for system, calls in systems.items()}


def call_subject(
    system: str, method: str, path: str, query: Mapping[str, str], body: Any
) -> tuple[CallKind | None, str | None]:
    """What a call to a system is and which refund it is about, if the request says so (a
    poll names the provider's refund only: its refund id comes with the answer)."""
    parts = path.strip("/").split("/")
    payload = body if isinstance(body, dict) else {}
    if system == "payment" and parts[-1] == "refunds":
        if method == "GET" and "refund_id" in query:
            return "lookup", query["refund_id"]
        if method == "POST":
            metadata = payload.get("metadata")
            refund_id = metadata.get("refund_id") if isinstance(metadata, dict) else None
            return "create", refund_id if isinstance(refund_id, str) else None
    if system == "payment" and method == "GET" and parts[-2:-1] == ["refunds"]:
        return "poll", None
    if system == "inventory" and method == "POST" and parts[-1] == "restocks":
        reference = payload.get("reference")
        return "restock", reference if isinstance(reference, str) else None
    return None, None
