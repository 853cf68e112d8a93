"""The startup heap kept out of the garbage collector's full collections.

Why: a long-running process (the worker, the API, a service embedding RefundClient) starts
with 115,000-126,000 objects the cyclic collector tracks: modules, classes, the Temporal
SDK's protobuf descriptors, pydantic's validators. They live as long as the process, yet
every full collection walks all of them: measured 30-35 ms on an idle machine, 46-50 ms
under load, a pause for every request and workflow task in flight. Frozen once ready, they
are skipped: a full collection then walks only what the process made since (0.7 ms
measured). Measured on the status lookups (12 rounds of 1,000 at concurrency 50, 2,000
refunds open, one client process): p99 median 46.9 ms, worst 79.4, unfrozen; 27.4 ms,
worst 48.5, frozen.

The cost: an object frozen while alive that later becomes cyclic garbage is never
collected, nor what it holds. So freeze when ready and before any work starts (no request,
delivery or task in flight), once per process: startup's own garbage is collected first.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what startup left behind, then move everything alive now to the permanent
    generation (gc.freeze), when nothing is frozen yet: a second call (an app's lifespan
    run again in one process) freezes nothing more. Returns how many objects are frozen
    (logged at start, so operators see it was done)."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
    return gc.get_freeze_count()
