"""Run chaos cases N times each and tabulate the invariant violations."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from tests.chaos.cases import CASES
from tests.chaos.harness import Chaos, violations


@dataclass
class Tally:
    runs: int = 0
    refunds: int = 0
    violations: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


async def run_case(chaos: Chaos, name: str) -> tuple[int, list[str], str | None]:
    """One run: (refunds touched, violations, error raised by the case itself)."""
    chaos.new_run()
    await chaos.faults.clear_faults()
    error: str | None = None
    try:
        await CASES[name].run(chaos)
    except Exception as err:
        error = f"{type(err).__name__}: {err}"
    finally:
        await chaos.faults.clear_faults()
        if chaos.stack.worker is None or chaos.stack.worker.poll() is not None:
            chaos.stack.start_worker()
    return len(chaos.refund_ids), await violations(chaos), error


async def run_all(
    chaos: Chaos, names: list[str], runs: int, progress: bool = True
) -> dict[str, Tally]:
    tallies = {name: Tally() for name in names}
    for name in names:
        tally = tallies[name]
        for i in range(runs):
            started = time.monotonic()
            refunds, found, error = await run_case(chaos, name)
            tally.runs += 1
            tally.refunds += refunds
            tally.violations += found
            if error:
                tally.errors.append(error)
            tally.seconds.append(time.monotonic() - started)
            if progress:
                mark = "ok" if not found and not error else "VIOLATION" if found else "ERROR"
                detail = f": {found[0] if found else error}" if found or error else ""
                print(f"  {name} run {i + 1}/{runs}: {refunds} refunds, {mark}{detail}", flush=True)
    return tallies


def table(tallies: dict[str, Tally]) -> str:
    header = (
        f"{'case':<40} {'runs':>5} {'refunds':>8} {'violations':>11} {'errors':>7} {'mean s':>7}"
    )
    lines = [header, "-" * len(header)]
    for name, t in tallies.items():
        mean = sum(t.seconds) / len(t.seconds) if t.seconds else 0.0
        lines.append(
            f"{name:<40} {t.runs:>5} {t.refunds:>8} {len(t.violations):>11}"
            f" {len(t.errors):>7} {mean:>7.1f}"
        )
    total = sum(len(t.violations) for t in tallies.values())
    lines.append("-" * len(header))
    lines.append(f"total violations: {total}")
    return "\n".join(lines)
