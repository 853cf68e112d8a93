"""Staff's refund page says what reconciliation escalated on the refund, as `refundflow
status` does: a trial's support agent read "Escalation 0", "Nothing: the refund has been
paid" on a refund paid twice (recorded as paid elsewhere, then paid by the provider too)."""

from __future__ import annotations

import aiohttp
import pytest

from client.refund_client import RefundClient
from sandbox.admin_client import SandboxAdmin
from tests.conftest import Sandbox
from tests.integration.api_support import Api
from tests.integration.test_console_pages import html_page, sign_in
from tests.integration.test_reconciliation import awaiting_operator, reconcile_cli
from worker.devstack import DevStack

pytestmark = pytest.mark.stack


async def test_a_refund_paid_twice_says_so_on_its_console_page(
    refunds: RefundClient,
    sandbox: Sandbox,
    faults: SandboxAdmin,
    stack: DevStack,
    api: Api,
    browserless: aiohttp.ClientSession,
) -> None:
    stuck, order = await awaiting_operator(refunds, sandbox, faults)
    await refunds.operator_paid_elsewhere(stuck.refund_id, "omar", "SEPA TX-4411")
    page = f"/console/refunds/{stuck.refund_id}"
    assert (await sign_in(browserless, api, "li", page))[0] == 303
    _, before = await html_page(browserless, api, page)
    assert "Reconciliation found" not in before

    await sandbox.provider_refund(order, stuck.refund_id, stuck.amount)
    await reconcile_cli(stack)
    _, after = await html_page(browserless, api, page)
    assert "Reconciliation found (still standing)" in after
    assert f"reconciliation escalated paid_elsewhere_and_by_provider for {stuck.refund_id}" in after
    assert f"refundflow anomalies --refund {stuck.refund_id}" in after
    # The order paid above its capture names the refund: said once, not twice (a trial).
    assert after.count(f"escalated paid_above_capture for order {order['order_id']}") == 1
