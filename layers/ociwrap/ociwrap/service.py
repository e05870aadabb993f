"""The registry as the handler sees it: names in, replies out.

Dispatches each request to the pull-through proxy or to wrapped-image
composition, and builds both from environment settings so the local gateway,
the Lambda and tests wire things the same way.
"""

from __future__ import annotations

from ociwrap.config import Settings
from ociwrap.errors import RegistryError
from ociwrap.proxy import ProxyService
from ociwrap.reference import check_digest, check_reference, parse_wrap_name, resolve_repository
from ociwrap.replies import Reply
from ociwrap.store import Store, make_s3_client
from ociwrap.upstream import Upstream
from ociwrap.wrap import WrapService


class RegistryService:
    """Pull requests for any repository name, proxied or wrapped."""

    def __init__(self, settings: Settings, store: Store, upstream: Upstream) -> None:
        self.aliases = settings.aliases
        self.proxy = ProxyService(store, upstream, settings.presign_ttl_seconds)
        self.wraps = WrapService(store, self.proxy, settings.tag_ttl_seconds)

    def manifest(self, name: str, ref: str, accept: list[str], head: bool) -> Reply:
        check_reference(ref)
        wrap = parse_wrap_name(name, self.aliases)
        if wrap is not None:
            return self.wraps.manifest(wrap, ref, head)
        return self.proxy.manifest(resolve_repository(name, self.aliases), ref, accept, head)

    def blob(self, name: str, digest: str, head: bool) -> Reply:
        check_digest(digest)
        wrap = parse_wrap_name(name, self.aliases)
        if wrap is not None:
            return self.wraps.blob(wrap, digest, head)
        return self.proxy.blob(resolve_repository(name, self.aliases), digest, head)

    def tags(self, name: str, n: str | None, last: str | None) -> Reply:
        wrap = parse_wrap_name(name, self.aliases)
        if wrap is not None:
            return self.wraps.tags(wrap)
        return self.proxy.tags(name, resolve_repository(name, self.aliases), n, last)


def build_service(settings: Settings | None = None) -> RegistryService:
    """The service for this deployment; a misconfiguration is a clear 503, not a crash."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except ValueError as exc:
            raise RegistryError(
                "UNAVAILABLE", f"registry misconfigured: {exc}", status=503
            ) from exc
    s3 = make_s3_client(settings.s3_endpoint_url)
    return RegistryService(settings, Store(s3, settings.bucket), Upstream())
