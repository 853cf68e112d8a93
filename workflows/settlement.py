"""How long the payment provider typically takes to return money on one rail: a policy's
`[settlement]` table, for the customer's ETA (workflows/policy.py)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SettlementTime(BaseModel):
    """How long the payment provider typically takes to return money on one rail."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    unit: Literal["minutes", "hours", "business_days"]
    min: int = Field(ge=0)
    max: int = Field(ge=0)

    @model_validator(mode="after")
    def _sane(self) -> SettlementTime:
        # Bounded: a pinned policy is evaluated inside every refund for its whole life.
        ceiling = {"minutes": 60 * 24 * 90, "hours": 24 * 90, "business_days": 90}[self.unit]
        if not self.min <= self.max <= ceiling:
            raise ValueError(f"settlement needs 0 <= min <= max <= {ceiling} {self.unit}")
        return self

    def window(self, start: datetime) -> tuple[datetime, datetime]:
        return _after(start, self.min, self.unit), _after(start, self.max, self.unit)

    def describe(self) -> str:
        unit = self.unit.replace("_", " ")
        return f"{self.min}-{self.max} {unit}" if self.min != self.max else f"{self.max} {unit}"


# Used for a rail the policy does not name (and by policies written before rails existed).
DEFAULT_SETTLEMENT: dict[str, SettlementTime] = {
    "card": SettlementTime(unit="business_days", min=5, max=10),
    "wallet": SettlementTime(unit="minutes", min=1, max=30),
    "bank_transfer": SettlementTime(unit="business_days", min=1, max=3),
}


def _after(start: datetime, amount: int, unit: str) -> datetime:
    if unit == "minutes":
        return start + timedelta(minutes=amount)
    if unit == "hours":
        return start + timedelta(hours=amount)
    day, added = start, 0
    while added < amount:  # business days: Monday to Friday
        day += timedelta(days=1)
        if day.weekday() < 5:
            added += 1
    return day
