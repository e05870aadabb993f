"""Settings come from environment variables with documented defaults."""

import hashlib

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


@pytest.mark.parametrize("bucket", [None, "", "  "])
def test_missing_bucket_is_a_clear_error(bucket):
    env = {} if bucket is None else {"ARTIFACT_BUCKET": bucket}
    with pytest.raises(RegistryError) as raised:
        Settings.from_env(env)
    error = raised.value
    assert (error.code, error.status) == ("UNAVAILABLE", 503)
    assert error.message == "ARTIFACT_BUCKET is not set: the registry has no bucket"


def test_upstream_allow_may_start_with_an_alias():
    settings = Settings.from_env(
        {
            "ARTIFACT_BUCKET": "b",
            "REGISTRY_ALIASES": "local=http://127.0.0.1:5001",
            "UPSTREAM_ALLOW": "local/team/*",
        }
    )
    assert settings.upstream_allow == ("local/team/*",)


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


def settings(**env: str) -> Settings:
    return Settings.from_env({"ARTIFACT_BUCKET": "b", **env})


def refusal(**env: str) -> str:
    with pytest.raises(ValueError) as caught:
        settings(**env)
    return str(caught.value)


def test_every_other_default():
    defaults = settings()
    assert defaults.bucket == "b" and defaults.cache_retention_days == 30
    assert defaults.token_max_ttl_seconds == 30 * 86400
    assert defaults.ecr_logins is False and defaults.registry_auth == "none"
    assert defaults.public_hostname is None and defaults.upstream_allow is None
    assert not defaults.signing
    for name in (
        "upstream_credentials_secret",
        "upstream_credentials_file",
        "registry_auth_secret",
        "registry_auth_file",
        "signing_kms_key_id",
        "signing_key_file",
        "wrapper_policy_secret",
        "wrapper_policy_file",
    ):
        assert getattr(defaults, name) is None, name
    assert defaults == settings(**dict.fromkeys(("PRESIGN_TTL_SECONDS", "LOG_LEVEL"), "  "))


def test_every_other_variable_is_read_trimmed():
    read = settings(
        ARTIFACT_BUCKET=" bucket ",
        UPSTREAM_CREDENTIALS_SECRET=" upstreams ",
        UPSTREAM_CREDENTIALS_FILE="/c.json",
        ECR_LOGINS=" On ",
        REGISTRY_AUTH="BASIC",
        REGISTRY_AUTH_SECRET="users",
        REGISTRY_AUTH_FILE="/htpasswd",
        PUBLIC_HOSTNAME="pull.example.com:8443",
        TOKEN_MAX_TTL_SECONDS="3600",
        SIGNING_KMS_KEY_ID="alias/ociwrap",
        WRAPPER_POLICY_SECRET="policy",
        WRAPPER_POLICY_FILE="/policy.json",
        UPSTREAM_ALLOW="ghcr.io/acme/*",
        CACHE_RETENTION_DAYS="7",
    )
    assert read.bucket == "bucket"
    assert (read.upstream_credentials_secret, read.upstream_credentials_file) == (
        "upstreams",
        "/c.json",
    )
    assert read.ecr_logins is True and read.registry_auth == "basic"
    assert (read.registry_auth_secret, read.registry_auth_file) == ("users", "/htpasswd")
    assert read.public_hostname == "pull.example.com:8443"
    assert read.token_max_ttl_seconds == 3600 and read.cache_retention_days == 7
    assert read.signing_kms_key_id == "alias/ociwrap" and read.signing
    assert (read.wrapper_policy_secret, read.wrapper_policy_file) == ("policy", "/policy.json")
    assert read.upstream_allow == ("ghcr.io/acme/*",)
    assert read.hop_name == "pull.example.com:8443"
    assert settings(SIGNING_KEY_FILE="/k.pem", PUBLIC_HOSTNAME="h.example").signing
    assert settings(ECR_LOGINS="off").ecr_logins is False


def test_without_a_public_host_the_hop_name_is_a_pseudonym_of_the_bucket():
    assert settings().hop_name == "ociwrap-" + hashlib.sha256(b"b").hexdigest()[:12]


