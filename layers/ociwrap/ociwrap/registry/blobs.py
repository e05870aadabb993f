"""Blob answers: never bytes, only where to get them (`Redirect`), and sizes (`BlobSize`).

A blob GET is answered with a location: the upstream's own signed URL when it
hands one out (Docker Hub, ghcr.io, ECR, S3-backed registries), otherwise a
presigned URL of a verified copy in our bucket (see `mirror`; a copy that does
not fit one request is continued by the next from where it stopped, one that the
bucket's lifecycle removed is made again, see `retention`). A HEAD is
answered with the size itself: a HEAD that followed a redirect to a GET-signed
URL would fail.

Two things keep a pull from paying for round trips it does not need. An upstream
that has answered a blob GET with a redirect is asked first next time (a copy of
its blobs in our bucket cannot exist, so looking for one is an S3 request for
nothing); one that served bytes has our copy looked up first, as before. And the
signed URL a public upstream handed out is reused for a short while: at most
LOCATION_TTL_SECONDS and a quarter of the lifetime it states, so a client always
gets a URL with most of its life left (Docker Hub's live ~50 minutes, ghcr.io's
~5). Private upstreams are asked every time: their answer is also the access check.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.retention import CACHE_RETENTION_DAYS, HeldBlobs, url_seconds
from ociwrap.names.reference import Registry, Repository
from ociwrap.registry.mirror import Mirror
from ociwrap.registry.results import BlobSize, Redirect
from ociwrap.runtime import errors, telemetry
from ociwrap.runtime.memcache import BoundedCache, Namespace
from ociwrap.upstream.interface import Upstream

#: The longest an upstream's signed blob URL is reused.
LOCATION_TTL_SECONDS = 60.0
#: ... and the share of its stated remaining lifetime; a URL that states none is reused
#: for UNDATED_TTL_SECONDS.
LOCATION_SHARE = 0.25
UNDATED_TTL_SECONDS = 15.0
#: (signing time, lifetime in seconds) query parameters of signed URLs.
_SIGNED_DATES = (("x-amz-date", "x-amz-expires"), ("x-goog-date", "x-goog-expires"))


def url_expiry(url: str) -> float | None:
    """When a signed URL stops working (epoch seconds), as its query says: S3 SigV4
    (`X-Amz-Date` + `X-Amz-Expires`), S3 SigV2 and CloudFront (`Expires`), Google
    (`X-Goog-Date` + `X-Goog-Expires`); None when it says nothing this understands."""
    query = {key.lower(): values[0] for key, values in parse_qs(urlsplit(url).query).items()}
    for date_key, expires_key in _SIGNED_DATES:
        date, expires = query.get(date_key, ""), query.get(expires_key, "")
        if date and expires.isdigit():
            try:
                signed = calendar.timegm(time.strptime(date, "%Y%m%dT%H%M%SZ"))
            except ValueError:
                return None
            return signed + int(expires)
    expires = query.get("expires", "")
    return float(expires) if expires.isdigit() else None


def location_ttl(url: str, now: float) -> float:
    """How long a signed URL handed out now may be handed out again (0: not at all)."""
    expiry = url_expiry(url)
    if expiry is None:
        return UNDATED_TTL_SECONDS
    return max(0.0, min(LOCATION_TTL_SECONDS, (expiry - now) * LOCATION_SHARE))


class Blobs:
    """Answers blob requests for upstream repositories and for blobs in our bucket."""

    def __init__(
        self,
        store: Bucket,
        fetcher: Upstream,
        mirror: Mirror,
        presign_ttl_seconds: int,
        cache: BoundedCache | None = None,
        clock: Callable[[], float] = time.time,
        *,
        private: Callable[[Registry], bool],
        retention_days: int = CACHE_RETENTION_DAYS,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.mirror = mirror
        self.private = private  # registries asked with a login: their URLs are not reused
        self.presign_ttl_seconds = presign_ttl_seconds
        cache = cache if cache is not None else BoundedCache()
        #: Upstream signed URLs by repository and digest, and whether a registry's last
        #: blob GET redirected (bounded: a path can name any number of registries).
        self.locations: Namespace[str] = cache.namespace("blob locations")
        self.redirects: Namespace[bool] = cache.namespace("redirecting registries")
        self.clock = clock
        self.held = HeldBlobs(store, retention_days, presign_ttl_seconds, cache, clock)

    def _redirecting(self, registry: Registry) -> bool:
        """Did the registry's last blob GET answer with a redirect? (In the bounded cache:
        a path can name any number of registries.)"""
        return self.redirects.get(registry.url) is True

    def _learn(self, registry: Registry, redirected: bool) -> None:
        self.redirects.put(registry.url, redirected)

    def size(self, repo: Repository, digest: str) -> BlobSize:
        """The size of a blob of an upstream repository: our copy's, else the upstream's."""
        mirrored = self.mirror.size(repo, digest)
        size = mirrored if mirrored is not None else self.fetcher.blob_size(repo, digest)
        return BlobSize(digest, size)

    def upstream(self, repo: Repository, digest: str) -> Redirect:
        """Where to fetch a blob of an upstream repository."""
        public = not self.private(repo.registry)
        key = (repo.registry.url, repo.path, digest)
        if public:
            location = self.locations.get(key)
            if location is not None:
                telemetry.cache("location", "memory")
                telemetry.redirect("upstream")
                return Redirect(location, digest)
        looked = not self._redirecting(repo.registry)
        if looked and self.mirror.size(repo, digest) is not None:
            stored = self.stored(digest)
            if stored is not None:  # else the bucket's lifecycle removed it: copied again
                return stored
        start = 0
        if looked:  # a copy that an earlier request could not finish goes on
            resumed = self.mirror.resume(repo, digest)
            if resumed is None:
                return self._copied(digest)
            start = resumed
        answer = self.fetcher.blob(repo, digest, start)
        self._learn(repo.registry, answer.location is not None)
        if answer.location:
            ttl = location_ttl(answer.location, self.clock())
            if public and ttl > 0:
                self.locations.put(key, answer.location, size=len(answer.location), ttl=ttl)
            telemetry.redirect("upstream")
            return Redirect(answer.location, digest)
        assert answer.body is not None
        if not looked and self.mirror.size(repo, digest) is not None:
            stored = self.stored(digest)
            if stored is not None:
                answer.body.close()  # it redirected before; we have a copy already
                return stored
        self.mirror.copy(repo, digest, answer)
        return self._copied(digest)

    def stored(self, digest: str) -> Redirect | None:
        """A presigned URL of a blob in our bucket; None when the bucket does not hold it
        (any more: see `retention`), so that the caller makes it again."""
        until = self.held.until(digest)
        if until is None:
            return None
        telemetry.redirect("s3")
        ttl = url_seconds(until, self.clock(), self.presign_ttl_seconds)
        return Redirect(self.store.presign_blob(digest, ttl), digest)

    def _copied(self, digest: str) -> Redirect:
        """Where the copy just made is."""
        stored = self.stored(digest)
        if stored is None:
            raise errors.storage_unavailable(f"blob {digest} went from the bucket as it was stored")
        return stored
