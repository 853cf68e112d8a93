"""Policy v4 on the real stack: a refund is judged by the limits written for its currency
(yen limits for a yen refund), and one in a currency the policy names nowhere waits for two
people of the most senior role."""

from __future__ import annotations

import pytest

from client.errors import RefundActionRefused
from client.refund_client import RefundClient
from tests.conftest import Sandbox
from tests.integration.helpers import wait_for_state
from tests.integration.test_refund_flow import make_request

pytestmark = pytest.mark.stack


async def test_a_yen_refund_is_judged_by_the_yen_limits(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    # 7,500 yen is the yen auto-approve limit; under v3 it was 5000 minor units of anything.
    within = await refunds.request(make_request(await sandbox.order(amount=7500, currency="JPY")))
    assert within.policy_version.startswith("standard@v4")
    assert within.state.value in {"approved", "refunding", "completed"}
    await wait_for_state(refunds, within.refund_id, "completed")
    above = await refunds.request(make_request(await sandbox.order(amount=7501, currency="JPY")))
    assert above.state.value == "pending_review"


async def test_a_currency_the_policy_names_nowhere_waits_for_finance_twice(
    refunds: RefundClient, sandbox: Sandbox
) -> None:
    won = await refunds.request(make_request(await sandbox.order(amount=5000, currency="KRW")))
    assert won.state.value == "pending_review"  # 5,000 won: about 3.50 USD, yet no auto-approval
    with pytest.raises(RefundActionRefused, match="may not approve KRW refunds"):
        await refunds.approve(won.refund_id, "li", role="lead")
    with pytest.raises(RefundActionRefused, match="evidence is required for KRW refunds"):
        await refunds.approve(won.refund_id, "fin_a", role="finance")
    first = await refunds.approve(won.refund_id, "fin_a", role="finance", evidence="receipt")
    assert first.state.value == "pending_review"
    assert "sets no KRW limits, so a second person must approve" in first.timeline[-1].reason
    await refunds.approve(won.refund_id, "fin_b", role="finance")
    done = await wait_for_state(refunds, won.refund_id, "completed")
    assert done.amount == 5000 and done.currency == "KRW"
