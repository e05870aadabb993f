"""The source records of compositions: where each blob and manifest of a wrap comes from.

A wrapped name answers only digests it is made of: a layer of its base or of
its wrapper (fetched from that upstream repository), the generated config (in
our bucket), or a manifest composed for it. One small idempotent record per
digest, so concurrent writers agree; records never expire, so a pinned composed
digest stays pullable. The records of composed manifests and configs also name the
base and wrapper digests they were composed of, and those of a signature's (or an
attestation's) documents the manifest it signs (or attests): the bucket's lifecycle
removes the documents themselves (see `retention`), and these say how to make them again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.records import source_key
from ociwrap.names.digest import is_digest
from ociwrap.runtime.concurrency import parallel_map
from ociwrap.runtime.memcache import BoundedCache, Namespace

Record = dict[str, Any]
PARALLEL_WRITES = 8


def blob_source(source: str, size: int, wrapper: int = 0) -> Record:
    """A blob record: `source` is "base", "wrapper" (the `wrapper`-th) or "generated"."""
    record: Record = {"kind": "blob", "source": source, "size": size}
    if wrapper:
        record["wrapper"] = wrapper
    return record


def manifest_source() -> Record:
    return {"kind": "manifest"}


def made_from(base: str, wrappers: Sequence[str]) -> Record:
    """What a composed document is made again from: the base and wrapper digests it was
    composed of (the same inputs compose to the same digests)."""
    return {"base": base, "wrappers": list(wrappers)}


def composed_from(record: Mapping[str, Any], wrappers: int) -> tuple[str, tuple[str, ...]] | None:
    """The base and wrapper digests a record says its document was composed of; None when it
    names none (a layer, a signature, or a record written before they were recorded)."""
    base, made = record.get("base"), record.get("wrappers")
    if not isinstance(base, str) or not is_digest(base) or not isinstance(made, list):
        return None
    if len(made) != wrappers or not all(isinstance(d, str) and is_digest(d) for d in made):
        return None
    return base, tuple(made)


def signing(subject: str) -> Record:
    """A signature's document: made again from the signature record of `subject`."""
    return {"signs": subject}


def signed_subject(record: Mapping[str, Any]) -> str | None:
    subject = record.get("signs")
    return subject if isinstance(subject, str) and is_digest(subject) else None


def attesting(subject: str) -> Record:
    """An attestation's document: made again from the attestation record of `subject`."""
    return {"attests": subject}


def attested_subject(record: Mapping[str, Any]) -> str | None:
    subject = record.get("attests")
    return subject if isinstance(subject, str) and is_digest(subject) else None


class SourceRecords:
    """Reads and writes the source records of wraps, through a memory cache."""

    def __init__(self, store: Bucket, cache: BoundedCache) -> None:
        self.store = store
        self.hot: Namespace[Record] = cache.namespace("source records")

    def record(self, scope: str, sources: Mapping[str, Record]) -> None:
        """Write the records not already known to be written."""
        fresh = {
            digest: record
            for digest, record in sources.items()
            if self.hot.get(source_key(scope, digest)) != record
        }

        def write(digest: str) -> None:
            self.store.put_json(source_key(scope, digest), fresh[digest])
            self.hot.put(source_key(scope, digest), fresh[digest])

        parallel_map(write, fresh, PARALLEL_WRITES)

    def lookup(self, scope: str, digest: str) -> Record | None:
        key = source_key(scope, digest)
        return self.hot.get_or_load(key, lambda: self.store.get_json(key))
