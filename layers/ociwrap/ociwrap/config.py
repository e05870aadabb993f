"""Settings read from environment variables: the same names locally and in Lambda."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from ociwrap.errors import RegistryError


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


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number of seconds, got {raw!r}") from exc
    if value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    return value


@dataclass(frozen=True)
class Settings:
    """Everything the registry needs to know about its deployment."""

    bucket: str
    aliases: dict[str, str] = field(default_factory=dict)
    presign_ttl_seconds: int = 3600
    tag_ttl_seconds: int = 300
    s3_endpoint_url: str | None = None
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        bucket = env.get("ARTIFACT_BUCKET", "").strip()
        if not bucket:
            raise RegistryError(
                "UNAVAILABLE", "ARTIFACT_BUCKET is not set: the registry has no bucket", status=503
            )
        return cls(
            bucket=bucket,
            aliases=parse_aliases(env.get("REGISTRY_ALIASES", "")),
            presign_ttl_seconds=_int(env, "PRESIGN_TTL_SECONDS", 3600),
            tag_ttl_seconds=_int(env, "TAG_TTL_SECONDS", 300),
            s3_endpoint_url=env.get("S3_ENDPOINT_URL", "").strip() or None,
            log_level=env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO",
        )
