"""Source records of wrapped names: what each digest of a wrap is, and what it is made from.

Over the in-memory bucket; a new `SourceRecords` over the same bucket is a new function
instance (cold memory).
"""

from __future__ import annotations

import pytest

from doubles.at_once import AtOnce
from doubles.bucket import MemoryBucket
from ociwrap.bucket.records import source_key
from ociwrap.bucket.sources import (
    SourceRecords,
    attested_subject,
    attesting,
    blob_source,
    composed_from,
    made_from,
    manifest_source,
    signed_subject,
    signing,
)
from ociwrap.runtime.memcache import BoundedCache

BASE = "sha256:" + "1" * 64
WRAPPER = "sha256:" + "2" * 64
SECOND = "sha256:" + "3" * 64
SCOPE = "0123456789abcdef0123456789abcdef01234567"


def test_blob_records_name_where_the_blob_comes_from():
    assert blob_source("base", 10) == {"kind": "blob", "source": "base", "size": 10}
    assert blob_source("generated", 7) == {"kind": "blob", "source": "generated", "size": 7}
    assert blob_source("wrapper", 5, 1) == {
        "kind": "blob",
        "source": "wrapper",
        "size": 5,
        "wrapper": 1,
    }
    assert blob_source("wrapper", 5, 2)["wrapper"] == 2
    assert manifest_source() == {"kind": "manifest"}


def test_a_composed_document_is_made_again_from_the_digests_it_names():
    record = {**manifest_source(), **made_from(BASE, (WRAPPER, SECOND))}
    assert record["wrappers"] == [WRAPPER, SECOND]
    assert composed_from(record, 2) == (BASE, (WRAPPER, SECOND))
    assert composed_from(made_from(BASE, [WRAPPER]), 1) == (BASE, (WRAPPER,))


@pytest.mark.parametrize(
    "record",
    [
        {"kind": "blob", "source": "base", "size": 1},  # a layer: nothing to make again
        {"base": BASE},
        {"wrappers": [WRAPPER]},
        {"base": 5, "wrappers": [WRAPPER]},
        {"base": "sha256:abc", "wrappers": [WRAPPER]},
        {"base": BASE, "wrappers": WRAPPER},
        {"base": BASE, "wrappers": []},
        {"base": BASE, "wrappers": [WRAPPER, SECOND]},
        {"base": BASE, "wrappers": [5]},
        {"base": BASE, "wrappers": ["sha256:abc"]},
    ],
)
def test_a_record_that_names_no_usable_inputs_gives_none(record):
    assert composed_from(record, 1) is None


def test_a_record_with_one_bad_wrapper_among_good_ones_gives_none():
    assert composed_from({"base": BASE, "wrappers": [WRAPPER, "latest"]}, 2) is None
    assert composed_from({"base": BASE, "wrappers": ["latest", WRAPPER]}, 2) is None


def test_a_signatures_documents_name_the_manifest_they_sign():
    assert signing(BASE) == {"signs": BASE}
    assert signed_subject(signing(BASE)) == BASE
    assert signed_subject({"signs": "sha256:abc"}) is None
    assert signed_subject({"signs": 5}) is None
    assert signed_subject(manifest_source()) is None


def test_an_attestations_documents_name_the_manifest_they_attest():
    assert attesting(BASE) == {"attests": BASE}
    assert attested_subject(attesting(BASE)) == BASE
    assert attested_subject({"attests": "sha256:abc"}) is None
    assert attested_subject({"attests": 5}) is None
    assert attested_subject(signing(BASE)) is None


def test_records_are_written_and_read_back_by_a_new_instance():
    bucket = MemoryBucket()
    records = {BASE: blob_source("base", 10), WRAPPER: blob_source("wrapper", 5, 1)}
    SourceRecords(bucket, BoundedCache()).record(SCOPE, records)
    assert bucket.listing("tags/sources/") == sorted(
        [source_key(SCOPE, BASE), source_key(SCOPE, WRAPPER)]
    )
    fresh = SourceRecords(bucket, BoundedCache())
    assert fresh.lookup(SCOPE, BASE) == records[BASE]
    assert fresh.lookup(SCOPE, WRAPPER) == records[WRAPPER]
    assert fresh.lookup("other-scope", BASE) is None
    assert fresh.lookup(SCOPE, SECOND) is None


def test_an_instance_writes_a_record_once_and_reads_it_from_memory():
    bucket = MemoryBucket()
    sources = SourceRecords(bucket, BoundedCache())
    sources.record(SCOPE, {BASE: blob_source("base", 10)})
    sources.record(SCOPE, {BASE: blob_source("base", 10), WRAPPER: manifest_source()})
    assert sorted(bucket.called("put_json")) == sorted(
        [source_key(SCOPE, BASE), source_key(SCOPE, WRAPPER)]
    )
    assert sources.lookup(SCOPE, BASE) == blob_source("base", 10)
    assert bucket.called("get_json") == []
    other = SourceRecords(bucket, BoundedCache())
    assert other.lookup(SCOPE, BASE) == other.lookup(SCOPE, BASE) == blob_source("base", 10)
    assert bucket.called("get_json") == [source_key(SCOPE, BASE)]


def test_a_changed_record_is_written_again():
    bucket = MemoryBucket()
    sources = SourceRecords(bucket, BoundedCache())
    sources.record(SCOPE, {BASE: manifest_source()})
    sources.record(SCOPE, {BASE: {**manifest_source(), **made_from(WRAPPER, [SECOND])}})
    assert bucket.called("put_json") == [source_key(SCOPE, BASE)] * 2
    assert SourceRecords(bucket, BoundedCache()).lookup(SCOPE, BASE)["base"] == WRAPPER


def test_many_records_are_all_written():
    bucket = MemoryBucket()
    digests = [f"sha256:{n:064x}" for n in range(20)]
    SourceRecords(bucket, BoundedCache()).record(SCOPE, {d: manifest_source() for d in digests})
    assert bucket.listing("tags/sources/") == sorted(source_key(SCOPE, d) for d in digests)


def test_eight_records_are_written_at_once_and_never_a_ninth():
    bucket = MemoryBucket()
    writing = AtOnce(8, "writes")
    bucket.before["put_json"] = writing
    digests = [f"sha256:{n:064x}" for n in range(9)]
    SourceRecords(bucket, BoundedCache()).record(SCOPE, {d: manifest_source() for d in digests})
    assert writing.most == 8
    assert len(bucket.listing("tags/sources/")) == 9
