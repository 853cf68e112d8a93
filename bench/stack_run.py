"""`refundflow bench` from start to end: its own private stack started, the bench run on it,
the table printed, the stack stopped and its folder removed, whatever ends the run
(failure, Ctrl-C, SIGTERM)."""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.pg_statements import STATEMENT_SETTINGS
from bench.report import table
from bench.run import Bench, BenchConfig
from worker.devstack import DevStack, StackConfig
from worker.processes import spawn, stop_process


async def run_bench(
    config: BenchConfig, json_out: Path | None, quiet: bool = False, as_json: bool = False
) -> int:
    """The bench, stopped as cleanly by SIGTERM as by Ctrl-C: its stack stopped, its folder
    removed (exit 143; Ctrl-C's 130 is the CLI's). `as_json`: the figures on stdout as JSON
    (`--json`), not the table."""

    def say(line: str) -> None:
        if not quiet:
            print(line, file=sys.stderr, flush=True)

    bench = asyncio.current_task()
    assert bench is not None
    terminated: list[bool] = []

    def on_sigterm() -> None:
        terminated.append(True)
        bench.cancel()

    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    try:
        return await _run_bench(config, json_out, say, as_json)
    except asyncio.CancelledError:
        if not terminated:
            raise
        print("terminated: `refundflow bench` stopped its stack", file=sys.stderr, flush=True)
        return 143
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


async def _run_bench(config: BenchConfig, json_out: Path | None, say: Any, as_json: bool) -> int:

    # Pools notice the stack going away at the end; that is expected, not news.
    logging.getLogger("asyncpg.pool").setLevel(logging.CRITICAL)

    home = Path(tempfile.mkdtemp(prefix="refundflow-bench-"))
    stack_config = StackConfig.for_tests(home)
    stack_config.time_skipping = False
    stack_config.postgres_settings = dict(STATEMENT_SETTINGS)  # statements per refund
    # The bench is one caller asking as fast as it can: no per-principal rate limit.
    stack_config.extra_env["REFUNDFLOW_API_RATE_PER_MINUTE"] = "10000000"
    stack_config.extra_env["REFUNDFLOW_API_RATE_BURST"] = "100000"
    stack = DevStack(stack_config)
    naive_worker = None
    try:
        say("starting a private stack (embedded Postgres, Temporal, sandbox, worker, API) ...")
        await asyncio.to_thread(stack.start, say)
        env = stack.env()
        env["BENCH_DATABASE_URL"] = stack.owner_database_url or env["DATABASE_URL"]
        naive_worker = spawn(
            [sys.executable, "-m", "bench.baseline_worker"],
            log_path=stack.logs / "naive-worker.log", env=env,
        )  # fmt: skip
        results = await Bench(stack, config, say, naive_worker).run()
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt | asyncio.CancelledError):
            raise  # stopped on purpose (Ctrl-C): no logs to explain it
        for name in ("naive-worker.log", "worker.log"):
            if (stack.logs / name).exists():
                say(f"--- last lines of {name}:\n" + (stack.logs / name).read_text()[-1500:])
        raise
    finally:
        if naive_worker is not None:
            stop_process(naive_worker)
        await asyncio.to_thread(stack.stop)
        shutil.rmtree(home, ignore_errors=True)
    figures = json.dumps(results, indent=2)
    print(figures if as_json else table(results))
    if json_out:
        json_out.write_text(figures)
    return 0
