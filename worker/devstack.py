"""The embedded dev stack: Postgres, Temporal dev server (with Web UI), sandbox and worker.

`refundflow dev` runs it in the foreground (worker/dev_foreground.py); tests run the same
stack on free ports in a temporary folder; every process is our child, stopped in reverse order.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from client.action_attestation import ActionSigner
from client.settings import STACK_FILE, read_stack_file
from client.temporal_config import without_connection_vars
from worker import dev_api, dev_codec
from worker.embedded_pg import EmbeddedPostgres
from worker.processes import (
    StackError,
    port_in_use,
    post_json,
    spawn,
    stop_process,
    wait_http,
)
from worker.processes import redact_url as redact_url
from worker.stack_config import StackConfig as StackConfig
from worker.stack_home import wipe_home as wipe_home
from worker.temporal_server import TemporalDevServer

APP_ROLE = "refundflow_app"
"""The embedded server's role for the app: may read and append to the audit, nothing more."""


class DevStack:
    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.logs = config.home / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.temporal: TemporalDevServer | None = None
        self.sandbox: subprocess.Popen[bytes] | None = None
        self.worker: subprocess.Popen[bytes] | None = None
        self.webhooks: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.codec: subprocess.Popen[bytes] | None = None
        self.database_url: str | None = config.database_url
        """What the app's processes connect with (embedded: as APP_ROLE)."""
        self.owner_database_url: str | None = config.migration_database_url
        """The schemas' owner: migrations only (and tests looking behind the scenes)."""
        # Shared by the sandbox provider (signs) and our receiver (verifies); new each start.
        self.webhook_secret = secrets.token_hex(24)
        # Signs our notifications to the sandbox customer inbox (worker signs, inbox verifies).
        self.notify_secret = "whsec_" + secrets.token_hex(24)
        # The API vouches for people's actions with it; workers check (new each start: only
        # an update arriving now is checked, never a recorded one).
        self.action_signer = ActionSigner.new()

    # --- addresses ----------------------------------------------------------------------

    @property
    def temporal_address(self) -> str:
        return f"127.0.0.1:{self.config.temporal_port}"

    @property
    def sandbox_url(self) -> str:
        return f"http://127.0.0.1:{self.config.sandbox_port}"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self.config.webhook_port}/webhooks/payments"

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.metrics_port}/metrics"

    @property
    def ui_url(self) -> str | None:
        return None if self.config.headless else f"http://127.0.0.1:{self.config.ui_port}"

    def env(self) -> dict[str, str]:
        """Environment for processes that use this stack (worker, CLI in tests)."""
        # The stack's Temporal is local and plaintext: a shell's Cloud profile, API key or
        # certificates (TEMPORAL_PROFILE, TEMPORAL_TLS_*, ...) must not apply to it.
        env = without_connection_vars(os.environ)
        # The app's processes never hold the owner's credentials.
        env.pop("MIGRATION_DATABASE_URL", None)
        # The stack's payloads are sealed with its own key file, never a shell's keys.
        env.pop("REFUNDFLOW_CODEC_KEYS", None)
        env.update(
            {
                "TEMPORAL_ADDRESS": self.temporal_address,
                "TEMPORAL_NAMESPACE": "default",
                "REFUNDFLOW_TASK_QUEUE": self.config.task_queue,
                "DATABASE_URL": self.database_url or "",
                "SANDBOX_URL": self.sandbox_url,
                "REFUNDFLOW_POLICY": self.config.policy,
                "REFUNDFLOW_HOME": str(self.config.home),
                "REFUNDFLOW_WEBHOOK_SECRET": self.webhook_secret,
                "SANDBOX_WEBHOOK_URL": self.webhook_url,
                "WEBHOOK_PORT": str(self.config.webhook_port),
                # The sandbox's customer inbox stands in for the e-mail/SMS gateway.
                "REFUNDFLOW_CUSTOMER_NOTIFY_URL": f"{self.sandbox_url}/notifications/v1/inbox",
                "REFUNDFLOW_CUSTOMER_NOTIFY_SECRET": self.notify_secret,
                "SANDBOX_NOTIFY_SECRET": self.notify_secret,
                "REFUNDFLOW_ACTION_SIGNING_KEY": self.action_signer.private_text(),
            }
        )
        env.update(dev_api.api_env(self.config.home, self.config.api_port))
        ui_port = None if self.config.headless else self.config.ui_port
        env.update(dev_codec.codec_env(self.config.home, self.config.codec_port, ui_port))
        env.update(self.config.extra_env)
        return env

    # --- lifecycle ----------------------------------------------------------------------

    def start(self, progress: Any = print) -> None:
        cfg = self.config
        running = read_stack_file(cfg.home)
        if running:
            raise StackError(
                f"a dev stack is already running from {cfg.home} (pid {running['pid']});"
                " stop it first, or start another with --home DIR and other ports"
                " (refundflow dev --help)"
            )
        listening = cfg.listening(self.database_url is None)
        _refuse_shared_ports(listening)
        taken = [
            f"{port} ({what}: --{option})"
            for what, (port, option) in listening.items()
            if port_in_use(port)
        ]
        if taken:  # all of them at once: one run to learn them, not one run each
            one = len(taken) == 1
            raise StackError(
                f"{'port' if one else 'ports'} {', '.join(taken)} already in use on 127.0.0.1:"
                f" choose {'another with that option' if one else 'others with those options'}"
                " (or stop what uses them)"
            )
        # Only now: a refused start leaves no folder behind.
        cfg.home.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        try:
            self._start_all(progress)
        except BaseException:
            self.stop()
            raise
        self._write_stack_file()

    def _start_all(self, progress: Any) -> None:
        cfg = self.config
        t0 = time.monotonic()
        dev_codec.ensure_key(cfg.home)  # before anything seals a payload with it
        if self.database_url is None:
            progress(f"starting PostgreSQL (embedded) on port {cfg.pg_port} ...")
            self.postgres = EmbeddedPostgres(
                cfg.home / "postgres",
                cfg.pg_port,
                log_path=self.logs / "postgres.log",
                durable=cfg.durable,
                settings=cfg.postgres_settings,
            )
            self.owner_database_url = self.postgres.start()
            self.database_url = self.postgres.url_as(APP_ROLE)
        if self.owner_database_url:
            progress(self._prepare_database())
        progress(f"starting Temporal dev server on {self.temporal_address} ...")
        self.temporal = TemporalDevServer(
            port=cfg.temporal_port,
            ui_port=cfg.ui_port,
            db_file=cfg.home / "temporal.sqlite" if self._temporal_persistent else None,
            log_path=self.logs / "temporal.log",
            headless=cfg.headless,
            time_skipping=cfg.time_skipping,
            ui_codec_endpoint=dev_codec.codec_url(cfg.codec_port),
            dynamic_config=cfg.temporal_dynamic_config,
        )
        self.temporal.start()
        progress(f"starting sandbox (payment provider, inventory, orders): {self.sandbox_url}")
        self.sandbox = spawn(
            [sys.executable, "-m", "sandbox", "--port", str(cfg.sandbox_port)],
            log_path=self.logs / "sandbox.log",
            env=self.env(),
        )
        self._wait_http(f"{self.sandbox_url}/health", self.sandbox, "sandbox")
        progress(f"starting webhook receiver on {self.webhook_url} ...")
        self.webhooks = spawn(
            [sys.executable, "-m", "worker.cli", "webhooks"],
            log_path=self.logs / "webhooks.log",
            env=self.env(),
        )
        self._wait_http(f"http://127.0.0.1:{cfg.webhook_port}/health", self.webhooks, "webhooks")
        progress("starting worker ...")
        self.start_worker()
        progress(f"starting API on {dev_api.api_url(cfg.api_port)} ...")
        self.api = dev_api.start_api(cfg, self.env(), self.logs / "api.log")
        self._wait_http(f"{dev_api.api_url(cfg.api_port)}/healthz", self.api, "api")
        progress(f"starting codec server on {dev_codec.codec_url(cfg.codec_port)} ...")
        self.codec = dev_codec.start_codec_server(self.env(), self.logs / "codec.log")
        self._wait_http(f"{dev_codec.codec_url(cfg.codec_port)}/healthz", self.codec, "codec")
        progress(f"stack ready in {time.monotonic() - t0:.1f} s")

    def _prepare_database(self) -> str:
        """Migrate as the owner and make the app's role ready (created, granted) before any
        process connects, as `refundflow migrate` would: then the worker and the sandbox
        find everything up to date and never need the owner's privileges."""
        from activities.migrate import MigrationRefused, Schema, prepare_for_app
        from activities.pg_store import MIGRATIONS
        from sandbox.store import MIGRATIONS as SANDBOX_MIGRATIONS

        owner_url, app_url = self.owner_database_url, self.database_url
        assert owner_url and app_url
        schemas = [Schema("refundflow", MIGRATIONS), Schema("sandbox", SANDBOX_MIGRATIONS)]
        # In a thread of its own: start() is called from threads with a running loop too.
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                prepare = prepare_for_app(owner_url, app_url, schemas)
                done = pool.submit(asyncio.run, prepare).result()
        except MigrationRefused as err:
            raise StackError(str(err)) from None
        guard = done.guard
        if not guard.protected:
            may = ", ".join(guard.allowed) or "it owns it"
            return f"warning: the app's role {guard.role} may change the audit ({may})"
        return f"database migrated as {done.owner}; the app connects as {guard.role}"

    def start_worker(self) -> subprocess.Popen[bytes]:
        # To its log like every other process: the terminal keeps the banner readable.
        log = self.logs / "worker.log"
        # Only the worker is told this address (the API is told its own: dev_api.start_api).
        env = {**self.env(), "REFUNDFLOW_METRICS_ADDR": f"127.0.0.1:{self.config.metrics_port}"}
        self.worker = spawn([sys.executable, "-m", "worker"], log_path=log, env=env)
        return self.worker

    @property
    def _temporal_persistent(self) -> bool:
        persistent = self.config.temporal_persistent
        return self.config.durable if persistent is None else persistent

    # --- failures on purpose (chaos tests) ------------------------------------------------

    def stop_worker(self) -> None:
        """SIGTERM the worker, as a deploy does: it finishes what is in flight, then exits."""
        if self.worker is not None:
            stop_process(self.worker)
            self.worker = None

    def kill_worker(self) -> None:
        """kill -9 the worker: no shutdown, in-flight activities just vanish."""
        if self.worker is not None:
            self.worker.kill()
            self.worker.wait()
            self.worker = None

    def restart_temporal(self, down_for: float = 1.0) -> None:
        assert self.temporal is not None and self._temporal_persistent
        self.temporal.stop()
        time.sleep(down_for)
        self.temporal.start()

    def restart_postgres(self, down_for: float = 1.0) -> None:
        assert self.postgres is not None, "only the embedded Postgres can be restarted"
        self.postgres.stop()
        time.sleep(down_for)
        self.postgres.start()

    def stop(self) -> None:
        """Stop everything we started, newest first. Safe to call more than once."""
        if self.codec is not None:
            stop_process(self.codec)
            self.codec = None
        if self.api is not None:
            stop_process(self.api)
            self.api = None
        if self.worker is not None:
            stop_process(self.worker)
            self.worker = None
        if self.webhooks is not None:
            stop_process(self.webhooks)
            self.webhooks = None
        if self.sandbox is not None:
            stop_process(self.sandbox)
            self.sandbox = None
        if self.temporal is not None:
            self.temporal.stop()
            self.temporal = None
        if self.postgres is not None:
            self.postgres.stop()
            self.postgres = None
        stack_file = self.config.home / STACK_FILE
        try:
            if json.loads(stack_file.read_text()).get("pid") == os.getpid():
                stack_file.unlink()
        except (OSError, ValueError):
            pass

    def children(self) -> dict[str, subprocess.Popen[bytes]]:
        procs = {
            "PostgreSQL": self.postgres.proc if self.postgres else None,
            "Temporal": self.temporal.proc if self.temporal else None,
            "sandbox": self.sandbox,
            "webhooks": self.webhooks,
            "worker": self.worker,
            "api": self.api,
            "codec": self.codec,
        }
        return {name: p for name, p in procs.items() if p is not None}

    def dead_child(self) -> str | None:
        for name, proc in self.children().items():
            if proc.poll() is not None:
                return f"{name} exited with status {proc.returncode}"
        return None

    def describe(self) -> dict[str, Any]:
        """Where everything is: written to stack.json and printed by `refundflow dev --json`."""
        return {
            "pid": os.getpid(),
            "temporal_address": self.temporal_address,
            "temporal_namespace": "default",
            "ui_url": self.ui_url,
            "database_url": self.database_url,
            # Only the embedded server's (no password in it): `refundflow migrate` from
            # another shell uses it; a given MIGRATION_DATABASE_URL stays in its environment.
            "migration_database_url": self.owner_database_url if self.postgres else None,
            "sandbox_url": self.sandbox_url,
            "webhook_url": self.webhook_url,
            "metrics_url": self.metrics_url,
            **dev_api.describe(self.config.api_port, self.config.api_metrics_port),
            **dev_codec.describe(self.config.home, self.config.codec_port),
            "task_queue": self.config.task_queue,
            "policy": self.config.policy,
            # A worker started from another shell checks people's actions as the stack's do,
            # and a RefundClient from another shell (README) acts as the stack's API does.
            "action_verify_keys": self.action_signer.public_text(),
            "action_signing_key": self.action_signer.private_text(),
            "children": {name: p.pid for name, p in self.children().items()},
            "logs": str(self.logs),
        }

    def _write_stack_file(self) -> None:
        # Readable by the owner only: it holds the database URL (with any password in it).
        path = self.config.home / STACK_FILE
        path.touch(mode=0o600)
        path.chmod(0o600)
        path.write_text(json.dumps(self.describe(), indent=2))

    def _wait_http(self, url: str, proc: subprocess.Popen[bytes], what: str) -> None:
        wait_http(url, proc, what, self.logs / f"{what}.log")

    def create_order(self, spec: dict[str, Any]) -> dict[str, Any]:
        return post_json(f"{self.sandbox_url}/orders/v1/orders", spec)


def _refuse_shared_ports(listening: dict[str, tuple[int, str]]) -> None:
    """One port given to two options: refused before anything starts (a trial: the second
    server failed after "stack ready", its reason only in its log)."""
    options: dict[int, list[str]] = {}
    for port, option in listening.values():
        options.setdefault(port, []).append(f"--{option}")
    shared = [
        f"{port} ({' and '.join(names)})" for port, names in options.items() if len(names) > 1
    ]
    if shared:
        raise StackError(f"the same port for two servers: {', '.join(shared)}; give each its own")
