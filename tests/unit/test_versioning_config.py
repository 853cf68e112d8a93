"""The worker's deployment version from its environment (worker/versioning.py): off unless
named, a build id that follows the workflow code, and settings that cannot work refused in
one line before the worker connects."""

from __future__ import annotations

import re

import pytest

from client.settings import ConfigurationError
from worker.versioning import default_build_id, deployment_from_env


def test_versioning_is_off_without_a_deployment_name() -> None:
    assert deployment_from_env({}) is None
    assert deployment_from_env({"REFUNDFLOW_DEPLOYMENT_PROMOTE": "current"}) is None


def test_a_named_deployment_takes_the_given_build_id_and_promotes_only_when_asked() -> None:
    env = {"REFUNDFLOW_DEPLOYMENT_NAME": "refundflow", "REFUNDFLOW_BUILD_ID": "2026.11.26-ab12"}
    deployment = deployment_from_env(env)
    assert deployment is not None and not deployment.promote
    assert deployment.label == "refundflow:2026.11.26-ab12"
    assert deployment.worker_config().use_worker_versioning
    promoted = deployment_from_env({**env, "REFUNDFLOW_DEPLOYMENT_PROMOTE": "current"})
    assert promoted is not None and promoted.promote


def test_the_default_build_id_is_the_package_version_and_a_hash_of_the_workflow_code() -> None:
    deployment = deployment_from_env({"REFUNDFLOW_DEPLOYMENT_NAME": "refundflow"})
    assert deployment is not None
    assert deployment.version.build_id == default_build_id()
    assert re.fullmatch(r"0\.1\.0-[0-9a-f]{12}", default_build_id())


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"REFUNDFLOW_BUILD_ID": "v2"}, "REFUNDFLOW_BUILD_ID needs REFUNDFLOW_DEPLOYMENT_NAME"),
        (
            {"REFUNDFLOW_DEPLOYMENT_NAME": "refundflow", "REFUNDFLOW_DEPLOYMENT_PROMOTE": "yes"},
            "REFUNDFLOW_DEPLOYMENT_PROMOTE must be `current` or unset",
        ),
    ],
)
def test_settings_that_cannot_work_are_refused_in_one_line(
    env: dict[str, str], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        deployment_from_env(env)
