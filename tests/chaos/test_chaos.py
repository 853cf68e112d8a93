"""The fast chaos subset, once each, in the README's test command (the crash path of the
durable provider call included). The whole suite, with repeat counts and a table:
`.venv/bin/python -m tests.chaos --runs 50`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.chaos.cases import CASES
from tests.chaos.harness import Chaos, start_chaos, stop_chaos
from tests.chaos.runner import run_case

pytestmark = pytest.mark.stack
FAST = [name for name, case in CASES.items() if case.fast]


@pytest.fixture(scope="module")
async def chaos() -> AsyncIterator[Chaos]:
    context, home = await start_chaos()
    try:
        yield context
    finally:
        await stop_chaos(context, home)


@pytest.mark.parametrize("name", FAST)
async def test_invariants_hold_under(chaos: Chaos, name: str) -> None:
    outcome = await run_case(chaos, name)
    assert outcome.error is None, outcome.error
    assert outcome.refunds > 0, "the case touched no refund"
    assert outcome.violations == [], outcome.violations
