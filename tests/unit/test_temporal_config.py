"""Which Temporal cluster and security the settings select (client/temporal_config.py),
without connecting: precedence, the opt-in profile file, API keys kept out of reprs."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from client.settings import ConfigurationError, Settings
from client.temporal_config import without_connection_vars

NO_STACK = {"REFUNDFLOW_HOME": "/nonexistent"}


def profile_file(tmp_path: Path) -> Path:
    path = tmp_path / "temporal.toml"
    path.write_text(
        '[profile.default]\naddress = "default.example:7233"\n'
        '[profile.cloud]\naddress = "refunds.a1b2c.tmprl.cloud:7233"\n'
        'namespace = "refunds.a1b2c"\napi_key = "key-from-file"\n'
    )
    return path


def test_nothing_set_is_todays_plaintext_localhost() -> None:
    settings = Settings.from_env(NO_STACK)
    assert (settings.temporal_address, settings.temporal_namespace) == ("localhost:7233", "default")
    assert settings.temporal.kind == "plaintext"
    assert settings.temporal.connect_options() == {"tls": False}


def test_an_api_key_turns_tls_on_and_stays_out_of_reprs() -> None:
    settings = Settings.from_env({**NO_STACK, "TEMPORAL_API_KEY": "sekrit"})
    assert settings.temporal.kind == "TLS with API key"
    assert settings.temporal.connect_options() == {"api_key": "sekrit", "tls": True}
    assert "sekrit" not in repr(settings)


def test_the_profile_file_is_read_only_when_asked_for(tmp_path: Path) -> None:
    config = str(profile_file(tmp_path))
    # TEMPORAL_CONFIG_FILE alone: the file's default profile.
    chosen = Settings.from_env({**NO_STACK, "TEMPORAL_CONFIG_FILE": config})
    assert chosen.temporal_address == "default.example:7233"
    cloud = Settings.from_env(
        {**NO_STACK, "TEMPORAL_CONFIG_FILE": config, "TEMPORAL_PROFILE": "cloud"}
    )
    assert (cloud.temporal_address, cloud.temporal_namespace) == (
        "refunds.a1b2c.tmprl.cloud:7233",
        "refunds.a1b2c",
    )
    assert cloud.temporal.kind == "TLS with API key"
    assert "profile cloud in" in cloud.temporal.source


def test_variables_override_the_profile(tmp_path: Path) -> None:
    env = {
        **NO_STACK,
        "TEMPORAL_CONFIG_FILE": str(profile_file(tmp_path)),
        "TEMPORAL_PROFILE": "cloud",
        "TEMPORAL_ADDRESS": "other:7233",
        "TEMPORAL_TLS": "false",
    }
    settings = Settings.from_env(env)
    assert settings.temporal_address == "other:7233"
    assert settings.temporal.kind == "plaintext"


def test_a_profile_beats_the_running_dev_stack(tmp_path: Path) -> None:
    home = tmp_path / ".refundflow"
    home.mkdir()
    # A running stack: its pid alive (this test's own process).
    stack = {"pid": os.getpid(), "temporal_address": "127.0.0.1:7777"}
    (home / "stack.json").write_text(json.dumps(stack))
    stack_only = Settings.from_env({"REFUNDFLOW_HOME": str(home)})
    assert stack_only.temporal_address == "127.0.0.1:7777"
    config = str(profile_file(tmp_path))
    with_profile = Settings.from_env({"REFUNDFLOW_HOME": str(home), "TEMPORAL_CONFIG_FILE": config})
    assert with_profile.temporal_address == "default.example:7233"


def test_half_a_client_identity_is_refused(tmp_path: Path) -> None:
    cert = tmp_path / "client.pem"
    cert.write_text("not used")
    with pytest.raises(ConfigurationError, match="needs its key"):
        Settings.from_env({**NO_STACK, "TEMPORAL_TLS_CLIENT_CERT_PATH": str(cert)})


def test_the_dev_stack_drops_a_shells_cluster_security() -> None:
    env = {
        "TEMPORAL_PROFILE": "cloud",
        "TEMPORAL_API_KEY": "k",
        "TEMPORAL_TLS_CLIENT_CERT_PATH": "/c.pem",
        "TEMPORAL_GRPC_META_X_TENANT": "t",
        "TEMPORAL_ADDRESS": "kept:7233",
        "PATH": "/bin",
    }
    assert without_connection_vars(env) == {"TEMPORAL_ADDRESS": "kept:7233", "PATH": "/bin"}
