"""Prometheus and Grafana in docker-compose.yml (issue 14 item 3) agree with each other and
with the worker: Prometheus scrapes the port the worker's REFUNDFLOW_METRICS_ADDR names and
loads the rules; Grafana's datasource is that Prometheus and its provisioned dashboard reads
series the worker exports."""

from __future__ import annotations

import json
import re
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlparse

import yaml

from client.settings import PROJECT_ROOT
from tests.unit.test_deployment import SERVICES, env_of

DEPLOY = PROJECT_ROOT / "deploy"


def mounts(service: str) -> dict[str, str]:
    """Container path -> host path (relative to the project) of a service's bind mounts."""
    found = {}
    for volume in SERVICES[service].get("volumes", []):
        host, container = volume.split(":")[:2]
        if host.startswith("./"):
            found[container] = host[2:]
    return found


def host_path(service: str, container_path: str) -> str:
    """Where a file the container reads comes from, through the service's bind mounts."""
    for container, host in mounts(service).items():
        if container_path.startswith(container):
            return host + container_path[len(container) :]
    raise AssertionError(f"{service} does not mount {container_path}")


def test_prometheus_scrapes_the_worker_and_the_api_where_they_listen() -> None:
    command = SERVICES["prometheus"]["command"]
    config_file = next(a.split("=", 1)[1] for a in command if a.startswith("--config.file="))
    config = yaml.safe_load((PROJECT_ROOT / host_path("prometheus", config_file)).read_text())
    targets = {
        target.split(":")[0]: target.split(":")[1]
        for job in config["scrape_configs"]
        for target in job["static_configs"][0]["targets"]
    }
    listening = {"worker": "REFUNDFLOW_METRICS_ADDR", "api": "REFUNDFLOW_API_METRICS_ADDR"}
    assert set(targets) == set(listening)
    for service, variable in listening.items():
        _, port = env_of(service)[variable].rsplit(":", 1)
        assert targets[service] == port, service
        assert port in [str(p) for p in SERVICES[service]["expose"]], service
    # The API's series are internal: its metrics port is not the one published.
    published = [str(p).rsplit(":", 1)[-1] for p in SERVICES["api"]["ports"]]
    assert targets["api"] not in published
    # The rules it loads are the ones promtool checks.
    rules_dir = PurePosixPath(config_file).parent
    for rule_file in config["rule_files"]:
        path = PROJECT_ROOT / host_path("prometheus", str(rules_dir / rule_file))
        assert path == DEPLOY / "prometheus" / "alerts.yml"


def test_grafana_reads_that_prometheus_and_provisions_the_dashboard() -> None:
    provisioning = DEPLOY / "grafana" / "provisioning"
    assert host_path("grafana", "/etc/grafana/provisioning") == "deploy/grafana/provisioning"
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())[
        "datasources"
    ]
    url = urlparse(source["url"])
    # Reached on the compose network: Prometheus is not published (it has no login).
    assert url.hostname == "prometheus" and str(url.port) in SERVICES["prometheus"]["expose"]
    (provider,) = yaml.safe_load((provisioning / "dashboards/refundflow.yml").read_text())[
        "providers"
    ]
    dashboards = PROJECT_ROOT / host_path("grafana", provider["options"]["path"])
    dashboard = json.loads((dashboards / "refundflow.json").read_text())
    assert dashboard["uid"] == "refundflow" and dashboard["panels"]
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]


def test_every_refundflow_series_on_the_dashboard_is_exported() -> None:
    dashboard: dict[str, Any] = json.loads(
        (DEPLOY / "grafana/dashboards/refundflow.json").read_text()
    )
    exported = "".join(
        (PROJECT_ROOT / module).read_text()
        for module in ("worker/refund_metrics.py", "api/metrics.py")
    )
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"refundflow_[a-z_]+", expr)}
    assert used, "the dashboard shows none of refundflow's own series"
    for name in used:
        # A counter's samples end in _total, a histogram's in _bucket (prometheus_client).
        family = re.sub(r"_(total|bucket|count|sum)$", "", name)
        assert f'"{family}"' in exported, f"the dashboard reads {name}, which nothing exports"
    assert any("temporal_workflow_task_schedule_to_start_latency_bucket" in e for e in exprs)
