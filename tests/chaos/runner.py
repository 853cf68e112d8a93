"""Run chaos cases N times each and tabulate the invariant violations, the case errors
(a case that failed its own assertions, or whose faults never fired) and every error the
harness saw and retried."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field, replace

from tests.chaos.cases import CASES
from tests.chaos.harness import Chaos
from tests.chaos.invariants import violations
from tests.chaos.proofs import fired


@dataclass
class Tally:
    runs: int = 0
    refunds: int = 0
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    """Errors the harness saw (refusals a case expects, no-answers it retried)."""
    seconds: list[float] = field(default_factory=list)


@dataclass
class Outcome:
    refunds: int
    violations: list[str]
    error: str | None
    seen: list[str]


async def run_case(chaos: Chaos, name: str) -> Outcome:
    """One run: the case, then proof its faults fired, then the invariants."""
    chaos.new_run()
    [outcome] = await run_together(chaos, name, [chaos])
    return outcome


async def run_together(chaos: Chaos, name: str, views: list[Chaos]) -> list[Outcome]:
    """Runs of one case at the same time on the stack, one view each (their own refunds
    and errors): for cases that spend their time waiting, such as months of virtual time.
    The faults are set by each run and cleared once all have ended."""
    case = CASES[name]
    await chaos.faults.clear_faults()
    before = await chaos.injected()
    errors: list[str | None] = []
    try:
        for result in await asyncio.gather(
            *(case.run(view) for view in views), return_exceptions=True
        ):
            failed = isinstance(result, BaseException)
            errors.append(f"{type(result).__name__}: {result}" if failed else None)
    finally:
        await chaos.faults.clear_faults()
        if chaos.stack.worker is None or chaos.stack.worker.poll() is not None:
            chaos.stack.start_worker()
    after = await chaos.injected()
    silent = [f for f in case.fires if fired(before, after, *f.split(".")) < 1]
    outcomes = []
    for view, error in zip(views, errors, strict=True):
        if silent and error is None:
            error = f"faults never fired, the case proved nothing: {silent}"
        found = await violations(view)
        outcomes.append(Outcome(len(view.refund_ids), found, error, list(view.errors)))
    return outcomes


async def run_all(
    chaos: Chaos, names: list[str], runs: int, progress: bool = True, together: int = 1
) -> dict[str, Tally]:
    """Each case `runs` times; `together` runs at a time (each its own view of the stack)."""
    tallies = {name: Tally() for name in names}
    for name in names:
        tally = tallies[name]
        done = 0
        while done < runs:
            started = time.monotonic()
            batch = min(together, runs - done)
            views = [replace(chaos, orders={}, expected={}, errors=[]) for _ in range(batch)]
            for i, outcome in enumerate(await run_together(chaos, name, views), done):
                _count(tally, outcome, time.monotonic() - started)
                if progress:
                    _print_run(name, i, runs, outcome)
            done += batch
    return tallies


def _count(tally: Tally, outcome: Outcome, seconds: float) -> None:
    tally.runs += 1
    tally.refunds += outcome.refunds
    tally.violations += outcome.violations
    tally.seen += outcome.seen
    if outcome.error:
        tally.errors.append(outcome.error)
    tally.seconds.append(seconds)


def _print_run(name: str, i: int, runs: int, outcome: Outcome) -> None:
    found, error = outcome.violations, outcome.error
    mark = "ok" if not found and not error else "VIOLATION" if found else "ERROR"
    detail = f": {found[0] if found else error}" if found or error else ""
    print(
        f"  {name} run {i + 1}/{runs}: {outcome.refunds} refunds,"
        f" {len(outcome.seen)} errors seen, {mark}{detail}",
        flush=True,
    )


def table(tallies: dict[str, Tally]) -> str:
    header = (
        f"{'case':<44} {'runs':>5} {'refunds':>8} {'violations':>11} {'errors':>7}"
        f" {'seen':>5} {'mean s':>7}"
    )
    lines = [header, "-" * len(header)]
    for name, t in tallies.items():
        mean = sum(t.seconds) / len(t.seconds) if t.seconds else 0.0
        lines.append(
            f"{name:<44} {t.runs:>5} {t.refunds:>8} {len(t.violations):>11}"
            f" {len(t.errors):>7} {len(t.seen):>5} {mean:>7.1f}"
        )
    total = sum(len(t.violations) for t in tallies.values())
    lines.append("-" * len(header))
    lines.append(f"total violations: {total}")
    lines.append("errors: a case failed its own checks; seen: errors the harness met on the way")
    return "\n".join(lines)
