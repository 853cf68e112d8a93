"""Percentiles, bounded concurrency and the ratios of the bench."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


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


def ratios(overall: dict[str, float], by_round: list[dict[str, float]]) -> dict[str, Any]:
    """refundflow's (respond-async) refunds/s over the naive refund's and the ceiling's:
    over the whole race, and in each round (the spread says how steady the machine was)."""

    def of(per_second: dict[str, float]) -> dict[str, float]:
        return {
            "to_naive": round(per_second["refunds"] / per_second["naive"], 3),
            "to_ceiling": round(per_second["refunds"] / per_second["ceiling"], 3),
        }

    return {**of(overall), "by_round": [of(one_round) for one_round in by_round]}
