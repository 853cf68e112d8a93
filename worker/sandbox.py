"""How the refund worker runs workflow code: directly (the default), or in Temporal's
sandbox with our `workflows` package passed through (REFUNDFLOW_WORKFLOW_SANDBOX=on).

Why directly. Temporal's sandbox imports a workflow's module afresh for every workflow it
runs; passing `workflows` through (an earlier step, measured then) already made it load our
modules once, so inside the worker the sandbox no longer checked our code: a call such as
`datetime.now()` in a passed-through module is not refused at run time, only builtins such as
`open` are. What it still cost was its own machinery on every activation and on every payload
the codec seals (it asks the sandbox for the serialization context). Measured with
`refundflow bench` on 2026-11-27: the worker's CPU per auto-approved refund was 43.3-45.2
ms in three runs with the sandbox and 32.9-34.1 ms in two without it, the largest single
cost left in the worker (py-spy: `_run_code` 18 % of the worker's samples).

What keeps the workflow code deterministic instead:
- tests/unit/test_workflow_code_is_deterministic.py refuses the clock, randomness, the
  environment, files, the network and imports by name in the package's source. It is the
  only check for most of the package even under Temporal's default sandbox: that one
  re-imports per run only the modules our workflow module takes as `from workflows import
  x` (`names`, `wording`, and `refund`'s `workflow`, `admission`, `patches`, `failures`,
  `provider_cancel`, `reversal`, `views`); the rest (`case`, `payment`, `journal`, `models`,
  `states`, `policy`, `ledger`, ...) is imported inside `imports_passed_through()`;
- the workflow tests (tests/workflow) run under Temporal's default sandbox, which refuses
  such a call at run time in the modules it re-imports;
- every committed history is replayed under both sandboxes and without one
  (tests/replay/test_replay.py).

REFUNDFLOW_WORKFLOW_SANDBOX=on brings the sandbox back in a worker (a staging worker, or
while chasing a nondeterminism error), at the CPU cost above.
"""

from __future__ import annotations

from temporalio.worker import UnsandboxedWorkflowRunner, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = ("workflows",)


def refund_workflow_runner(sandboxed: bool = False) -> WorkflowRunner:
    """The worker's runner: our code run directly, or (`sandboxed`) in Temporal's sandbox
    with our workflow package loaded once per worker, not once per run."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def runner_label(runner: WorkflowRunner | None) -> str:
    """How the worker's startup line names the runner it was given."""
    return "temporal-sandbox" if isinstance(runner, SandboxedWorkflowRunner) else "direct"
