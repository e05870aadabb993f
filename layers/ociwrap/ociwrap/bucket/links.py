"""Which repositories a stored manifest or blob may be served under.

The bucket keeps each manifest and blob once, by digest; whether it may be
served under a repository name is recorded per repository, as distribution
links a repository to the blobs it has. A link is written only when that
upstream repository itself gave us the bytes, verified against the digest; a
claim (a HEAD's digest, a descriptor in someone else's manifest) never makes
one. Links of anonymous upstreams last; links of private upstreams (fetched
with a login) last TAG_TTL_SECONDS, after which the upstream is asked again, so
no name shows private content the upstream did not confirm for it recently.
Links are part of the bucket's cache (see `retention`): the lifecycle removes them
and what they point at, a missing link sends the request to the upstream again, and
a link never vouches that what it points at is still there.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.records import link_key
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime.memcache import BoundedCache, Namespace


@dataclass(frozen=True)
class Link:
    size: int | None
    expires: float | None


class Links:
    """Reads and writes repository links, through a memory cache."""

    def __init__(
        self,
        store: Bucket,
        cache: BoundedCache,
        ttl_seconds: float,
        private: Callable[[Registry], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.hot: Namespace[Link] = cache.namespace("links")
        self.ttl_seconds = ttl_seconds
        self.private = private
        self.clock = clock

    def get(self, repo: Repository, digest: str) -> Link | None:
        """The link of `digest` to `repo`, if there is one and it has not expired."""
        key = link_key(repo, digest)
        link = self.hot.get(key)
        if link is None:
            record = self.store.get_json(key)
            if not isinstance(record, dict):
                return None
            size, expires = record.get("size"), record.get("expires")
            link = Link(
                size if isinstance(size, int) else None,
                float(expires) if isinstance(expires, int | float) else None,
            )
        now = self.clock()
        if link.expires is not None and link.expires <= now:
            return None
        self.hot.put(key, link, ttl=None if link.expires is None else link.expires - now)
        return link

    def add(self, repo: Repository, digest: str, size: int | None = None) -> None:
        """`repo` gave us `digest` just now (its bytes verified)."""
        expires = self.clock() + self.ttl_seconds if self.private(repo.registry) else None
        link = Link(size, expires)
        self.store.put_json(link_key(repo, digest), {"size": size, "expires": expires})
        self.hot.put(
            link_key(repo, digest), link, ttl=None if expires is None else self.ttl_seconds
        )
