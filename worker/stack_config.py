"""A dev stack's configuration: its folder, ports, database and the worker's settings
(worker/devstack.py runs it)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from client.settings import DEFAULT_POLICY
from worker.processes import free_port


@dataclass
class StackConfig:
    home: Path
    temporal_port: int = 7233
    ui_port: int = 8233
    pg_port: int = 55432
    sandbox_port: int = 8088
    webhook_port: int = 8089
    metrics_port: int = 9464  # the worker's Prometheus endpoint, on 127.0.0.1
    api_port: int = 8080
    api_metrics_port: int = 9465  # the API's, on 127.0.0.1 (not the API's public port)
    codec_port: int = 8081
    """The codec server (opens sealed payloads for the Web UI and operators), on 127.0.0.1."""
    database_url: str | None = None
    """Use this Postgres instead of starting the embedded one (the app's role)."""
    migration_database_url: str | None = None
    """With `database_url`: its owner's URL, to migrate and grant the app's role before
    anything starts. None: the worker and the sandbox migrate as `database_url`'s role."""
    task_queue: str = "refunds"
    policy: str = DEFAULT_POLICY
    headless: bool = False
    time_skipping: bool = True
    """Temporal may skip a workflow's time when asked (`refundflow sandbox fast-forward`);
    nothing skips unless asked."""
    durable: bool = True
    """False for tests: Postgres without fsync, Temporal without a database file."""
    temporal_persistent: bool | None = None
    """Keep Temporal's state in a file (default: same as `durable`); chaos tests restart it."""
    temporal_dynamic_config: dict[str, str] = field(default_factory=dict)
    """The dev server's dynamic config (chaos: continue-as-new suggested sooner)."""
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres_settings: dict[str, str] = field(default_factory=dict)
    """The embedded Postgres's own settings (`-c`); the bench loads pg_stat_statements."""

    @classmethod
    def for_tests(cls, home: Path) -> StackConfig:
        return cls(
            home=home,
            temporal_port=free_port(),
            ui_port=free_port(),
            pg_port=free_port(),
            sandbox_port=free_port(),
            webhook_port=free_port(),
            metrics_port=free_port(),
            api_port=free_port(),
            api_metrics_port=free_port(),
            codec_port=free_port(),
            database_url=os.environ.get("DATABASE_URL"),
            migration_database_url=os.environ.get("DATABASE_URL")
            and os.environ.get("MIGRATION_DATABASE_URL"),
            headless=True,
            time_skipping=True,
            durable=False,
            # No scheduled reconciliation: a run of its own (every 15 minutes, healing)
            # would change what a test's own `reconcile` just found (a review).
            extra_env={"RECONCILE_EVERY_MINUTES": "0"},
        )

    def listening(self, embedded_pg: bool) -> dict[str, tuple[int, str]]:
        """What the stack listens on: name -> (port, the `refundflow dev` option that sets it)."""
        cfg = self
        ports = {
            "Temporal": (cfg.temporal_port, "temporal-port"),
            "sandbox": (cfg.sandbox_port, "sandbox-port"),
            "webhook receiver": (cfg.webhook_port, "webhook-port"),
            "API": (cfg.api_port, "api-port"),
            "codec server": (cfg.codec_port, "codec-port"),
            "the worker's metrics": (cfg.metrics_port, "metrics-port"),
            "the API's metrics": (cfg.api_metrics_port, "api-metrics-port"),
        }
        if not cfg.headless:
            ports["Temporal Web UI"] = (cfg.ui_port, "ui-port")
        if embedded_pg:
            ports["PostgreSQL"] = (cfg.pg_port, "pg-port")
        return ports
