"""The source records of compositions: where each blob and manifest of a wrap comes from.

A wrapped name answers only digests it is made of: a layer of its base or of
its wrapper (fetched from that upstream repository), the generated config (in
our bucket), or a manifest composed for it. One small idempotent record per
digest, so concurrent writers agree; records never expire, so a pinned composed
digest stays pullable.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ociwrap.concurrency import parallel_map
from ociwrap.memcache import BoundedCache
from ociwrap.records import source_key
from ociwrap.reference import WrapName
from ociwrap.store import Store

Record = dict[str, Any]
PARALLEL_WRITES = 8


def blob_source(source: str, size: int) -> Record:
    """A blob record: `source` is "base", "wrapper" or "generated"."""
    return {"kind": "blob", "source": source, "size": size}


def manifest_source() -> Record:
    return {"kind": "manifest"}


class SourceRecords:
    """Reads and writes the source records of wraps, through a memory cache."""

    def __init__(self, store: Store, cache: BoundedCache) -> None:
        self.store = store
        self.hot = cache

    def record(self, wrap: WrapName, sources: Mapping[str, Record]) -> None:
        """Write the records not already known to be written."""
        fresh = {
            digest: record
            for digest, record in sources.items()
            if self.hot.get(source_key(wrap, digest)) != record
        }

        def write(digest: str) -> None:
            self.store.put_json(source_key(wrap, digest), fresh[digest])
            self.hot.put(source_key(wrap, digest), fresh[digest])

        parallel_map(write, fresh, PARALLEL_WRITES)

    def lookup(self, wrap: WrapName, digest: str) -> Record | None:
        key = source_key(wrap, digest)
        return self.hot.get_or_load(key, lambda: self.store.get_json(key))
