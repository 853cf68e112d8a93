"""The bench's table and the issue's targets, checked against one run's figures."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LOOKUPS_AT = "concurrency_50"

TARGETS: dict[str, Callable[[dict[str, Any]], bool | None]] = {
    "refunds/s >= 2.5x the naive refund's": lambda r: r["ratios"]["to_naive"] >= 2.5,
    "refunds/s >= 0.6x the ceiling's": lambda r: r["ratios"]["to_ceiling"] >= 0.6,
    "request acknowledged p99 <= 150 ms at concurrency 20": lambda r: (
        r["refunds"]["ack_p99_ms"] <= 150 if r["config"]["concurrency"] == 20 else None
    ),
    "status lookup p99 <= 25 ms at 50 concurrent": lambda r: (
        r["status_lookup"][LOOKUPS_AT]["p99_ms"] <= 25 if LOOKUPS_AT in r["status_lookup"] else None
    ),  # None: not measured (fewer than 50 lookups asked for)
    "billable actions <= 3": lambda r: r["cost_per_refund"]["actions"] <= 3,
    "history events <= 15": lambda r: r["cost_per_refund"]["events"] <= 15,
    "worker memory per open refund <= 150 KiB": lambda r: r["memory"]["kib_per_open_refund"] <= 150,
    "reconciliation < 10 s": lambda r: r["reconciliation"]["seconds"] < 10,
}


def table(r: dict[str, Any]) -> str:
    c = r["config"]
    cost, lookup = r["cost_per_refund"], r["status_lookup"]
    rows: list[tuple[str, Any]] = []
    for key, name in (
        ("refunds", "refundflow via the API (Prefer: respond-async)"),
        ("refunds_first_step", "refundflow via the API, answered with the first step"),
        ("naive", "naive refund"),
        ("ceiling", "ceiling (3 local no-ops, eager)"),
        ("ceiling_not_eager", "ceiling started without eager start"),
    ):
        rows += _shape_rows(name, r[key], c["cores"])
    alone = r["refunds_unloaded"]
    rows += [
        ("respond-async one at a time: acknowledged p50/p95/p99 ms", _triple(alone, "ack_")),
        ("  end to end p50/p95/p99 ms", _triple(alone, "")),
        ("ratio to naive / to ceiling", f"{r['ratios']['to_naive']} / {r['ratios']['to_ceiling']}"),
        ("  in each round", _rounds(r["ratios"]["by_round"])),
        ("billable actions per refund", f"{cost['actions']} ({_counts(cost['breakdown'])})"),
        ("history events, payload bytes per refund", f"{cost['events']}, {cost['payload_bytes']}"),
        ("first step / naive / ceiling actions, events", _shape_cost(r["cost_per_shape"])),
    ]
    for label, figures in lookup.items():
        rows.append((f"status lookup {label.replace('_', ' ')} p50/p99 ms", _pair(figures)))
    rows += [
        ("worker KiB per open refund", r["memory"]["kib_per_open_refund"]),
        ("  the stack settled after opening them, s", r["memory"]["settled_after_s"]),
        (
            f"reconciliation of {r['reconciliation']['refunds']} refunds (seeded, the bench's), s",
            r["reconciliation"]["seconds"],
        ),
        ("  findings", _findings(r["reconciliation"]["findings"], c["refunds"] + c["warm_up"])),
        ("refunds, concurrency, rounds", f"{c['refunds']}, {c['concurrency']}, {c['rounds']}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines.append("")
    lines += [f"{_verdict(ok(r))} {name}" for name, ok in TARGETS.items()]
    lines += [
        "",
        "Targets are the project's goals (issue 15), not pass or fail: the bench exits 0 when it",
        "ran. Throughput and latency follow the machine's load; the ratios race every shape in",
        "the same run on the same stack, so they are what to compare between runs.",
    ]
    return "\n".join(lines)


def _verdict(met: bool | None) -> str:
    return "n/a   " if met is None else "met   " if met else "MISSED"


def _counts(counted: dict[str, int]) -> str:
    return ", ".join(f"{name} {count}" for name, count in counted.items())


def _findings(findings: dict[str, int], naive_refunds: int) -> str:
    """What reconciliation found: on the bench's stack, the naive refunds' own provider
    refunds (warm-up included), which refundflow did not make."""
    expected = {"provider_refunded_not_completed": naive_refunds}
    why = "the naive shape's refunds (warm-up included), paid outside refundflow"
    if findings == expected:
        return f"{_counts(findings)}: {why}, as expected"
    return f"{_counts(findings) or 'none'} (expected: {_counts(expected)}, {why})"


def _shape_rows(name: str, shape: dict[str, Any], cores: int) -> list[tuple[str, Any]]:
    """One shape's figures: throughput, latencies, the server's and each process's costs."""
    return [
        (f"{name}: refunds/s", shape["per_second"]),
        ("  end to end p50/p95/p99 ms", _triple(shape, "")),
        ("  acknowledged p50/p95/p99 ms", _triple(shape, "ack_")),
        *(
            [("  acknowledged by step (Server-Timing) p50/p95 ms", _steps(shape))]
            if "ack_steps_ms" in shape
            else []
        ),
        *(
            [("  Temporal server, mean ms per call", _server(shape["temporal_server_ms"]))]
            if "temporal_server_ms" in shape
            else []
        ),
        ("  CPU ms per refund", _cpu(shape["cpu_ms_per_refund"])),
        (
            "  CPU ms per refund in all, refunds/s it allows",
            f"{shape['cpu_ms_per_refund_total']}, {shape['cpu_bound_per_second']} on {cores} cores",
        ),
        *_statements(shape.get("postgres_statements")),
    ]


def _triple(d: dict[str, float], prefix: str) -> str:
    return " / ".join(str(d[f"{prefix}p{q}_ms"]) for q in (50, 95, 99))


def _steps(shape: dict[str, Any]) -> str:
    return ", ".join(
        f"{name} {d['p50_ms']}/{d['p95_ms']}" for name, d in shape["ack_steps_ms"].items()
    )


def _server(means: dict[str, dict[str, Any]]) -> str:
    """Temporal's own latencies (bench/temporal_metrics.py), the calls it saw in brackets."""
    return ", ".join(
        f"{name} {m['mean_ms']} ({m['calls']})" for name, m in means.items() if m["calls"]
    )


def _pair(d: dict[str, float]) -> str:
    return f"{d['p50_ms']} / {d['p99_ms']}"


def _cpu(per_process: dict[str, float]) -> str:
    return ", ".join(f"{name} {ms}" for name, ms in per_process.items() if ms)


def _shape_cost(costs: dict[str, dict[str, Any]]) -> str:
    return " / ".join(f"{c['actions']}, {c['events']}" for c in costs.values())


def _rounds(by_round: list[dict[str, float]]) -> str:
    return ", ".join(f"{one['to_naive']} / {one['to_ceiling']}" for one in by_round)


def _statements(counted: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """Postgres round trips per refund (bench/pg_statements.py), the most frequent below."""
    if not counted:
        return []
    rows: list[tuple[str, Any]] = [
        (
            "  Postgres statements, exec ms per refund",
            f"{counted['per_refund']}, {counted['exec_ms_per_refund']}",
        )
    ]
    rows += [
        (f"    {one['per_refund']} x", f"{one['exec_ms_per_refund']} ms  {one['statement']}")
        for one in counted["top"]
    ]
    return rows