def test_limits_are_read_exactly_at_them():
    assert settings(REQUEST_TIMEOUT_SECONDS="28").request_timeout_seconds == 28
    assert settings(REQUEST_TIMEOUT_SECONDS="1").request_timeout_seconds == 1
    assert settings(MIRROR_MAX_BYTES=str(5 * 1024**3)).mirror_max_bytes == 5 * 1024**3
    assert settings(TOKEN_MAX_TTL_SECONDS="60").token_max_ttl_seconds == 60
    assert settings(TOKEN_MAX_TTL_SECONDS="2592000").token_max_ttl_seconds == 2592000
    assert settings(TAG_TTL_SECONDS="1").tag_ttl_seconds == 1


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"TOKEN_MAX_TTL_SECONDS": "59"}, "TOKEN_MAX_TTL_SECONDS must be at least 60, got 59"),
        (
            {"TOKEN_MAX_TTL_SECONDS": "2592001"},
            "TOKEN_MAX_TTL_SECONDS must be at most 2592000, got 2592001",
        ),
        ({"REQUEST_TIMEOUT_SECONDS": "29"}, "REQUEST_TIMEOUT_SECONDS must be at most 28, got 29"),
        ({"TAG_TTL_SECONDS": "0"}, "TAG_TTL_SECONDS must be at least 1, got 0"),
        (
            {"PRESIGN_TTL_SECONDS": "soon"},
            "PRESIGN_TTL_SECONDS must be a whole number of seconds, got 'soon'",
        ),
        (
            {"MIRROR_MAX_BYTES": "1e9"},
            "MIRROR_MAX_BYTES must be a whole number of bytes, got '1e9'",
        ),
        ({"ECR_LOGINS": "yes"}, "ECR_LOGINS must be one of off, on, got 'yes'"),
        ({"REGISTRY_AUTH": "oidc"}, "REGISTRY_AUTH must be one of none, basic, got 'oidc'"),
        (
            {"PUBLIC_HOSTNAME": "https://pull.example.com"},
            "PUBLIC_HOSTNAME must be a host name such as registry.example.com, "
            "got 'https://pull.example.com'",
        ),
        (
            {"SIGNING_KMS_KEY_ID": "k", "SIGNING_KEY_FILE": "/k", "PUBLIC_HOSTNAME": "h"},
            "set SIGNING_KMS_KEY_ID or SIGNING_KEY_FILE, not both",
        ),
        (
            {"SIGNING_KEY_FILE": "/k.pem"},
            "signing needs PUBLIC_HOSTNAME, the host clients pull from",
        ),
        (
            {
                "REGISTRY_ALIASES": "me=https://pull.example.com",
                "PUBLIC_HOSTNAME": "pull.example.com",
            },
            "REGISTRY_ALIASES entry me=https://pull.example.com points at PUBLIC_HOSTNAME "
            "(pull.example.com): ociwrap would fetch from itself",
        ),
        (
            {"CACHE_RETENTION_DAYS": "1", "STALE_IF_ERROR_SECONDS": "86101"},
            "CACHE_RETENTION_DAYS=1 must cover TAG_TTL_SECONDS + STALE_IF_ERROR_SECONDS "
            "(86401 seconds): the bucket would remove tag records that stale-if-error may "
            "still serve",
        ),
    ],
)
def test_wrong_settings_are_refused_naming_them(env, message):
    assert refusal(**env) == message


def test_a_retention_of_exactly_the_stale_window_is_enough():
    exact = settings(CACHE_RETENTION_DAYS="1", STALE_IF_ERROR_SECONDS="86100")
    assert exact.stale_if_error_seconds == 86100


def test_host_names_for_public_hostname():
    for host in ("a", "pull.example.com", "a" + "b" * 251 + "c", "h.example:65535", "10.0.0.1"):
        assert settings(PUBLIC_HOSTNAME=host).public_hostname == host
    for host in ("-a", "a-", "a" + "b" * 252 + "c", "h:123456", "h/path", "UPPER.example"):
        assert "PUBLIC_HOSTNAME must be a host name" in refusal(PUBLIC_HOSTNAME=host)


def test_an_alias_on_another_port_of_the_public_host_is_fine():
    read = settings(
        REGISTRY_ALIASES="me=https://pull.example.com:5000", PUBLIC_HOSTNAME="pull.example.com"
    )
    assert read.aliases == {"me": "https://pull.example.com:5000"}


def test_aliases_skip_empty_entries_and_keep_both_schemes():
    assert parse_aliases(" , a = http://h:1// ,, B=https://x ,") == {
        "a": "http://h:1",
        "b": "https://x",
    }
    with pytest.raises(ValueError) as caught:
        parse_aliases("ok=http://h, broken")
    assert str(caught.value) == (
        "REGISTRY_ALIASES entry 'broken' must look like name=http(s)://host[:port]"
    )
    with pytest.raises(ValueError, match="REGISTRY_ALIASES entry 'x='"):
        parse_aliases("x=")


def test_every_host_name_character_is_read():
    for host in ("9my-host9.example", "h:1", "a.b:12345"):
        assert settings(PUBLIC_HOSTNAME=host).public_hostname == host
    for host in ("h:", "h.example:", "a_b.example", "h:1:2"):
        assert "PUBLIC_HOSTNAME must be a host name" in refusal(PUBLIC_HOSTNAME=host)


def test_a_two_character_host_name_is_read():
    assert settings(PUBLIC_HOSTNAME="ab").public_hostname == "ab"
    assert settings(PUBLIC_HOSTNAME="ab:443").public_hostname == "ab:443"


def test_an_alias_url_may_hold_an_equals_sign():
    assert parse_aliases("mirror=https://r.example/v2=x/") == {"mirror": "https://r.example/v2=x"}


def test_only_trailing_slashes_are_dropped_from_an_alias_url():
    assert parse_aliases("box=https://REGISTRY.BOX/") == {"box": "https://REGISTRY.BOX"}
