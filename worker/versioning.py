"""Worker Deployment Versioning: which deployment and build a worker belongs to, and making a
version current.

Off unless REFUNDFLOW_DEPLOYMENT_NAME is set: the dev stack and the tests run unversioned
workers, which take every task of their queue. With a name, the worker polls as version
(name, build id) and the server routes each refund to the version it started on (refunds are
PINNED, see Deployment.worker_config), new refunds to the deployment's current (or ramping) version.
The build id is REFUNDFLOW_BUILD_ID (an image tag, a commit), else refundflow's version plus a
hash of the workflow code: a change to what running refunds execute is a new version, a change
elsewhere is not. docs/deployment.md has the rollout.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import structlog
from temporalio.api.workflowservice.v1 import (
    DescribeWorkerDeploymentRequest,
    SetWorkerDeploymentCurrentVersionRequest,
)
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.service import RPCError, RPCStatusCode
from temporalio.worker import WorkerDeploymentConfig

import workflows
from client.settings import ConfigurationError

log = structlog.get_logger("refundflow.versioning")
DEPLOYMENT_NAME_VAR = "REFUNDFLOW_DEPLOYMENT_NAME"
BUILD_ID_VAR = "REFUNDFLOW_BUILD_ID"
PROMOTE_VAR = "REFUNDFLOW_DEPLOYMENT_PROMOTE"
"""`current`: the worker makes its own version current once the server knows it (the dev
stack, a single worker); unset: an operator promotes it (`temporal worker deployment`)."""


@dataclass(frozen=True)
class Deployment:
    version: WorkerDeploymentVersion
    promote: bool
    """Make this version current once the worker polls."""

    def worker_config(self) -> WorkerDeploymentConfig:
        # Every workflow of a versioned worker is PINNED: a refund runs to its end on the
        # build it started on, so a deploy never replays it on other code. Set here, not
        # with @workflow.defn(versioning_behavior=...): an unversioned worker (the dev stack,
        # the tests) fails every workflow task that names a behavior.
        return WorkerDeploymentConfig(
            version=self.version,
            use_worker_versioning=True,
            default_versioning_behavior=VersioningBehavior.PINNED,
        )

    @property
    def label(self) -> str:
        return _label(self.version)


def _label(version: WorkerDeploymentVersion) -> str:
    """`name:build`, as the TemporalWorkerDeploymentVersion search attribute holds it."""
    return f"{version.deployment_name}:{version.build_id}"


def deployment_from_env(env: Mapping[str, str]) -> Deployment | None:
    """The worker's deployment version from the environment; None: versioning off."""
    name = env.get(DEPLOYMENT_NAME_VAR, "").strip()
    build_id = env.get(BUILD_ID_VAR, "").strip()
    promote = env.get(PROMOTE_VAR, "").strip()
    if promote not in ("", "current"):
        raise ConfigurationError(f"{PROMOTE_VAR} must be `current` or unset, not {promote!r}")
    if not name:
        if build_id:
            raise ConfigurationError(f"{BUILD_ID_VAR} needs {DEPLOYMENT_NAME_VAR} as well")
        return None
    version = WorkerDeploymentVersion(deployment_name=name, build_id=build_id or default_build_id())
    return Deployment(version=version, promote=promote == "current")


def default_build_id() -> str:
    """refundflow's version and a hash of the workflow code (what pinned refunds replay)."""
    digest = hashlib.sha256()
    package = Path(workflows.__file__).resolve().parent
    for source in sorted(package.rglob("*.py")):
        digest.update(source.relative_to(package).as_posix().encode() + b"\0")
        digest.update(source.read_bytes() + b"\0")
    return f"{metadata.version('refundflow')}-{digest.hexdigest()[:12]}"


async def make_current(
    client: Client, version: WorkerDeploymentVersion, *, within_s: float = 30
) -> None:
    """Make `version` its deployment's current version, once a worker of it has polled (the
    server only knows a version from its pollers)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while not await _is_known(client, version):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"no worker of {_label(version)} polled in time")
        await asyncio.sleep(0.2)
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=version.deployment_name,
            build_id=version.build_id,
            identity=client.identity,
        )
    )
    log.info("deployment_version_current", version=_label(version))


async def _is_known(client: Client, version: WorkerDeploymentVersion) -> bool:
    try:
        described = await client.workflow_service.describe_worker_deployment(
            DescribeWorkerDeploymentRequest(
                namespace=client.namespace, deployment_name=version.deployment_name
            )
        )
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:  # no worker of this deployment polled yet
            return False
        raise
    return any(
        summary.deployment_version.build_id == version.build_id
        for summary in described.worker_deployment_info.version_summaries
    )
