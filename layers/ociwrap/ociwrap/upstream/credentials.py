"""Upstream credentials in Docker's `config.json` format, and which registry they are for.

Operators paste what `docker login` wrote: `{"auths": {"<registry>": {...}}}`,
each entry with `auth` (base64 of `user:password`), or `username` and
`password`, or an `identitytoken` (an OAuth2 refresh token). Registries are
keyed as docker writes them (`ghcr.io`, `host:port`, `https://index.docker.io/v1/`
or `docker.io` for Docker Hub) or by an alias name. Pure parsing: the document
comes from a secret or a file (`secrets`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from ociwrap.names.reference import DOCKER_HUB, Registry

#: Docker Hub's keys, normalised: `docker login` files it under `https://index.docker.io/v1/`.
_DOCKER_HUB_KEYS = ("index.docker.io", "docker.io", "registry-1.docker.io")


class CredentialsError(ValueError):
    """The credentials document is not usable; says why (never with a secret in it)."""


@dataclass(frozen=True)
class Credential:
    """A login for one registry: user and password, or an identity (refresh) token."""

    username: str = ""
    password: str = field(default="", repr=False)
    identity_token: str = field(default="", repr=False)

    @property
    def fingerprint(self) -> str:
        """Tells logins apart (token caches are per login) without revealing them."""
        secret = f"{self.username}\0{self.password}\0{self.identity_token}"
        return hashlib.sha256(secret.encode()).hexdigest()[:16]

    def basic(self) -> str:
        """The `Authorization` value of HTTP Basic auth with this login."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def _normalise(key: str) -> str:
    """`https://ghcr.io/v2/` and `ghcr.io` name the same registry."""
    key = key.strip().lower()
    if "://" in key:
        key = urlsplit(key).netloc
    return key.rstrip("/")


def _credential(name: str, entry: Any) -> Credential:
    if not isinstance(entry, dict):
        raise CredentialsError(f"the entry for {name!r} is not an object")
    token = entry.get("identitytoken") or ""
    username, password = entry.get("username") or "", entry.get("password") or ""
    encoded = entry.get("auth")
    if encoded:
        try:
            username, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError, TypeError) as exc:
            raise CredentialsError(
                f"the 'auth' of {name!r} is not base64 of user:password"
            ) from exc
    if not all(isinstance(value, str) for value in (token, username, password)):
        raise CredentialsError(f"the entry for {name!r} has values that are not strings")
    if not token and not (username and password):
        raise CredentialsError(f"the entry for {name!r} has no auth, username/password or token")
    return Credential(username=username, password=password, identity_token=token)


def parse_auths(document: Any) -> dict[str, Credential]:
    """{normalised registry key: Credential} from a `config.json`-shaped document."""
    if not isinstance(document, dict) or not isinstance(document.get("auths"), dict):
        raise CredentialsError('expected {"auths": {"<registry>": {...}}}, as docker writes it')
    return {_normalise(name): _credential(name, entry) for name, entry in document["auths"].items()}


def keys_for(registry: Registry) -> list[str]:
    """The keys a login for `registry` may be filed under, most specific first."""
    host = _normalise(registry.url)
    if registry.trusted:
        return [registry.name, host]
    if registry.name == DOCKER_HUB:
        return list(_DOCKER_HUB_KEYS)
    return [host]


def find(auths: dict[str, Credential], registry: Registry) -> Credential | None:
    for key in keys_for(registry):
        if key in auths:
            return auths[key]
    return None
