"""Settings come from environment variables with documented defaults."""

import pytest

from ociwrap.registry.settings import Settings, parse_aliases
from ociwrap.runtime.errors import RegistryError


def test_defaults():
    settings = Settings.from_env({"ARTIFACT_BUCKET": "b"})
    assert settings.presign_ttl_seconds == 3600
    assert settings.tag_ttl_seconds == 300
    assert settings.aliases == {}
    assert settings.s3_endpoint_url is None
    assert settings.log_level == "INFO"
    assert settings.request_timeout_seconds == 28
    assert settings.stale_if_error_seconds == 86400
    assert settings.mirror_max_bytes == 1024**3


def test_all_variables():
    settings = Settings.from_env(
        {
            "ARTIFACT_BUCKET": "b",
            "REGISTRY_ALIASES": "local=http://127.0.0.1:5001/, Corp=https://r.corp.example",
            "PRESIGN_TTL_SECONDS": "600",
            "TAG_TTL_SECONDS": "30",
            "S3_ENDPOINT_URL": "http://127.0.0.1:9000",
            "LOG_LEVEL": "debug",
            "REQUEST_TIMEOUT_SECONDS": "5",
            "STALE_IF_ERROR_SECONDS": "0",
            "MIRROR_MAX_BYTES": "1000",
        }
    )
    assert settings.request_timeout_seconds == 5
    assert settings.stale_if_error_seconds == 0
    assert settings.mirror_max_bytes == 1000
    assert settings.aliases == {
        "local": "http://127.0.0.1:5001",
        "corp": "https://r.corp.example",
    }
    assert (settings.presign_ttl_seconds, settings.tag_ttl_seconds) == (600, 30)
    assert settings.s3_endpoint_url == "http://127.0.0.1:9000"
    assert settings.log_level == "DEBUG"


@pytest.mark.parametrize("text", ["local", "local=ftp://x", "=http://x"])
def test_bad_aliases(text):
    with pytest.raises(ValueError, match="REGISTRY_ALIASES"):
        parse_aliases(text)


@pytest.mark.parametrize("value", ["abc", "0", "-5"])
def test_bad_ttl(value):
    with pytest.raises(ValueError, match="TAG_TTL_SECONDS"):
        Settings.from_env({"ARTIFACT_BUCKET": "b", "TAG_TTL_SECONDS": value})


def test_missing_bucket_is_a_clear_error():
    with pytest.raises(RegistryError, match="ARTIFACT_BUCKET"):
        Settings.from_env({})


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("REQUEST_TIMEOUT_SECONDS", "29"),
        ("REQUEST_TIMEOUT_SECONDS", "0"),
        ("STALE_IF_ERROR_SECONDS", "-1"),
        ("MIRROR_MAX_BYTES", str(5 * 1024**3 + 1)),
        ("MIRROR_MAX_BYTES", "1e9"),
    ],
)
def test_limits_are_checked(name, value):
    """The deadline must stay under API Gateway's cut; a mirror within MIRROR_LIMIT_BYTES."""
    with pytest.raises(ValueError, match=name):
        Settings.from_env({"ARTIFACT_BUCKET": "b", name: value})
