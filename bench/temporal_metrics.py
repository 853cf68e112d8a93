"""What the Temporal server itself spent its time on during a race, from its own Prometheus
metrics (the dev server's /metrics): the mean latency of the calls a refund makes, the waits
for its one history shard's lock and for its I/O slots, and its persistence (SQLite here).

Why in the bench: under load most of an acknowledgement is Temporal's start (Server-Timing's
`start`), and these say how much of that the server spends in its front end, in its history
service, waiting for the shard, or in its store. Means, from each histogram's sum and count
scraped before and after the race (the buckets are too coarse for percentiles).
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp

Scrape = dict[tuple[str, str], float]
"""(metric name, label text) -> value, for every histogram's _sum and _count."""

_SAMPLE = re.compile(r"^(\w+_(?:sum|count))\{(.*)\} (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')
REPORTED_EVERY_S = 1.0
"""The dev server reports its metrics once a second: a scrape waits that long first."""
START, COMPLETED = "StartWorkflowExecution", "RespondWorkflowTaskCompleted"
WITH_START = "ExecuteMultiOperation"  # update-with-start: the answer with the first step
# (what the bench calls it, metric, label pairs that select it)
MEANS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("start", "service_latency", {"operation": START, "service_name": "frontend"}),
    ("start in history", "service_latency", {"operation": START, "service_name": "history"}),
    ("update-with-start", "service_latency", {"operation": WITH_START, "service_name": "frontend"}),
    ("task completed", "service_latency", {"operation": COMPLETED, "service_name": "frontend"}),
    ("task dispatch", "task_dispatch_latency", {}),
    ("shard lock wait", "lock_latency", {"operation": "ShardInfo"}),
    ("shard I/O wait", "semaphore_latency", {"operation": "ShardInfo"}),
    ("persistence", "persistence_latency", {}),
)


async def scrape(http: aiohttp.ClientSession, url: str) -> Scrape:
    """Every histogram's sum and count, once the calls made so far are reported."""
    await asyncio.sleep(REPORTED_EVERY_S + 0.1)
    async with http.get(url) as response:
        text = await response.text()
    found: Scrape = {}
    for line in text.splitlines():
        sample = _SAMPLE.match(line)
        if sample:
            name, labels, value = sample.groups()
            found[(name, labels)] = float(value)
    return found


def _labels(text: str) -> dict[str, str]:
    return dict(_LABEL.findall(text))


def means_ms(spans: list[tuple[Scrape, Scrape]]) -> dict[str, dict[str, Any]]:
    """Each of MEANS over the calls made within the (before, after) scrape pairs: {name:
    {mean_ms, calls}} (calls 0: none)."""
    return {name: _mean(spans, metric, labels) for name, metric, labels in MEANS}


def _mean(
    spans: list[tuple[Scrape, Scrape]], metric: str, wanted: dict[str, str]
) -> dict[str, Any]:
    totals = {"sum": 0.0, "count": 0.0}
    for before, after in spans:
        for (name, labels), value in after.items():
            base, _, part = name.rpartition("_")
            if base != metric or not wanted.items() <= _labels(labels).items():
                continue
            totals[part] += value - before.get((name, labels), 0.0)
    calls = int(totals["count"])
    mean = round(totals["sum"] / totals["count"] * 1000, 2) if calls else None
    return {"mean_ms": mean, "calls": calls}
