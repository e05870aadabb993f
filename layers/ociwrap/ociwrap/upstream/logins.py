"""The logins in effect for upstream registries: configured ones, and ECR's from the role.

Configured logins come from `UPSTREAM_CREDENTIALS_SECRET` (Lambda) or
`UPSTREAM_CREDENTIALS_FILE` (locally), in Docker's `config.json` format; an
upstream with a login is private, and what is fetched from it is served only
under its own name (see `links`).
"""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from ociwrap.names.reference import Registry
from ociwrap.runtime.secrets import ParsedDocument, SecretDocument
from ociwrap.upstream.credentials import Credential, CredentialsError, find, parse_auths
from ociwrap.upstream.ecr import EcrLogins, ecr_registry


class UpstreamLogins:
    """Looks up the login for an upstream registry (None for anonymous ones)."""

    def __init__(self, document: SecretDocument, ecr: EcrLogins | None) -> None:
        self.ecr = ecr
        self.parsed = ParsedDocument(document, _parse_auths, "usable")

    def _auths(self) -> dict[str, Credential]:
        auths = self.parsed.value()
        return {} if auths is None else auths

    def private(self, registry: Registry) -> bool:
        """Is anything fetched from this registry fetched with a login?"""
        host = urlsplit(registry.url).hostname or ""
        return find(self._auths(), registry) is not None or (
            self.ecr is not None and ecr_registry(host) is not None
        )

    def for_registry(self, registry: Registry) -> Credential | None:
        found = find(self._auths(), registry)
        if found is None and self.ecr is not None:
            found = self.ecr.for_host(urlsplit(registry.url).hostname or "")
        return found

    def rejected(self, registry: Registry) -> None:
        """The registry refused the login we sent: an ECR login is renewed next time."""
        if self.ecr is not None:
            self.ecr.forget(urlsplit(registry.url).hostname or "")


def _parse_auths(text: str) -> dict[str, Credential]:
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise CredentialsError("not JSON") from exc
    return parse_auths(document)
