"""The bucket is a cache: what it holds expires, and a client is sent only to what is there.

The template's lifecycle rules remove manifests, blobs, tag records, links and composition
records CACHE_RETENTION_DAYS after they were last written; each is made again when it is
next needed (fetched or copied from its upstream again, composed again to the same
digest). Records of what can be fetched again are believed only together with what they
point at: a manifest is read (so its absence shows), a blob is handed out as a presigned
URL that nobody checks until the client follows it, so the bucket is asked first.

Asking costs one S3 HEAD per blob and instance: the answer is believed until the
lifecycle may first remove the blob (S3 adds the days to the object's creation time and
rounds up to the next midnight UTC) less the lifetime of the URLs handed out, so no URL
handed out from memory outlives its blob; in its last hour a blob is asked for every time,
and URLs of it live only as long as it surely does (at least MIN_URL_SECONDS).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from ociwrap.bucket.interface import Bucket
from ociwrap.runtime.memcache import BoundedCache, Namespace

#: The shortest presigned URL handed out for a blob that the lifecycle may soon remove.
MIN_URL_SECONDS = 60
#: How long the bucket keeps what it caches by default (CACHE_RETENTION_DAYS).
CACHE_RETENTION_DAYS = 30
DAY_SECONDS = 86400


def removal_time(written: float, days: int) -> float:
    """The earliest time (epoch s) a lifecycle rule of `days` days removes an object last
    written at `written`: the days added, rounded up to the next midnight UTC."""
    return math.ceil((written + days * DAY_SECONDS) / DAY_SECONDS) * DAY_SECONDS


def url_seconds(until: float, now: float, presign_seconds: int) -> int:
    """The lifetime of a presigned URL of a blob kept until `until`: the configured one, or
    what is left of the blob's life when that is shorter (never under MIN_URL_SECONDS)."""
    return int(min(presign_seconds, max(MIN_URL_SECONDS, until - now)))


class HeldBlobs:
    """Whether the bucket holds a blob, and until when at least; one HEAD per instance."""

    def __init__(
        self,
        store: Bucket,
        days: int,
        margin_seconds: int,
        cache: BoundedCache,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.days = days
        self.margin_seconds = margin_seconds  # the lifetime of URLs handed out
        self.hot: Namespace[float] = cache.namespace("held blobs")
        self.clock = clock

    def until(self, digest: str) -> float | None:
        """When the lifecycle may first remove blob `digest` (epoch s); None when the bucket
        does not hold it (never stored, or removed)."""
        until = self.hot.get(digest)
        if until is None:
            written = self.store.blob_written(digest)
            if written is None:
                return None
            until = removal_time(written, self.days)
            believed = until - self.margin_seconds - self.clock()
            if believed > 0:
                self.hot.put(digest, until, ttl=believed)
        return until
