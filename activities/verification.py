"""The activities that check a workflow start against sources the worker trusts (the policy
files it was deployed with and the order system), and that check it and hold the refund's
money in one call."""

from __future__ import annotations

from pathlib import Path

import structlog
from temporalio import activity

from activities.log_context import activity_log_context
from activities.ports import OrderSystem, ReservationStore
from workflows import names
from workflows.policy import policy_hash
from workflows.verification import (
    AdmitInput,
    AdmitResult,
    VerifyRequestInput,
    VerifyRequestResult,
    not_for_its_customer,
    order_differences,
    repeated_skus,
)

log = structlog.get_logger("refundflow.verification")


def known_policy_hashes(policy_dir: Path) -> frozenset[str]:
    """SHA-256 of every policy file on disk: the only policies a refund may be pinned to."""
    return frozenset(policy_hash(path.read_text()) for path in sorted(policy_dir.glob("*.toml")))


class RequestVerifier:
    def __init__(
        self,
        orders: OrderSystem,
        policy_hashes: frozenset[str],
        reservations: ReservationStore,
    ) -> None:
        self._orders = orders
        self._policy_hashes = policy_hashes
        self._reservations = reservations

    @activity.defn(name=names.ACTIVITY_VERIFY_REQUEST)
    async def verify_request(self, request: VerifyRequestInput) -> VerifyRequestResult:
        with activity_log_context(request.refund_id):
            return await self._verify(request)

    @activity.defn(name=names.ACTIVITY_ADMIT_REFUND)
    async def admit_refund(self, request: AdmitInput) -> AdmitResult:
        """Verify the start, then (only if it holds up) hold the refund: what the two calls
        `verify_request` and `reserve_refund` do, in that order, in one activity. A retry
        holds at most once (the reservation is idempotent per refund) but asks the order
        system again: an order changed between two attempts can have the refund declined
        as unverified after a first attempt held it. The decline is recorded like any
        other, and the ledger releases what a cancelled refund held."""
        with activity_log_context(request.verify.refund_id):
            requested_by = request.reserve.requested_by if request.reserve else None
            verified = await self._verify(request.verify, requested_by)
            if verified.problems or request.reserve is None:
                return AdmitResult(problems=verified.problems)
            held = await self._reservations.reserve(request.reserve)
            log.info("reservation", reserved=held.reserved, remaining=held.remaining)
            return AdmitResult(reservation=held)

    async def _verify(
        self, request: VerifyRequestInput, requested_by: str | None = None
    ) -> VerifyRequestResult:
        problems = []
        if request.policy_hash not in self._policy_hashes:
            problems.append(f"policy #{request.policy_hash[:12]} is not one this worker knows")
        actual = await self._orders.get_order(request.order.order_id)
        problems += order_differences(request.order, actual)
        if repeated_skus(request.order):
            problems.append(f"order {request.order.order_id}: SKU on more than one line")
        if requested_by is not None:
            problems += not_for_its_customer(requested_by, actual)
        if problems:
            # The reasons name fields, never their values: nothing personal in the logs.
            log.warning("request_not_verified", problems=problems)
        return VerifyRequestResult(problems=problems)
