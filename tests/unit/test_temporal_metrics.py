"""The bench's reading of the Temporal server's own metrics (bench/temporal_metrics.py): means
of the histograms between pairs of scrapes, per selected operation and service."""

from __future__ import annotations

from bench.temporal_metrics import Scrape, means_ms

FRONTEND = 'operation="StartWorkflowExecution",service_name="frontend",namespace="default"'
HISTORY = 'operation="StartWorkflowExecution",service_name="history"'
OTHER = 'operation="PollWorkflowTaskQueue",service_name="frontend"'
# A label whose name merely ends with `operation` is not the operation.
LOOKALIKE = 'sub_operation="StartWorkflowExecution",service_name="frontend"'


def scrape(start_s: float, starts: int, history_s: float, poll_s: float) -> Scrape:
    return {
        ("service_latency_sum", FRONTEND): start_s,
        ("service_latency_count", FRONTEND): starts,
        ("service_latency_sum", HISTORY): history_s,
        ("service_latency_count", HISTORY): starts,
        ("service_latency_sum", OTHER): poll_s,
        ("service_latency_count", OTHER): 7,
        ("service_latency_sum", LOOKALIKE): poll_s,
        ("service_latency_count", LOOKALIKE): 7 + starts,
    }


def test_means_are_of_the_calls_between_the_scrapes_only() -> None:
    before = scrape(start_s=10.0, starts=100, history_s=2.0, poll_s=50.0)
    after = scrape(start_s=10.5, starts=110, history_s=2.1, poll_s=999.0)
    means = means_ms([(before, after)])
    assert means["start"] == {"mean_ms": 50.0, "calls": 10}  # (10.5 - 10.0) s over 10 calls
    assert means["start in history"] == {"mean_ms": 10.0, "calls": 10}
    # Polls are not starts; what was not called between the scrapes has no mean.
    assert means["persistence"] == {"mean_ms": None, "calls": 0}


def test_means_over_several_spans_weigh_every_call_once() -> None:
    """A shape raced in rounds: its calls are those within its own spans, not between."""
    first = (scrape(10.0, 100, 2.0, 0.0), scrape(10.5, 110, 2.1, 0.0))  # 10 calls, 50 ms
    # Between the spans another shape made 90 starts of 100 ms each: not this shape's.
    second = (scrape(19.5, 200, 3.0, 0.0), scrape(19.8, 230, 3.3, 0.0))  # 30 calls, 10 ms
    means = means_ms([first, second])
    assert means["start"] == {"mean_ms": 20.0, "calls": 40}  # (0.5 + 0.3) s over 40 calls
