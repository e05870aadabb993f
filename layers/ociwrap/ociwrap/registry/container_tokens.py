"""Container tokens: wrap requests too rich for a path, kept in S3 under a short name.

`POST /v1alpha/tokens` stores a validated request under a random id (128 bits,
lowercase base32, so it can be part of a repository name) with its expiry;
`<host>/wt/<id>/<base repository>:<tag>` then names the image it describes.
Tokens live in `tokens/<id>.json` (the bucket's lifecycle rule removes them after
30 days); a revoked token is overwritten with a tombstone. Lookups are cached for
a few seconds per instance, so a revocation reaches every warm instance within
`CACHE_SECONDS`. A token names only images this registry may pull (UPSTREAM_ALLOW):
checked when it is made, and again at each pull, for the setting may have changed.
"""

from __future__ import annotations

import base64
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.records import token_key
from ociwrap.image.recipes import Recipe
from ociwrap.names.reference import token_image_name
from ociwrap.registry.admission import Admission
from ociwrap.registry.token_requests import (
    TokenRequest,
    parse_token_body,
    parse_token_request,
    token_recipe,
)
from ociwrap.runtime import errors
from ociwrap.runtime.memcache import BoundedCache

CACHE_SECONDS = 5
_TOKEN = re.compile(r"[a-z2-7]{26}")


def new_token() -> str:
    """128 random bits as 26 lowercase base32 characters."""
    return base64.b32encode(secrets.token_bytes(16)).decode().rstrip("=").lower()


@dataclass(frozen=True)
class Token:
    token: str
    request: TokenRequest
    expires: float


class ContainerTokens:
    """Creates, reads and revokes container tokens."""

    def __init__(
        self,
        store: Bucket,
        aliases: dict[str, str],
        max_ttl_seconds: int,
        admission: Admission,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.aliases = aliases
        self.admission = admission  # a token names only images this registry may pull
        self.max_ttl_seconds = max_ttl_seconds
        self.clock = clock
        self._hot = BoundedCache(max_entries=1024, clock=clock)

    def create(self, body: bytes) -> Token:
        """A new token for the request `body` (JSON as the client sent it)."""
        request = parse_token_body(body, self.aliases, self.max_ttl_seconds)
        self.admission.images(request.base, request.wrappers)
        token = new_token()
        expires = self.clock() + request.ttl_seconds
        self.store.put_json(token_key(token), {"request": request.document, "expires": expires})
        created = Token(token, request, expires)
        self._hot.put(token, created, ttl=CACHE_SECONDS)
        return created

    def get(self, token: str) -> Token:
        """The token, or `404 NAME_UNKNOWN` saying it is unknown, expired or revoked."""
        if not _TOKEN.fullmatch(token):
            raise errors.name_unknown(f"unknown container token {token[:40]!r}")
        found = self._hot.get(token)
        if found is None:
            found = self._load(token)
            self._hot.put(token, found, ttl=CACHE_SECONDS)
        if isinstance(found, str):
            raise errors.name_unknown(found, detail={"token": token})
        if found.expires <= self.clock():
            raise errors.name_unknown(f"container token {token} has expired", {"token": token})
        return found

    def _load(self, token: str) -> Token | str:
        record = self.store.get_json(token_key(token))
        if not isinstance(record, dict):
            return f"unknown container token {token}"
        if record.get("revoked"):
            return f"container token {token} was revoked"
        try:
            request = parse_token_request(
                record["request"], self.aliases, max(record["request"]["ttlSeconds"], 1)
            )
            return Token(token, request, float(record["expires"]))
        except (KeyError, TypeError, ValueError, errors.RegistryError):
            return f"container token {token} can no longer be read"

    def revoke(self, token: str) -> None:
        found = self.get(token)
        self.store.put_json(token_key(token), {"revoked": True, "expires": found.expires})
        self._hot.put(token, f"container token {token} was revoked", ttl=CACHE_SECONDS)

    def recipe(self, token: str, name: str) -> Recipe:
        """The recipe of `wt/<token>/<name>`; 404 when `name` is not the token's image."""
        found = self.get(token)
        recipe = token_recipe(token, found.request)
        if recipe.name != token_image_name(token, name):
            raise errors.name_unknown(
                f"container token {token} is for {found.request.repository}, not {name}",
                detail={"token": token},
            )
        return recipe
