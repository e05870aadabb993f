"""The transport to upstream registries: sessions, guard, deadline, retries, Bearer auth.

It knows HTTP and the token flow of the distribution spec, nothing of manifests
or S3. Every request goes through the session of its registry's address policy
(path-named hosts must be public; aliases may be private but never link-local),
draws its time from the request's deadline, and comes back as a response or as
a RegistryError that names the upstream: 403 for a refused address, 504 for
time, 502 for everything else. 502/503/504 answers to GET and HEAD are retried
with backoff while the deadline leaves room; a refused address never is, and
neither is anything for a request that came through another ociwrap registry
(its first hop retries). Every request carries this deployment's `Via` entry
(see `hops`); an answer that carries it back is a request loop, `403 DENIED`.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import requests
import urllib3

from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import deadline, errors, hops, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.challenge import choose
from ociwrap.upstream.credentials import Credential
from ociwrap.upstream.guard import AddressRefused, Policy
from ociwrap.upstream.session import MAX_REDIRECTS, MIN_RETRY_SECONDS, UpstreamSession
from ociwrap.upstream.tokens import Tokens

RETRY_STATUSES = frozenset({502, 503, 504})
STATUS_ATTEMPTS = 3
BACKOFF_SECONDS = 0.2
USER_AGENT = "ociwrap"


def policy_of(registry: Registry) -> Policy:
    return Policy.NOT_LINK_LOCAL if registry.trusted else Policy.PUBLIC


def _timed_out(exc: BaseException) -> bool:
    """A time-out, possibly wrapped by requests in a ConnectionError around urllib3's error."""
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 10:
        if isinstance(current, urllib3.exceptions.NewConnectionError):
            return False  # a refused connection (urllib3 files it under connect time-outs)
        if isinstance(current, requests.Timeout | TimeoutError | urllib3.exceptions.TimeoutError):
            return True
        reason = getattr(current, "reason", None)
        nested = current.args[0] if current.args else None
        current = (
            reason
            if isinstance(reason, BaseException)
            else nested
            if isinstance(nested, BaseException)
            else current.__cause__
        )
        seen += 1
    return False


def transport_error(exc: BaseException, who: str) -> RegistryError:
    """What a client is told when a request to `who` failed before an answer came."""
    if isinstance(exc, AddressRefused):
        if exc.policy is Policy.PUBLIC:
            why = "not a public address; name private registries in REGISTRY_ALIASES"
        else:
            why = "link-local and metadata addresses are never contacted"
        return errors.denied(
            f"refusing to contact {exc.host} ({exc.address}) for {who}: {why}",
            detail={"host": exc.host},
        )
    if _timed_out(exc):
        current = deadline.current()
        if current is not None and current.expired():
            return errors.deadline_exceeded(who, current.budget)
        return errors.upstream_unavailable(f"{who} timed out", timeout=True)
    if isinstance(exc, requests.TooManyRedirects):
        return errors.upstream_unavailable(f"{who} redirected more than {MAX_REDIRECTS} times")
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidHeader
        | ValueError,
    ):
        return errors.upstream_unavailable(f"{who} sent an invalid redirect or URL")
    return errors.upstream_unavailable(f"cannot reach {who}: {type(exc).__name__}")


class Logins(Protocol):
    """Where the transport gets upstream logins (see `ociwrap.upstream.logins`)."""

    def for_registry(self, registry: Registry) -> Credential | None: ...

    def rejected(self, registry: Registry) -> None: ...


class Transport:
    """Sends requests to upstream registries on behalf of the fetcher."""

    def __init__(
        self, logins: Logins | None = None, ca_bundle: str | None = None, hop: str = "ociwrap"
    ) -> None:
        self._sessions = {policy: UpstreamSession(policy, ca_bundle) for policy in Policy}
        self.hop = hop  # this deployment's name in `Via`
        self.tokens = Tokens()
        self.logins = logins
        self._basic: set[str] = set()  # registries that asked for Basic auth

    def send(
        self,
        registry: Registry,
        method: str,
        url: str,
        *,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
        allow_redirects: bool = False,
        what: str = "",
    ) -> requests.Response:
        """One request (redirects followed if asked), its body left unread for the caller."""
        who = (
            f"{what} of upstream registry {registry.name}"
            if what
            else (f"upstream registry {registry.name}")
        )
        session = self._sessions[policy_of(registry)]
        headers = {"User-Agent": USER_AGENT, **(headers or {}), "Via": hops.via(self.hop)}
        attempts = 1 if hops.forwarded() else STATUS_ATTEMPTS
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                response = session.request(
                    method,
                    url,
                    headers=headers,
                    params=params,
                    data=data,
                    allow_redirects=allow_redirects,
                    stream=True,
                )
            except (
                AddressRefused,
                requests.RequestException,
                urllib3.exceptions.HTTPError,
                OSError,
                ValueError,
            ) as exc:
                telemetry.upstream_call(registry.name, started, failed=True)
                raise transport_error(exc, who) from exc
            telemetry.upstream_call(registry.name, started, failed=response.status_code >= 500)
            if hops.came_back(response.headers.get("Via", ""), self.hop):
                response.close()
                raise errors.denied(
                    f"request loop: {who} is this registry itself; a registry alias or an "
                    "image name points ociwrap at itself",
                    detail={"registry": registry.name},
                )
            backoff = BACKOFF_SECONDS * 2 ** (attempt - 1)
            if (
                response.status_code in RETRY_STATUSES
                and method in ("GET", "HEAD")
                and attempt < attempts
                and deadline.timeout(float("inf")) > backoff + MIN_RETRY_SECONDS
            ):
                response.close()
                time.sleep(backoff)
                continue
            return response

    def request(
        self,
        repo: Repository,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        """Request `path` under the repository's `/v2/<name>/`, authenticating on a 401.

        The Bearer token a repository used last (or, for a registry that wants Basic,
        its login) is sent straight away. After a 401, once: a rejected token is
        forgotten and a new one fetched from the realm the upstream names (with the
        registry's login, if it has one), or the login is sent (renewed first, for
        ECR, if it was the one rejected). A second 401 goes back to the caller.
        """
        registry = repo.registry
        url = f"{registry.url}/v2/{repo.path}/{path}"
        headers = dict(headers or {})
        login = self.logins.for_registry(registry) if self.logins is not None else None
        identity = login.fingerprint if login is not None else ""
        token = self.tokens.for_repository(repo, identity)
        if token:
            headers["Authorization"] = f"Bearer {token}"
        elif login is not None and registry.url in self._basic:
            headers["Authorization"] = login.basic()
        response = self.send(registry, method, url, headers=headers, **kwargs)
        if response.status_code != 401:
            return response
        challenge = choose(response.raw.headers.getlist("WWW-Authenticate"))
        if challenge is not None and challenge.scheme == "bearer":
            if token:
                self.tokens.forget(repo, identity)
            response.close()
            token = self.tokens.fetch(repo, challenge, self.send, login, self._rejected)
            headers["Authorization"] = f"Bearer {token}"
        elif challenge is not None and login is not None:  # Basic
            if headers.get("Authorization", "").startswith("Basic "):
                self._rejected(registry)
                login = self.logins.for_registry(registry) if self.logins is not None else None
                if login is None:
                    return response
            response.close()
            self._basic.add(registry.url)
            headers["Authorization"] = login.basic()
        else:
            return response
        return self.send(registry, method, url, headers=headers, **kwargs)

    def _rejected(self, registry: Registry) -> None:
        if self.logins is not None:
            self.logins.rejected(registry)
