"""Logins for Amazon ECR from the function's own role: no stored secret.

For `<account>.dkr.ecr.<region>.amazonaws.com` upstreams, `ecr:GetAuthorizationToken`
gives a Basic login (`AWS` and a password) valid for twelve hours. It is kept
until shortly before it expires and dropped at once when the registry rejects
it, so the next request gets a fresh one.
"""

from __future__ import annotations

import base64
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ociwrap.runtime import errors
from ociwrap.upstream.credentials import Credential

_ECR_HOST = re.compile(
    r"([0-9]{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]{1,30})\.amazonaws\.com(?:\.cn)?"
)
#: Logins are renewed this long before ECR says they expire.
MARGIN_SECONDS = 300


def ecr_registry(host: str) -> tuple[str, str] | None:
    """(account, region) of an ECR registry host, else None."""
    match = _ECR_HOST.fullmatch(host.lower())
    return (match[1], match[2]) if match else None


class EcrLogins:
    """ECR logins by registry host, fetched with the function's role and cached."""

    def __init__(
        self,
        make_client: Callable[[str], Any],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._make_client = make_client
        self._clock = clock
        self._clients: dict[str, Any] = {}
        self._logins: dict[str, tuple[Credential, float]] = {}
        self._lock = threading.Lock()

    def for_host(self, host: str) -> Credential | None:
        found = ecr_registry(host)
        if found is None:
            return None
        with self._lock:
            cached = self._logins.get(host)
            if cached and cached[1] > self._clock():
                return cached[0]
            login, expires = self._fetch(*found)
            self._logins[host] = (login, expires - MARGIN_SECONDS)
            return login

    def forget(self, host: str) -> None:
        """The registry rejected the login: fetch a new one next time."""
        with self._lock:
            self._logins.pop(host, None)

    def _fetch(self, account: str, region: str) -> tuple[Credential, float]:
        client = self._clients.get(region)
        if client is None:
            client = self._clients[region] = self._make_client(region)
        try:
            data = client.get_authorization_token(registryIds=[account])["authorizationData"][0]
            username, _, password = (
                base64.b64decode(data["authorizationToken"]).decode().partition(":")
            )
            expires = data["expiresAt"].timestamp()
        except (BotoCoreError, ClientError, KeyError, IndexError, ValueError) as exc:
            code = getattr(exc, "response", {}).get("Error", {}).get("Code") or type(exc).__name__
            raise errors.storage_unavailable(
                f"Amazon ECR gave no login for account {account} in {region} ({code}); the "
                "function's role needs ecr:GetAuthorizationToken (template parameter "
                "EcrRepositoryArns)"
            ) from exc
        return Credential(username=username, password=password), expires
