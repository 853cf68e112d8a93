"""The report chart's axis: tick labels that can be read."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest

from client.report_chart import MAX_X_LABELS, _Plot, _x_axis
from workflows.read_models import SeriesBucket

CHAR_PX = 6.5
"""About how wide one character of an 11 px tick label is (digits, '-', 'h')."""


def buckets(count: int, step: timedelta) -> list[SeriesBucket]:
    start = datetime(2026, 11, 20, tzinfo=UTC)
    return [
        SeriesBucket(
            start=start + i * step, completed=1, cancelled=0, open=0, p50_time_to_refund_seconds=1
        )
        for i in range(count)
    ]


@pytest.mark.parametrize(
    ("count", "step", "unit"),
    [
        (48, timedelta(hours=1), "hour"),
        (24, timedelta(hours=1), "hour"),
        (90, timedelta(days=1), "day"),
    ],
)
def test_tick_labels_never_run_together(count: int, step: timedelta, unit: str) -> None:
    series = buckets(count, step)
    ticks = [
        (float(x), text)
        for x, text in re.findall(
            r'<text x="([0-9.]+)" y="[0-9.]+" text-anchor="middle">([^<]+)<',
            "\n".join(_x_axis(_Plot(count, 1), series, unit)),
        )
    ]
    assert 2 <= len(ticks) <= MAX_X_LABELS, ticks
    for (left, text), (right, _) in itertools.pairwise(ticks):
        # Centred labels: the space between centres holds a whole label and a gap.
        assert right - left >= len(text) * CHAR_PX + 8, (text, left, right)
