"""The alert rules (deploy/prometheus) pass `promtool check rules`, fire as their unit tests
say (`promtool test rules`), and watch series the worker really exports.

promtool comes from Debian's prometheus package, unpacked into .venv/bin by
scripts/install_promtool.sh (run by ./scripts/test). Without it these tests fail: a rule
file nobody checked is not one to page people with.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
import yaml

from client.settings import PROJECT_ROOT

RULES = PROJECT_ROOT / "deploy" / "prometheus"
ISSUE_14_ALERTS = {
    "RefundflowDuplicateRefund",
    "RefundflowOutboxStuck",
    "RefundflowWorkflowTaskScheduleToStartSlow",
    "RefundflowNoFreeWorkerSlots",
}


def promtool() -> str:
    found = shutil.which("promtool") or shutil.which(
        "promtool", path=str(PROJECT_ROOT / ".venv/bin")
    )
    if not found:
        pytest.fail("promtool not found: run scripts/install_promtool.sh (./scripts/test does)")
    return found


@pytest.mark.parametrize(
    "args",
    [
        ["check", "rules", "alerts.yml"],
        ["test", "rules", "alerts_test.yml"],
        ["check", "config", "prometheus.yml"],
    ],
    ids=lambda args: " ".join(args),
)
def test_promtool_passes(args: list[str]) -> None:
    done = subprocess.run(
        [promtool(), *args], cwd=RULES, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr


def alerts() -> dict[str, str]:
    groups = yaml.safe_load((RULES / "alerts.yml").read_text())["groups"]
    return {rule["alert"]: rule["expr"] for group in groups for rule in group["rules"]}


def test_the_alerts_the_issue_asks_for_exist() -> None:
    assert ISSUE_14_ALERTS <= alerts().keys()
    assert "> 300" in alerts()["RefundflowOutboxStuck"]  # 5 minutes, in seconds
    assert "> 200" in alerts()["RefundflowWorkflowTaskScheduleToStartSlow"]  # ms
    assert "histogram_quantile(0.99" in alerts()["RefundflowWorkflowTaskScheduleToStartSlow"]
    assert "== 0" in alerts()["RefundflowNoFreeWorkerSlots"]


def test_every_refundflow_series_an_alert_reads_is_exported() -> None:
    exported = "\n".join(
        (PROJECT_ROOT / "worker" / name).read_text() for name in ("refund_metrics.py", "metrics.py")
    )
    for name, expr in alerts().items():
        for series in re.findall(r"refundflow_[a-z_]+", expr):
            assert f'"{series}"' in exported, f"{name} reads {series}, which nothing exports"
