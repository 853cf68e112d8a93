"""The activity that checks a workflow start against sources the worker trusts: the policy
files it was deployed with and the order system."""

from __future__ import annotations

from pathlib import Path

import structlog
from temporalio import activity

from activities.log_context import activity_log_context
from activities.ports import OrderSystem
from workflows import names
from workflows.policy import policy_hash
from workflows.verification import VerifyRequestInput, VerifyRequestResult, order_differences

log = structlog.get_logger("refundflow.verification")


def known_policy_hashes(policy_dir: Path) -> frozenset[str]:
    """SHA-256 of every policy file on disk: the only policies a refund may be pinned to."""
    return frozenset(policy_hash(path.read_text()) for path in sorted(policy_dir.glob("*.toml")))


class RequestVerifier:
    def __init__(self, orders: OrderSystem, policy_hashes: frozenset[str]) -> None:
        self._orders = orders
        self._policy_hashes = policy_hashes

    @activity.defn(name=names.ACTIVITY_VERIFY_REQUEST)
    async def verify_request(self, request: VerifyRequestInput) -> VerifyRequestResult:
        with activity_log_context(request.refund_id):
            return await self._verify(request)

    async def _verify(self, request: VerifyRequestInput) -> VerifyRequestResult:
        problems = []
        if request.policy_hash not in self._policy_hashes:
            problems.append(f"policy #{request.policy_hash[:12]} is not one this worker knows")
        actual = await self._orders.get_order(request.order.order_id)
        problems += order_differences(request.order, actual)
        if problems:
            # The reasons name fields, never their values: nothing personal in the logs.
            log.warning("request_not_verified", problems=problems)
        return VerifyRequestResult(problems=problems)
