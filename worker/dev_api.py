"""The API in the dev stack: its process, its environment and the local token issuer it
verifies against (keys under the stack's home, the directory in deploy/dev-directory.json).

Kept apart from worker/devstack.py, which calls these: the stack starts the API last, once
Temporal, Postgres and the worker are up, and records its URL and issuer in stack.json.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from api.config import DEV_AUDIENCE, dev_issuer_url
from api.dev_issuer import ensure_signing_key
from worker.processes import spawn

if TYPE_CHECKING:
    from worker.devstack import StackConfig


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def api_env(home: Path, port: int) -> dict[str, str]:
    """What the API process (and every process that talks to it) is told: where it listens
    and which issuer it trusts: the dev issuer, verified through its JWKS URL over HTTP."""
    issuer = dev_issuer_url(api_url(port))
    return {
        "REFUNDFLOW_API_URL": api_url(port),
        "REFUNDFLOW_API_PORT": str(port),
        "REFUNDFLOW_OIDC_ISSUER": issuer,
        "REFUNDFLOW_OIDC_JWKS_URL": f"{issuer}/jwks.json",
        "REFUNDFLOW_OIDC_AUDIENCE": DEV_AUDIENCE,
        "REFUNDFLOW_DEV_ISSUER_HOME": str(home),
    }


def describe(port: int, metrics_port: int) -> dict[str, Any]:
    """The API's part of stack.json: `refundflow token` signs for this issuer."""
    return {
        "api_url": api_url(port),
        "api_metrics_url": f"http://127.0.0.1:{metrics_port}/metrics",
        "issuer": dev_issuer_url(api_url(port)),
    }


def start_api(
    config: StackConfig, env: dict[str, str], log_path: Path | None
) -> subprocess.Popen[bytes]:
    """The dev issuer's key (made once), then `refundflow api` as a child process, with its
    Prometheus endpoint on a loopback port of its own (only the API is told that port)."""
    ensure_signing_key(config.home)
    env = {**env, "REFUNDFLOW_API_METRICS_ADDR": f"127.0.0.1:{config.api_metrics_port}"}
    return spawn([sys.executable, "-m", "worker.cli", "api"], log_path=log_path, env=env)
