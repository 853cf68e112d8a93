"""Invariant 8: the current workflow code replays every committed history unchanged."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from tests.replay.manifest import HISTORY_DIR, history_files
from workflows.refund.workflow import RefundWorkflow

HISTORIES = history_files()


def test_there_are_histories_to_replay() -> None:
    assert len(HISTORIES) >= 35, "tests/replay/histories lost its recordings"


@pytest.mark.parametrize("name", HISTORIES)
async def test_history_replays(name: str) -> None:
    replayer = Replayer(workflows=[RefundWorkflow], data_converter=pydantic_data_converter)
    path = HISTORY_DIR / name
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
