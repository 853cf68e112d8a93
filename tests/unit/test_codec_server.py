"""The codec server's settings: the dev stack's tokenless allowance for its Web UI cannot be
switched on anywhere but a loopback server beside the dev issuer; docker-compose seals with
keys it has no default for, and points the Web UI at the codec server."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.codec_server import CodecServerConfig, dev_ui_call
from api.config import ApiConfig
from client.settings import ENV_VARS, ConfigurationError
from tests.unit.test_deployment import SERVICES, env_of

DEV_UI = "http://127.0.0.1:8233"


def api(dev_issuer: bool = True) -> ApiConfig:
    home = Path("/tmp/home") if dev_issuer else None
    return ApiConfig(issuer="http://x/dev-issuer", jwks_url="", audience="a", dev_issuer_home=home)


def test_settings_from_the_environment() -> None:
    config = CodecServerConfig.from_env(
        {
            "REFUNDFLOW_CODEC_PORT": "9001",
            "REFUNDFLOW_CODEC_ORIGINS": "https://temporal.example/, https://ui.example",
            "REFUNDFLOW_CODEC_DEV_UI_ORIGINS": DEV_UI,
        }
    )
    assert (config.host, config.port) == ("127.0.0.1", 9001)
    assert config.origins == ("https://temporal.example", "https://ui.example")
    config.check(api())


@pytest.mark.parametrize(
    ("host", "dev_issuer", "origin"),
    [
        ("0.0.0.0", True, DEV_UI),
        ("10.1.2.3", True, DEV_UI),
        ("127.0.0.1", False, DEV_UI),
        ("127.0.0.1", True, "https://temporal.example"),
        ("127.0.0.1", True, "http://10.0.0.5:8233"),
    ],
)
def test_the_dev_ui_allowance_is_refused_outside_a_loopback_dev_stack(
    host: str, dev_issuer: bool, origin: str
) -> None:
    config = CodecServerConfig(host=host, dev_ui_origins=(origin,))
    with pytest.raises(ConfigurationError, match="REFUNDFLOW_CODEC_DEV_UI_ORIGINS"):
        config.check(api(dev_issuer))


def test_the_dev_ui_allowance_needs_its_origin_from_loopback_and_no_token() -> None:
    config = CodecServerConfig(dev_ui_origins=(DEV_UI,))
    assert dev_ui_call(config, "127.0.0.1", {"origin": DEV_UI})
    assert dev_ui_call(config, "::1", {"origin": DEV_UI})
    assert not dev_ui_call(config, "192.168.1.9", {"origin": DEV_UI})
    assert not dev_ui_call(config, "127.0.0.1", {"origin": "http://127.0.0.1:9999"})
    assert not dev_ui_call(config, "127.0.0.1", {})
    # A token, when sent, is verified like any other.
    assert not dev_ui_call(config, "127.0.0.1", {"origin": DEV_UI, "authorization": "Bearer x"})
    assert not dev_ui_call(CodecServerConfig(), "127.0.0.1", {"origin": DEV_UI})


def test_compose_seals_with_keys_it_has_no_default_for() -> None:
    for service in ("worker", "webhooks", "api", "codec-server"):
        keys = env_of(service)["REFUNDFLOW_CODEC_KEYS"]
        assert re.fullmatch(r"\$\{REFUNDFLOW_CODEC_KEYS:\?[^}]*\}", keys), (service, keys)
    assert set(env_of("codec-server")) <= set(ENV_VARS)
    assert "REFUNDFLOW_CODEC_DEV_UI_ORIGINS" not in env_of("codec-server")
    ui = env_of("temporal-ui")
    port = SERVICES["codec-server"]["ports"][0].split(":")[0]
    assert ui["TEMPORAL_CODEC_ENDPOINT"].endswith(f":{port}}}") or ui[
        "TEMPORAL_CODEC_ENDPOINT"
    ].endswith(f":{port}")
    assert ui["TEMPORAL_CODEC_PASS_ACCESS_TOKEN"] == "true"
