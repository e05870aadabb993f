"""Settings read from environment variables: the same names locally and in Lambda."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from ociwrap.bucket.retention import CACHE_RETENTION_DAYS, DAY_SECONDS
from ociwrap.names.allowlist import parse_upstream_allow
from ociwrap.runtime import hops
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.hops import alias_points_here


def parse_aliases(text: str) -> dict[str, str]:
    """Parse `REGISTRY_ALIASES` (`name=url,...`) into {alias: base URL without trailing slash}.

    Aliases are operator configuration, so a malformed entry is a start-up error,
    not something to guess around.
    """
    aliases: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        alias, sep, url = item.partition("=")
        alias, url = alias.strip().lower(), url.strip().rstrip("/")
        if not sep or not alias or not url.startswith(("http://", "https://")):
            raise ValueError(
                f"REGISTRY_ALIASES entry {item!r} must look like name=http(s)://host[:port]"
            )
        aliases[alias] = url
    return aliases


def _int(
    env: Mapping[str, str],
    name: str,
    default: int,
    minimum: int = 1,
    maximum: int | None = None,
    unit: str = "seconds",
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number of {unit}, got {raw!r}") from exc
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be at most {maximum}, got {value}")
    return value


def _text(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    value = env.get(name, "").strip().lower() or choices[0]
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _hostname(env: Mapping[str, str], name: str) -> str | None:
    """A host (and port) for image references: no scheme, no path."""
    value = _text(env, name)
    if value is not None and not _HOSTNAME.fullmatch(value):
        raise ValueError(f"{name} must be a host name such as registry.example.com, got {value!r}")
    return value


_HOSTNAME = re.compile(r"[a-z0-9](?:[a-z0-9.-]{0,251}[a-z0-9])?(?::[0-9]{1,5})?")
#: Container tokens live at most as long as the bucket keeps `tokens/` (30 days).
TOKEN_MAX_TTL_SECONDS = 30 * 86400
#: Under API Gateway's 30 s cut, with the Lambda's 29 s timeout and a second to answer.
REQUEST_TIMEOUT_SECONDS = 28
STALE_IF_ERROR_SECONDS = 86400
#: Days the bucket keeps what it can make again (its lifecycle rules, set by the template
#: from the same parameter); see `retention`.
MIRROR_MAX_BYTES = 1024**3
#: The most MIRROR_MAX_BYTES may be: a copy continued on another instance reads its staged
#: parts back within one request to rebuild their hash (see `staging`), which must fit.
MIRROR_LIMIT_BYTES = 5 * 1024**3


@dataclass(frozen=True)
class Settings:
    """Everything the registry needs to know about its deployment."""

    bucket: str
    aliases: dict[str, str] = field(default_factory=dict)
    presign_ttl_seconds: int = 3600
    tag_ttl_seconds: int = 300
    request_timeout_seconds: int = REQUEST_TIMEOUT_SECONDS
    stale_if_error_seconds: int = STALE_IF_ERROR_SECONDS
    cache_retention_days: int = CACHE_RETENTION_DAYS
    mirror_max_bytes: int = MIRROR_MAX_BYTES
    s3_endpoint_url: str | None = None
    log_level: str = "INFO"
    upstream_credentials_secret: str | None = None
    upstream_credentials_file: str | None = None
    ecr_logins: bool = False
    registry_auth: str = "none"
    registry_auth_secret: str | None = None
    registry_auth_file: str | None = None
    public_hostname: str | None = None
    token_max_ttl_seconds: int = TOKEN_MAX_TTL_SECONDS
    signing_kms_key_id: str | None = None
    signing_key_file: str | None = None
    wrapper_policy_secret: str | None = None
    wrapper_policy_file: str | None = None
    #: Patterns of the upstream repositories names may reach; None: any (see `allowlist`).
    upstream_allow: tuple[str, ...] | None = None

    @property
    def signing(self) -> bool:
        return bool(self.signing_kms_key_id or self.signing_key_file)

    @property
    def hop_name(self) -> str:
        """The name this deployment's `Via` entries carry (see `hops`)."""
        return hops.own_name(self.public_hostname, self.bucket)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings of this deployment, read from `env` (the process environment)."""
        return settings_from_env(os.environ if env is None else env)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Every setting read and checked, alone and against each other (a ValueError or a
    503 names the setting and why)."""
    bucket = env.get("ARTIFACT_BUCKET", "").strip()
    if not bucket:
        raise RegistryError(
            "UNAVAILABLE", "ARTIFACT_BUCKET is not set: the registry has no bucket", status=503
        )
    aliases = parse_aliases(env.get("REGISTRY_ALIASES", ""))
    settings = Settings(
        bucket=bucket,
        aliases=aliases,
        presign_ttl_seconds=_int(env, "PRESIGN_TTL_SECONDS", 3600),
        tag_ttl_seconds=_int(env, "TAG_TTL_SECONDS", 300),
        request_timeout_seconds=_int(
            env, "REQUEST_TIMEOUT_SECONDS", REQUEST_TIMEOUT_SECONDS, maximum=28
        ),
        stale_if_error_seconds=_int(
            env, "STALE_IF_ERROR_SECONDS", STALE_IF_ERROR_SECONDS, minimum=0
        ),
        mirror_max_bytes=_int(
            env, "MIRROR_MAX_BYTES", MIRROR_MAX_BYTES, maximum=MIRROR_LIMIT_BYTES, unit="bytes"
        ),
        cache_retention_days=_int(env, "CACHE_RETENTION_DAYS", CACHE_RETENTION_DAYS, unit="days"),
        s3_endpoint_url=env.get("S3_ENDPOINT_URL", "").strip() or None,
        log_level=env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        upstream_credentials_secret=_text(env, "UPSTREAM_CREDENTIALS_SECRET"),
        upstream_credentials_file=_text(env, "UPSTREAM_CREDENTIALS_FILE"),
        ecr_logins=_choice(env, "ECR_LOGINS", ("off", "on")) == "on",
        registry_auth=_choice(env, "REGISTRY_AUTH", ("none", "basic")),
        registry_auth_secret=_text(env, "REGISTRY_AUTH_SECRET"),
        registry_auth_file=_text(env, "REGISTRY_AUTH_FILE"),
        public_hostname=_hostname(env, "PUBLIC_HOSTNAME"),
        token_max_ttl_seconds=_int(
            env,
            "TOKEN_MAX_TTL_SECONDS",
            TOKEN_MAX_TTL_SECONDS,
            minimum=60,
            maximum=TOKEN_MAX_TTL_SECONDS,
        ),
        signing_kms_key_id=_text(env, "SIGNING_KMS_KEY_ID"),
        signing_key_file=_text(env, "SIGNING_KEY_FILE"),
        wrapper_policy_secret=_text(env, "WRAPPER_POLICY_SECRET"),
        wrapper_policy_file=_text(env, "WRAPPER_POLICY_FILE"),
        upstream_allow=parse_upstream_allow(env.get("UPSTREAM_ALLOW", ""), aliases),
    )
    for alias, url in aliases.items():
        if alias_points_here(url, settings.public_hostname):
            raise ValueError(
                f"REGISTRY_ALIASES entry {alias}={url} points at PUBLIC_HOSTNAME "
                f"({settings.public_hostname}): ociwrap would fetch from itself"
            )
    if settings.signing_kms_key_id and settings.signing_key_file:
        raise ValueError("set SIGNING_KMS_KEY_ID or SIGNING_KEY_FILE, not both")
    stale_window = settings.tag_ttl_seconds + settings.stale_if_error_seconds
    if settings.cache_retention_days * DAY_SECONDS < stale_window:
        # The lifecycle counts from a tag record's last write: it must not remove a
        # record that stale-if-error may still serve.
        raise ValueError(
            f"CACHE_RETENTION_DAYS={settings.cache_retention_days} must cover "
            f"TAG_TTL_SECONDS + STALE_IF_ERROR_SECONDS ({stale_window} seconds): the bucket "
            "would remove tag records that stale-if-error may still serve"
        )
    if settings.signing and not settings.public_hostname:
        # The signed identity is the name clients pull: never one taken from a request.
        raise ValueError("signing needs PUBLIC_HOSTNAME, the host clients pull from")
    return settings
