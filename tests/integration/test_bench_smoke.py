"""A tiny run of `refundflow bench`, so the harness cannot rot. Figures are not asserted
(timing belongs in the benchmark, not in tests); that every figure is there, is."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.integration.helpers import run_cli

pytestmark = pytest.mark.stack
# The bench starts a private stack of its own: on a loaded 2-core machine that alone can take
# a minute. Past this, run_cli interrupts it, and the bench stops that stack before failing.
BENCH_TIMEOUT = 300


async def test_bench_runs_end_to_end_and_reports_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    code, stdout, stderr = await run_cli(
        dict(os.environ), "bench", "--refunds", "4", "--concurrency", "2", "--lookups", "4",
        "--open", "4", "--reconcile-rows", "50", "--json-out", str(out), timeout=BENCH_TIMEOUT,
    )  # fmt: skip
    assert code == 0, stderr
    figures = json.loads(out.read_text())
    assert figures["refunds"]["per_second"] > 0 and figures["baseline"]["per_second"] > 0
    assert figures["refunds"]["ratio_to_baseline"] > 0
    cost = figures["cost_per_refund"]
    assert cost["breakdown"]["start"] == 1 and cost["actions"] >= 2
    assert cost["events"] > 10 and cost["payload_bytes"] > 0
    assert figures["reconciliation"]["refunds"] >= 50
    assert "p99_ms" in figures["status_lookup"]["alone"]
    assert "kib_per_open_refund" in figures["memory"]
    for line in ("refunds/s", "baseline workflows/s", "billable actions per refund"):
        assert line in stdout
    assert "1. 4 auto-approved refunds" in stderr  # progress goes to stderr
