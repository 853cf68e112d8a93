"""The worker refuses a person's action the API did not vouch for (client.action_attestation).

An interceptor, so that every update validator checks it before its own rules, and no
workflow code changes: validators run when an update arrives and never on replay, so
refusing here adds nothing to history and changes nothing a recorded history replays.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from temporalio import workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    HandleUpdateInput,
    Interceptor,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
)

from client.action_attestation import ActionSigner, NotVouched, check, public_keys
from client.settings import Settings
from workflows.models import PersonsAction

log = structlog.get_logger("refundflow.worker")


class VouchedActions(Interceptor):
    """Refuse updates by people (PersonsAction inputs) not signed by one of `keys`."""

    def __init__(self, keys: Sequence[Ed25519PublicKey]) -> None:
        self.keys = list(keys)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        keys = self.keys

        class _Inbound(WorkflowInboundInterceptor):
            def handle_update_validator(self, input: HandleUpdateInput) -> None:
                action = input.args[0] if input.args else None
                if isinstance(action, PersonsAction):
                    refund_id = workflow.info().workflow_id
                    try:
                        check(keys, refund_id, action, time.time())
                    except NotVouched as err:
                        # An operator must see that someone tried (the answer is sealed).
                        log.warning(
                            "person_action_refused",
                            refund_id=refund_id,
                            action=type(action).__name__,
                            reason=str(err),
                        )
                        raise ApplicationError(str(err), non_retryable=True) from None
                try:
                    super().handle_update_validator(input)
                except Exception as err:
                    # Temporal keeps no trace of a refused update: an update it reapplied
                    # after a Reset, refused, was seen nowhere (a trial). Not its words: they
                    # may name staff.
                    log.info(
                        "update_refused",
                        refund_id=workflow.info().workflow_id,
                        update=input.update,
                        refusal=type(err).__name__,
                    )
                    raise

        return _Inbound


def vouching_keys(settings: Settings) -> list[Ed25519PublicKey]:
    """The keys the worker trusts: REFUNDFLOW_ACTION_VERIFY_KEYS, else the public half of
    REFUNDFLOW_ACTION_SIGNING_KEY (a process given the API's key, as in the dev stack)."""
    if settings.action_verify_keys:
        return public_keys(settings.action_verify_keys)
    if settings.action_signing_key:
        return public_keys(ActionSigner.from_text(settings.action_signing_key).public_text())
    return []


def interceptors(settings: Settings) -> list[Interceptor]:
    """The worker's interceptors: vouched actions when it has keys; else none, and a warning
    at start, since anyone who can send an update to Temporal could then act as anyone."""
    keys = vouching_keys(settings)
    if not keys:
        log.warning(
            "person_actions_not_verified",
            hint="set REFUNDFLOW_ACTION_VERIFY_KEYS (refundflow action-key) so that approvals"
            " and other actions by people are accepted only through the API",
        )
        return []
    log.info("person_actions_verified", keys=len(keys))
    return [VouchedActions(keys)]
