"""Which Prefer headers ask the API to answer a refund request as soon as it is started."""

from __future__ import annotations

import pytest

from api.routes_refunds import wants_respond_async


@pytest.mark.parametrize(
    ("header", "wanted"),
    [
        ("respond-async", True),
        ("Respond-Async", True),
        ("wait=10, respond-async", True),
        ("respond-async; foo=bar", True),
        ("return=minimal", False),
        ("respond-asynchronously", False),
        ("", False),
        (None, False),
    ],
)
def test_respond_async_is_one_preference_among_others(header: str | None, wanted: bool) -> None:
    assert wants_respond_async(header) is wanted
