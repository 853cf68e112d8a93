"""The workflow sandbox the refund worker runs workflows in: Temporal's, with our own
`workflows` package passed through.

Temporal's sandbox imports a workflow's module afresh for every workflow it runs, and with
it every module that module takes as `from package import module` (that form is not passed
through even inside `imports_passed_through()`): for a refund, `workflow.py`, `names`,
`admission`, `patches`, `provider_cancel`, `failures`, `reversal`, `views` and `wording`,
executed again per refund. Measured with `refundflow bench`: that was the largest single
cost of the worker's CPU per refund (see the commit that added this module for figures).

Passing `workflows` through loads those modules once. It is safe because they hold no
mutable module-level state: only constants, frozen tables and pure functions (checked when
this was added; the one cache, `policy.parse_policy`, maps policy text to a frozen Policy).
What it costs: inside the worker, a call such as `datetime.now()` or `random.random()` in
those modules is no longer refused at run time (the sandbox's proxies apply only to modules
it imports itself; builtins such as `open` stay refused). Most of the workflow's logic
(`case`, `payment`, `journal`, `models`, `states`) was passed through and so unchecked
already. The workflow tests (tests/workflow) and the replay of committed histories keep the
default sandbox, which re-imports and checks those modules, so such a call fails there; and
tests/unit/test_workflow_code_is_deterministic.py refuses the clock, randomness, the
environment, files and the network in the package's source.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

PASSED_THROUGH = ("workflows",)


def refund_workflow_runner() -> SandboxedWorkflowRunner:
    """The sandbox with our workflow package loaded once per worker, not once per run."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSED_THROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)
