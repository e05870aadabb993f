"""Bearer tokens for upstreams (the Docker Hub flow), fetched from the named realm.

Tokens are kept, per realm/service/scope, until shortly before they expire, and
a repository remembers which token to try first, so warm requests skip the 401
round trip. A token an upstream rejects is forgotten at once. Token responses
are untrusted like any upstream body: bounded, parsed with bounded depth, the
token checked to be header-safe, its lifetime clamped to sane values.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import errors
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.upstream.bodies import read_body
from ociwrap.upstream.challenge import Challenge
from ociwrap.upstream.credentials import Credential

MAX_TOKEN_RESPONSE_BYTES = 64 * 1024
DEFAULT_LIFETIME = 60.0
MAX_LIFETIME = 24 * 3600.0
#: Tokens are dropped this long before the upstream says they expire.
MARGIN_SECONDS = 10.0
#: Visible ASCII only: the token goes into our `Authorization` header.
_TOKEN = re.compile(r"[\x21-\x7e]{1,16384}")

Send = Callable[..., requests.Response]


def lifetime(value: Any) -> float:
    """`expires_in` as seconds: a finite positive number, else the default; capped at a day."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return DEFAULT_LIFETIME
    if not math.isfinite(value) or value <= 0:
        return DEFAULT_LIFETIME
    return min(float(value), MAX_LIFETIME)


def token_from(document: Any, registry: str) -> tuple[str, float]:
    """The token and its lifetime from a token response document."""
    token = None
    if isinstance(document, dict):
        token = document.get("token") or document.get("access_token")
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise errors.upstream_unavailable(
            f"token service of upstream registry {registry} sent no usable token",
            detail={"registry": registry},
        )
    return token, lifetime(document.get("expires_in"))


class Tokens:
    """Bearer tokens by realm, service and scope, and the one each repository last used."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._tokens = BoundedCache(max_entries=1024, clock=clock)
        self._by_repository = BoundedCache(max_entries=1024)

    def for_repository(self, repo: Repository, identity: str = "") -> str | None:
        key = self._by_repository.get(f"{repo}|{identity}")
        return self._tokens.get(key) if key else None

    def forget(self, repo: Repository, identity: str = "") -> None:
        """The upstream rejected this repository's token: never send it again."""
        key = self._by_repository.get(f"{repo}|{identity}")
        if key:
            self._tokens.discard(key)
            self._by_repository.discard(f"{repo}|{identity}")

    def fetch(
        self,
        repo: Repository,
        challenge: Challenge,
        send: Send,
        login: Credential | None = None,
        rejected: Callable[[Registry], None] = lambda _registry: None,
    ) -> str:
        """A token for the challenge: cached, or from the realm through `send` (guarded).

        With a login, the realm must be HTTPS (unless the upstream is an alias, which
        the operator named); the login goes there and nowhere else: a password as Basic
        auth, an identity token as an OAuth2 refresh-token grant.
        """
        params = challenge.params
        realm = params["realm"]
        registry = repo.registry.name
        scheme = urlsplit(realm).scheme
        if scheme not in ("http", "https"):
            raise errors.upstream_unavailable(
                f"upstream registry {registry} named an invalid token realm",
                detail={"registry": registry},
            )
        if login is not None and scheme != "https" and not repo.registry.trusted:
            raise errors.upstream_unavailable(
                f"upstream registry {registry} named a token realm that is not HTTPS; "
                "its login is not sent there",
                detail={"registry": registry},
            )
        scope = params.get("scope") or f"repository:{repo.path}:pull"
        identity = login.fingerprint if login is not None else ""
        key = f"{realm}|{params.get('service', '')}|{scope}|{identity}"
        token = self._tokens.get(key)
        if token is None:
            response = ask_realm(repo.registry, realm, params, scope, login, send)
            if response.status_code in (401, 403):
                response.close()
                if login is None:
                    raise wants_login(repo, response.status_code)
                rejected(repo.registry)
                raise refused_login(registry, response.status_code)
            if response.status_code != 200:
                response.close()
                raise errors.upstream_unavailable(
                    f"token service of upstream registry {registry} answered "
                    f"{response.status_code}",
                    detail={"registry": registry, "status": response.status_code},
                )
            body = read_body(response, MAX_TOKEN_RESPONSE_BYTES, "token response", registry)
            try:
                document = parse_json(body, lenient=True)
            except DocumentError as exc:
                raise errors.upstream_unavailable(
                    f"token service of upstream registry {registry} sent a response that is {exc}",
                    detail={"registry": registry},
                ) from exc
            token, seconds = token_from(document, registry)
            self._tokens.put(key, token, ttl=max(seconds - MARGIN_SECONDS, 1.0))
        self._by_repository.put(f"{repo}|{identity}", key)
        return token


def wants_login(repo: Repository, status: int) -> errors.RegistryError:
    """The upstream refused an anonymous request: the repository is private or missing."""
    return errors.RegistryError(
        "UNAUTHORIZED" if status == 401 else "DENIED",
        f"upstream registry {repo.registry.name} refused access to {repo.path}: the "
        "repository does not exist, or it needs a login in UPSTREAM_CREDENTIALS_SECRET or "
        "UPSTREAM_CREDENTIALS_FILE",
        detail={"repository": str(repo), "status": status},
        status=status,
    )


def refused_login(registry: str, status: int) -> errors.RegistryError:
    """The upstream (or its token service) refused our login: say which setting to check."""
    code = "UNAUTHORIZED" if status == 401 else "DENIED"
    return errors.RegistryError(
        code,
        f"upstream registry {registry} refused the login configured for it; check "
        "UPSTREAM_CREDENTIALS_SECRET or UPSTREAM_CREDENTIALS_FILE",
        detail={"registry": registry, "status": status},
        status=status,
    )


def ask_realm(
    registry: Registry,
    realm: str,
    params: dict[str, str],
    scope: str,
    login: Credential | None,
    send: Send,
) -> requests.Response:
    """Ask the token realm: a refresh-token grant for an identity token, else a GET with
    the scope (and Basic login when there is one), as Docker clients ask it."""
    service = params.get("service", "")
    if login is not None and login.identity_token:
        form = {
            "grant_type": "refresh_token",
            "refresh_token": login.identity_token,
            "client_id": "ociwrap",
            "scope": scope,
        }
        if service:
            form["service"] = service
        return send(registry, "POST", realm, data=form, what="token service")
    query = {"scope": scope}
    if service:
        query["service"] = service
    headers = {"Authorization": login.basic()} if login is not None else None
    return send(
        registry,
        "GET",
        realm,
        params=query,
        headers=headers,
        allow_redirects=True,
        what="token service",
    )
