"""REFUNDFLOW_WORKFLOW_SANDBOX: the worker runs workflow code directly unless it is `on`
(worker/sandbox.py says why); anything else is one clear configuration error."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.worker import UnsandboxedWorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from client.settings import ConfigurationError, Settings
from worker.sandbox import refund_workflow_runner, runner_label


def settings_with(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"REFUNDFLOW_HOME": str(tmp_path), **env})


@pytest.mark.parametrize(("raw", "sandboxed"), [(None, False), ("off", False), ("ON", True)])
def test_the_sandbox_is_off_unless_asked_for(
    tmp_path: Path, raw: str | None, sandboxed: bool
) -> None:
    env = {} if raw is None else {"REFUNDFLOW_WORKFLOW_SANDBOX": raw}
    chosen = settings_with(tmp_path, **env).workflow_sandbox
    assert chosen is sandboxed
    runner = refund_workflow_runner(chosen)
    assert isinstance(runner, SandboxedWorkflowRunner if sandboxed else UnsandboxedWorkflowRunner)
    assert runner_label(runner) == ("temporal-sandbox" if sandboxed else "direct")


def test_a_value_other_than_on_or_off_is_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as refused:
        settings_with(tmp_path, REFUNDFLOW_WORKFLOW_SANDBOX="yes please")
    assert str(refused.value) == "REFUNDFLOW_WORKFLOW_SANDBOX must be on or off, got 'yes please'"
