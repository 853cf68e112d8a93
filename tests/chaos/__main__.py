"""The whole chaos suite: `.venv/bin/python -m tests.chaos --runs 50`.

Starts a private stack, runs every case (or --case NAME, repeatable) N times, prints a table
of cases x runs with invariant violations, writes it as JSON with --json-out, and exits
non-zero if any invariant was violated or any case failed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
from pathlib import Path

from tests.chaos.cases import CASES
from tests.chaos.harness import start_chaos, stop_chaos
from tests.chaos.runner import run_all, table


async def main(args: argparse.Namespace) -> int:
    # The harness's own connection pool complains loudly while Postgres is down on purpose.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)
    names = args.case or list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        print(f"error: unknown case(s) {unknown}; known: {list(CASES)}", file=sys.stderr)
        return 2
    print(f"starting a private stack for {len(names)} cases x {args.runs} runs ...", flush=True)
    chaos, home = await start_chaos()
    try:
        tallies = await run_all(chaos, names, args.runs, together=args.together)
    finally:
        await stop_chaos(chaos, home)
    print(table(tallies))
    for name, tally in tallies.items():
        for problem in tally.violations[:5] + tally.errors[:5]:
            print(f"  {name}: {problem}")
    if args.json_out:
        figures = {n: vars(t) for n, t in tallies.items()}
        Path(args.json_out).write_text(json.dumps(figures, indent=2))
    bad = any(t.violations or t.errors for t in tallies.values())
    return 1 if bad else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m tests.chaos", description=__doc__)
    parser.add_argument("--runs", type=int, default=50, help="runs of each case")
    parser.add_argument("--case", action="append", help="only this case (repeatable)")
    parser.add_argument("--json-out", help="also write the figures to this JSON file")
    parser.add_argument(
        "--together",
        type=int,
        default=1,
        help="runs of a case at the same time (for cases that mostly wait, e.g. months of"
        " virtual time); default 1",
    )
    status = asyncio.run(main(parser.parse_args()))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)  # Temporal's runtime threads may crash interpreter finalisation
