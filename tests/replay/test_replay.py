"""Invariant 8: the current workflow code replays every committed history unchanged, each
with the workflow class its manifest entry names (refunds and reconciliation runs)."""

from __future__ import annotations

import pytest
import temporalio.workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from client.pydantic_conversion import refundflow_data_converter
from tests.replay.manifest import HISTORY_DIR, history_files, manifest_entries
from worker.sandbox import refund_workflow_runner
from workflows.reconciliation_workflow import ReconciliationWorkflow
from workflows.refund.workflow import RefundWorkflow

HISTORIES = history_files()
ENTRIES = manifest_entries()
# Every workflow type a history may be of: one missing here fails its histories, not skips.
WORKFLOWS: dict[str, type] = {
    "RefundWorkflow": RefundWorkflow,
    "ReconciliationWorkflow": ReconciliationWorkflow,
}
# The worker's runners (directly, the default; its sandbox with our modules passed through)
# and Temporal's default sandbox, which re-imports them per run and so refuses a
# nondeterministic call in them (worker/sandbox.py).
RUNNERS: dict[str, WorkflowRunner] = {
    "worker-direct": refund_workflow_runner(),
    "worker-sandbox": refund_workflow_runner(sandboxed=True),
    "default-sandbox": SandboxedWorkflowRunner(),
}


def test_there_are_histories_to_replay() -> None:
    assert len(HISTORIES) >= 35, "tests/replay/histories lost its recordings"


def test_every_workflow_type_has_a_history_to_replay() -> None:
    replayed = {ENTRIES[name]["workflow"] for name in HISTORIES if name in ENTRIES}
    assert replayed == set(WORKFLOWS)


@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("name", HISTORIES)
async def test_history_replays(name: str, runner: str) -> None:
    entry = ENTRIES.get(name)
    assert entry, f"{name} is not in histories/manifest.json: say what it is first"
    workflow = WORKFLOWS[entry["workflow"]]
    replayer = Replayer(
        workflows=[workflow],
        data_converter=refundflow_data_converter,
        workflow_runner=RUNNERS[runner],
    )
    path = HISTORY_DIR / name
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None


REFUND_HISTORIES = [n for n in HISTORIES if ENTRIES.get(n, {}).get("workflow") == "RefundWorkflow"]


@pytest.mark.parametrize("name", REFUND_HISTORIES)
async def test_a_history_reaches_every_old_path_its_entry_claims(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The manifest's `old_path_of` is what proves a patch's old path is still covered
    (test_manifest): replay says which patches this history's run asked and found no
    marker for, and every claim must be among them, not taken on trust. (A history
    recorded before a later patch also takes that patch's old path; claiming less is
    safe, claiming a path the run never reached is not.)"""
    answers: dict[str, bool] = {}
    ask = temporalio.workflow.patched

    def recorded(patch_id: str) -> bool:
        answer = ask(patch_id)
        answers.setdefault(patch_id, answer)  # the first ask decides the path
        return answer

    monkeypatch.setattr(temporalio.workflow, "patched", recorded)
    replayer = Replayer(
        workflows=[RefundWorkflow],
        data_converter=refundflow_data_converter,
        workflow_runner=RUNNERS["worker-direct"],  # our modules as imported: patched above
    )
    path = HISTORY_DIR / name
    history = WorkflowHistory.from_json(path.stem, path.read_text())
    await replayer.replay_workflow(history, raise_on_replay_failure=True)
    entry = ENTRIES[name]
    assert set(entry["old_path_of"]) <= {p for p, new in answers.items() if not new}
    assert {p for p, new in answers.items() if new} <= set(entry["new_path_of"])
