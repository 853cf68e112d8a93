"""Fault injection for the sandbox systems, switchable at run time.

Per system (payment, inventory, orders): added latency, transient 5xx, "commit, then lose the
response", and for the payment provider: answering `pending` and settling later (success or
failure), refusing for good (e.g. an expired card), and how long idempotency keys are kept.
Probabilities are plain floats: they are dice, not money.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SYSTEMS = ("payment", "inventory", "orders", "notifications")
System = Literal["payment", "inventory", "orders", "notifications"]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]


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


class PaymentFaults(SystemFaults):
    pending_rate: Probability = 0.0
    """Probability that a new refund is answered `pending` and settled later."""
    settle_after_ms: Annotated[int, Field(ge=0, le=86_400_000)] = 2000
    settle_failure_rate: Probability = 0.0
    """Probability that a pending refund settles as failed rather than succeeded."""
    refuse: Annotated[str, Field(pattern=r"^[a-z_]*$", max_length=40)] = ""
    """If set (e.g. `expired_card`), every new refund is refused for good with this code."""
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
