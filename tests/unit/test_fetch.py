"""The fetcher against a scripted registry on 127.0.0.1: only verified data comes out, every
read is bounded before and after decompression, and upstream data never reaches a header."""

from __future__ import annotations

import functools
import gzip
import hashlib
import json
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.credentials import Credential
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport
from scripted_upstream import digest_of, drip

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_SCHEMA1_MANIFEST = "application/vnd.docker.distribution.manifest.v1+json"
MAX_MANIFEST_BYTES = 4 * 1024 * 1024  # the 4 MiB of the README's limits

MANIFEST = json.dumps(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "size": 2,
            "digest": "sha256:" + "1" * 64,
        },
        "layers": [],
    }
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
ALL = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
]
PATH = "/v2/team/app/manifests/1"


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(Transport())


def error_of(call, *args) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


@functools.cache
def bomb() -> bytes:
    """256 MiB of zero bytes, gzipped: about a thousand times smaller (made once, when a
    test first asks: a second of compression no other test pays for)."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\0" * (1024 * 1024)
    parts = [compressor.compress(chunk) for _ in range(256)]
    return b"".join(parts) + compressor.flush()


# -- manifests ----------------------------------------------------------------------------


def test_manifest_bytes_that_do_not_match_the_digest_are_refused(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/manifests/{DIGEST}"] = lambda h: (
        200,
        {"Content-Type": OCI_MANIFEST},
        MANIFEST + b" ",
    )
    error = error_of(fetcher.get_manifest, repo, DIGEST, ALL)
    assert error.status == 502
    assert "stub" in error.message and DIGEST in error.message


def test_a_gzip_encoded_manifest_is_decoded(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (
        200,
        {"Content-Type": OCI_MANIFEST, "Content-Encoding": "gzip"},
        gzip.compress(MANIFEST),
    )
    fetched = fetcher.get_manifest(repo, "1", ALL)
    assert (fetched.body, fetched.digest, fetched.media_type) == (MANIFEST, DIGEST, OCI_MANIFEST)


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        ({}, lambda: b"{" + b" " * MAX_MANIFEST_BYTES + b"}"),
        ({"Content-Length": str(10**12)}, lambda: b"{}"),
        ({"Content-Encoding": "gzip"}, bomb),
        ({"Content-Encoding": "gzip"}, lambda: gzip.compress(b" " * (MAX_MANIFEST_BYTES + 1))),
    ],
    ids=["huge", "declared-huge", "gzip-bomb", "inflates-past"],
)
def test_oversized_manifests_are_cut_at_the_limit(scripted, repo, fetcher, headers, body):
    sent = body()
    scripted.routes["GET", PATH] = lambda h: (200, headers, sent)
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert "stub" in error.message and str(MAX_MANIFEST_BYTES) in error.message


def test_an_endless_body_is_cut_at_the_limit(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {}, drip(b"x" * 65536, 0, repeat=10_000))
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.status == 502 and str(MAX_MANIFEST_BYTES) in error.message


@pytest.mark.parametrize(
    "length", ["-1", "abc", "+5", "1_0", " 5 5", "5, 6", "\u00b2", "99999999999999999999"]
)
def test_invalid_content_lengths_are_refused(scripted, repo, fetcher, length):
    scripted.routes["GET", PATH] = lambda h: (200, [("Content-Length", length)], b"")
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.status == 502 and "stub" in error.message


def test_differing_repeated_content_lengths_are_refused(scripted, repo, fetcher):
    headers = [("Content-Length", str(len(MANIFEST))), ("Content-Length", "5")]
    scripted.routes["GET", PATH] = lambda h: (200, headers, MANIFEST)
    assert error_of(fetcher.get_manifest, repo, "1", ALL).status == 502


def test_a_body_that_breaks_off_is_502(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (
        200,
        {"Content-Length": "1000", "Connection": "close"},
        drip(b"{", 0),
    )
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.status == 502 and "broke off" in error.message


def test_unsupported_content_encoding_is_refused(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Encoding": "br"}, b"...")
    assert error_of(fetcher.get_manifest, repo, "1", ALL).status == 502


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", json.loads(MANIFEST) | {"mediaType": None}, OCI_MANIFEST),
        ("text/plain; charset=utf-8", {"schemaVersion": 2, "manifests": []}, OCI_INDEX),
        (OCI_INDEX, json.loads(MANIFEST), OCI_MANIFEST),  # the document wins over the header
    ],
)
def test_media_type_comes_from_the_document(scripted, repo, fetcher, content_type, body, expected):
    document = {k: v for k, v in body.items() if v is not None}
    scripted.routes["GET", PATH] = lambda h: (
        200,
        {"Content-Type": content_type},
        json.dumps(document).encode(),
    )
    assert fetcher.get_manifest(repo, "1", ALL).media_type == expected


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html", b'{"mediaType": "text/html", "x": 1}'),
        ("text/html", b"<html>not json</html>"),
        ("application/json", b'{"some": "thing"}'),
        (OCI_MANIFEST, b"[" * 100_000 + b"]" * 100_000),
        (OCI_MANIFEST, b'{"schemaVersion": 2, "size": NaN}'),
    ],
    ids=["html-type", "html", "unknown-shape", "deep", "nan"],
)
def test_documents_that_are_no_manifest_are_refused(scripted, repo, fetcher, content_type, body):
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": content_type}, body)
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert "stub" in error.message


def test_schema1_keeps_its_clear_error(scripted, repo, fetcher):
    body = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": DOCKER_SCHEMA1_MANIFEST}, body)
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.message) == ("MANIFEST_INVALID", "invalid upstream image format")


def test_manifest_redirects_are_followed(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (302, {"Location": "/cdn/manifest"}, b"")
    scripted.routes["GET", "/cdn/manifest"] = lambda h: (200, {}, MANIFEST)
    assert fetcher.get_manifest(repo, "1", ALL).digest == DIGEST


# -- HEAD ---------------------------------------------------------------------------------


def test_head_gives_the_claimed_digest(scripted, repo, fetcher):
    scripted.routes["HEAD", PATH] = lambda h: (
        200,
        {"Docker-Content-Digest": DIGEST, "Content-Length": "12"},
        b"",
    )
    assert fetcher.head_manifest(repo, "1", ALL) == DIGEST


@pytest.mark.parametrize(
    ("status", "headers"),
    [
        (200, {"Content-Length": "5"}),
        (200, {"Docker-Content-Digest": "sha256:short"}),
        (405, {}),
        (500, {}),
        (302, {"Location": "/elsewhere"}),
    ],
    ids=["no-digest", "bad-digest", "405", "500", "redirect"],
)
def test_head_that_tells_nothing_means_get(scripted, repo, fetcher, status, headers):
    scripted.routes["HEAD", PATH] = lambda h: (status, headers, b"")
    assert fetcher.head_manifest(repo, "1", ALL) is None


def test_rate_limit_is_passed_on_with_retry_after(scripted, repo, fetcher):
    scripted.routes["HEAD", PATH] = lambda h: (429, {"Retry-After": "120"}, b"")
    error = error_of(fetcher.head_manifest, repo, "1", ALL)
    assert (error.code, error.status, error.headers) == (
        "TOOMANYREQUESTS",
        429,
        {"Retry-After": "120"},
    )


def test_an_odd_retry_after_is_dropped(scripted, repo, fetcher):
    scripted.routes["HEAD", PATH] = lambda h: (429, {"Retry-After": "1\x00; evil"}, b"")
    assert error_of(fetcher.head_manifest, repo, "1", ALL).headers == {}


def test_upstream_5xx_is_a_502_naming_the_upstream(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (500, {}, bomb())
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.status == 502
    assert "upstream registry stub answered 500" in error.message


@pytest.mark.parametrize(("status", "code"), [(401, "UNAUTHORIZED"), (403, "DENIED")])
def test_refused_access_says_which_setting_to_check(scripted, repo, fetcher, status, code):
    scripted.routes["GET", PATH] = lambda h: (status, {}, b"")
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.status) == (code, status)
    assert "stub" in error.message and "UPSTREAM_CREDENTIALS_FILE" in error.message


# -- blobs --------------------------------------------------------------------------------

BLOB = "sha256:" + "1" * 64


def test_relative_blob_redirect_is_made_absolute(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "/cdn/blob?sig=abc"},
        b"<html>redirect body that must not be passed on</html>",
    )
    answer = fetcher.blob(repo, BLOB)
    assert answer.location == f"{scripted.url}/cdn/blob?sig=abc"
    assert answer.body is None
    assert scripted.seen[0][2]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    "location", ["http://cdn.example/\x00blob", "ftp://cdn.example/blob", "", "http://a b/"]
)
def test_unsafe_blob_redirects_are_refused(scripted, repo, fetcher, location):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        [("Location", location)],
        b"",
    )
    error = error_of(fetcher.blob, repo, BLOB)
    assert error.status == 502 and "invalid redirect" in error.message


@pytest.mark.parametrize(
    ("status", "headers", "start", "size"),
    [
        (206, {"Content-Range": "bytes 100-999/1000"}, 100, 1000),
        (206, {"Content-Range": "bytes 100-999/*"}, 100, 1000),
        (200, {}, 0, 1000),  # the upstream ignores ranges: all of the blob, from 0
        (200, {"Content-Encoding": "gzip"}, 0, None),  # its length is not the blob's
    ],
    ids=["range", "range-of-unknown-total", "whole", "encoded"],
)
def test_a_blob_asked_for_from_an_offset(scripted, repo, fetcher, status, headers, start, size):
    body = b"x" * (1000 - start)
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (status, headers, body)
    answer = fetcher.blob(repo, BLOB, start=100)
    assert (answer.start, answer.size) == (start, size)
    assert scripted.seen[0][2]["Range"] == "bytes=100-"
    answer.body.close()


@pytest.mark.parametrize(
    "content_range",
    [
        "bytes 0-999/1000",  # from the start, not where asked
        "bytes 100-998/1000",  # not to the end
        "bytes 100-999/2000",
        "bytes 100-99/1000",
        "bytes 100-999",
        "bytes=100-999/1000",
        "",
    ],
)
def test_a_range_answer_must_be_the_rest_of_the_blob(scripted, repo, fetcher, content_range):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        206,
        [("Content-Range", content_range)] if content_range else [],
        b"x" * 900,
    )
    error = error_of(fetcher.blob, repo, BLOB, 100)
    assert (error.status, error.code) == (502, "UNAVAILABLE")
    assert "Content-Range" in error.message and "stub" in error.message


def test_an_unasked_range_answer_is_refused(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        206,
        {"Content-Range": "bytes 0-9/10"},
        b"x" * 10,
    )
    assert error_of(fetcher.blob, repo, BLOB).status == 502
    assert "Range" not in scripted.seen[0][2]


def test_small_blobs_follow_redirects_and_are_verified(scripted, repo, fetcher):
    config = b'{"architecture":"amd64"}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    scripted.routes["GET", f"/v2/team/app/blobs/{digest}"] = lambda h: (
        307,
        {"Location": "/cdn/config"},
        b"",
    )
    scripted.routes["GET", "/cdn/config"] = lambda h: (200, {}, config)
    assert fetcher.small_blob(repo, digest, 1000, "image config") == config
    scripted.routes["GET", "/cdn/config"] = lambda h: (200, {}, config + b" ")
    assert error_of(fetcher.small_blob, repo, digest, 1000, "image config").status == 502
    scripted.routes["GET", "/cdn/config"] = lambda h: (200, {"Content-Encoding": "gzip"}, bomb())
    error = error_of(fetcher.small_blob, repo, digest, 1000, "image config")
    assert error.status == 502 and "1000" in error.message


def test_blob_size_from_a_redirect_target(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "/cdn/blob"},
        b"",
    )
    scripted.routes["GET", "/cdn/blob"] = lambda h: (200, {"Content-Length": "1234"}, drip(b"x", 0))
    assert fetcher.blob_size(repo, BLOB) == 1234


# -- tags ---------------------------------------------------------------------------------


def test_tags_and_the_next_page(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {"Link": '</v2/team/app/tags/list?n=2&last=b>; rel="next"'},
        json.dumps({"name": "team/app", "tags": ["a", "b"]}).encode(),
    )
    assert fetcher.tags(repo, 2, None) == (["a", "b"], "b")
    assert "n=2" in scripted.seen[0][1]


def test_tags_that_cannot_be_tags_are_left_out(scripted, repo, fetcher):
    tags = ["v1", "v1\r\nX-Injected: 1", "-x", "ok.2"]
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {},
        json.dumps({"tags": tags}).encode(),
    )
    assert fetcher.tags(repo, None, None) == (["v1", "ok.2"], None)


@pytest.mark.parametrize(
    "body",
    [b'{"tags": [1, 2]}', b'{"tags": "v1"}', b'{"tags": [{"a": 1}]}', b"[]", b"nope"],
)
def test_invalid_tag_lists_are_502(scripted, repo, fetcher, body):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (200, {}, body)
    error = error_of(fetcher.tags, repo, None, None)
    assert error.status == 502 and "stub" in error.message


def test_null_tags_are_an_empty_list(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (200, {}, b'{"tags": null}')
    assert fetcher.tags(repo, None, None) == ([], None)


def test_huge_tag_lists_are_cut(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {"Content-Encoding": "gzip"},
        bomb(),
    )
    error = error_of(fetcher.tags, repo, None, None)
    assert error.status == 502 and "tag list" in error.message


# -- what is asked for --------------------------------------------------------------------


def test_manifests_are_asked_for_in_the_accepted_types(scripted, repo, fetcher):
    scripted.routes["HEAD", PATH] = lambda h: (200, {"Docker-Content-Digest": DIGEST}, b"")
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, MANIFEST)
    assert fetcher.head_manifest(repo, "1", ALL) == DIGEST
    assert fetcher.get_manifest(repo, "1", ALL).digest == DIGEST
    assert [(m, h["Accept"]) for m, _p, h in scripted.seen] == [
        ("HEAD", ", ".join(ALL)),
        ("GET", ", ".join(ALL)),
    ]


def test_blob_bytes_are_asked_for_unencoded(scripted, repo, fetcher):
    """A layer's digest covers its stored bytes: no transfer encoding may change them."""
    config = b'{"architecture":"amd64"}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, b"x" * 10)
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "/cdn/blob"},
        b"",
    )
    scripted.routes["GET", "/cdn/blob"] = lambda h: (200, {"Content-Length": "10"}, b"x" * 10)
    scripted.routes["GET", f"/v2/team/app/blobs/{digest}"] = lambda h: (200, {}, config)
    fetcher.blob(repo, BLOB).body.close()
    fetcher.blob(repo, BLOB, start=4).body.close()
    assert fetcher.blob_size(repo, BLOB) == 10
    assert fetcher.small_blob(repo, digest, 1000, "image config") == config
    assert [(m, h["Accept-Encoding"]) for m, _p, h in scripted.seen] == [
        ("GET", "identity")
    ] * 2 + [
        ("HEAD", "identity"),
        ("GET", "identity"),
        ("GET", "identity"),
    ]


def test_a_blob_from_the_start_is_asked_for_without_range(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, b"x" * 10)
    answer = fetcher.blob(repo, BLOB)
    assert (answer.start, answer.size) == (0, 10)
    assert b"".join(answer.body.chunks(100, lambda: RegistryError("X", "x"))) == b"x" * 10
    answer.body.close()
    assert "Range" not in scripted.seen[0][2]


def test_the_tag_lists_last_is_forwarded(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {},
        json.dumps({"name": "team/app", "tags": ["c", "d"]}).encode(),
    )
    assert fetcher.tags(repo, 2, "b") == (["c", "d"], None)
    assert fetcher.tags(repo, None, "b") == (["c", "d"], None)
    assert fetcher.tags(repo, None, "") == (["c", "d"], None)
    queries = [parse_qs(urlsplit(path).query) for _m, path, _h in scripted.seen]
    assert queries == [{"n": ["2"], "last": ["b"]}, {"last": ["b"]}, {}]


def test_a_next_link_without_last_ends_the_list(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {"Link": '</v2/team/app/tags/list?n=2>; rel="next"'},
        json.dumps({"tags": ["a"]}).encode(),
    )
    assert fetcher.tags(repo, 2, None) == (["a"], None)


def test_a_tag_list_without_tags_is_empty(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (200, {}, b'{"name": "team/app"}')
    assert fetcher.tags(repo, None, None) == ([], None)


@pytest.mark.parametrize(("status", "code"), [(404, "NAME_UNKNOWN"), (401, "UNAUTHORIZED")])
def test_a_tag_list_refused_upstream_is_passed_on(scripted, repo, fetcher, status, code):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (status, {}, b"")
    error = error_of(fetcher.tags, repo, None, None)
    assert (error.code, error.status) == (code, status)
    if status == 404:
        assert error.message == "repository stub/team/app not found upstream"
        assert error.detail == {"repository": "stub/team/app"}


def test_a_tag_list_that_is_no_json_is_502(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (200, {}, b"<html>")
    error = error_of(fetcher.tags, repo, None, None)
    assert error.message.startswith("upstream registry stub sent a tag list that is not valid")


def test_a_tag_list_that_is_too_large_names_the_limit(scripted, repo, fetcher):
    document = b'{"tags": ["a"]}'
    limit = 4 * 1024 * 1024
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {},
        document + b" " * (limit - len(document)),
    )
    assert fetcher.tags(repo, None, None) == (["a"], None)
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (
        200,
        {},
        document + b" " * (limit + 1 - len(document)),
    )
    error = error_of(fetcher.tags, repo, None, None)
    assert error.message == (
        f"upstream registry stub sent a tag list larger than the limit of {limit} bytes"
    )


# -- referrers ----------------------------------------------------------------------------

REFERRERS = f"/v2/team/app/referrers/{BLOB}"


def test_referrers_are_asked_for_as_an_index_and_parsed(scripted, repo, fetcher):
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    scripted.routes["GET", REFERRERS] = lambda h: (307, {"Location": "/cdn/referrers"}, b"")
    scripted.routes["GET", "/cdn/referrers"] = lambda h: (200, {}, json.dumps(index).encode())
    assert fetcher.referrers(repo, BLOB) == index
    assert [h["Accept"] for _m, _p, h in scripted.seen] == [OCI_INDEX, OCI_INDEX]


def test_no_referrers_api_is_none(scripted, repo, fetcher):
    assert fetcher.referrers(repo, BLOB) is None


@pytest.mark.parametrize(("status", "code"), [(500, "UNAVAILABLE"), (403, "DENIED")])
def test_referrers_refused_upstream_are_passed_on(scripted, repo, fetcher, status, code):
    scripted.routes["GET", REFERRERS] = lambda h: (status, {}, b"")
    error = error_of(fetcher.referrers, repo, BLOB)
    assert error.code == code
    if status == 500:
        assert error.message == (
            f"upstream registry stub answered 500 for referrers of {BLOB} in stub/team/app"
        )


def test_a_referrers_index_that_is_no_json_or_too_large_is_502(scripted, repo, fetcher):
    scripted.routes["GET", REFERRERS] = lambda h: (200, {}, b"{")
    error = error_of(fetcher.referrers, repo, BLOB)
    assert error.message.startswith(
        "upstream registry stub sent a referrers index that is not valid JSON"
    )
    scripted.routes["GET", REFERRERS] = lambda h: (200, {}, b" " * (MAX_MANIFEST_BYTES + 1))
    error = error_of(fetcher.referrers, repo, BLOB)
    assert error.message == (
        "upstream registry stub sent a referrers index larger than the limit of "
        f"{MAX_MANIFEST_BYTES} bytes"
    )


# -- what a client is told ----------------------------------------------------------------


def test_an_unknown_manifest_is_named(scripted, repo, fetcher):
    for method in ("HEAD", "GET"):
        call = fetcher.head_manifest if method == "HEAD" else fetcher.get_manifest
        error = error_of(call, repo, "1", ALL)
        assert (error.code, error.status) == ("MANIFEST_UNKNOWN", 404)
        assert error.message == "manifest 1 of stub/team/app not found upstream"
        assert error.detail == {"repository": "stub/team/app"}


@pytest.mark.parametrize("status", [400, 499])
def test_head_answers_below_500_are_errors(scripted, repo, fetcher, status):
    scripted.routes["HEAD", PATH] = lambda h: (status, {}, b"")
    error = error_of(fetcher.head_manifest, repo, "1", ALL)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert (
        error.message == f"upstream registry stub answered {status} for manifest 1 of stub/team/app"
    )
    assert error.detail == {"repository": "stub/team/app", "status": status}


@pytest.mark.parametrize("status", [503, 504])
def test_head_answers_from_500_on_mean_get(scripted, repo, fetcher, status):
    scripted.routes["HEAD", PATH] = lambda h: (status, {}, b"")
    assert fetcher.head_manifest(repo, "1", ALL) is None


def test_a_login_refused_by_the_upstream_names_the_setting(scripted, repo):
    class Basic:
        def for_registry(self, registry):
            return Credential("u", "p")

        def rejected(self, registry):
            pass

    scripted.routes["GET", PATH] = lambda h: (401, {"WWW-Authenticate": 'Basic realm="x"'}, b"")
    error = error_of(Fetcher(Transport(Basic())).get_manifest, repo, "1", ALL)
    assert (error.code, error.status) == ("UNAUTHORIZED", 401)
    assert error.message.startswith("upstream registry stub refused the login configured for it")


@pytest.mark.parametrize(
    ("sent", "passed"),
    [
        (" 120 ", "120"),
        ("Wed, 21 Oct 2015 07:28:00 GMT", "Wed, 21 Oct 2015 07:28:00 GMT"),
        ("5", "5"),
        ("   ", None),
        ("1" * 9, "1" * 9),
        ("1" * 40, "1" * 40),
        ("1" * 41, None),
        ("1;", None),
        ("a" * 40, "a" * 40),
        ("a" * 41, None),
    ],
)
def test_retry_after_is_passed_on_when_it_is_a_delay_or_a_date(
    scripted, repo, fetcher, sent, passed
):
    scripted.routes["GET", PATH] = lambda h: (429, {"Retry-After": sent}, b"")
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.status) == ("TOOMANYREQUESTS", 429)
    assert error.message == "upstream registry stub is rate limiting requests"
    assert error.headers == ({"Retry-After": passed} if passed else {})


def test_a_manifest_that_is_not_json_names_why(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, b"<html>")
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.message.startswith("upstream registry stub sent a manifest that is not valid JSON")
    assert error.detail == {"registry": "stub"}


def test_a_manifest_of_another_type_is_named_by_its_type(scripted, repo, fetcher):
    media_type = "application/vnd.example." + "x" * 100
    body = json.dumps({"schemaVersion": 2, "mediaType": media_type}).encode()
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, body)
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.message == (
        f"upstream registry stub sent a document of media type {media_type[:80]!r} where an "
        "image manifest or index belongs"
    )
    assert error.detail == {"registry": "stub"}


def test_a_json_list_is_no_manifest(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": "application/json"}, b"[]")
    assert error_of(fetcher.get_manifest, repo, "1", ALL).status == 502


def test_schema1_names_the_reason(scripted, repo, fetcher):
    body = json.dumps({"schemaVersion": 1, "fsLayers": []}).encode()
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": DOCKER_SCHEMA1_MANIFEST}, body)
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.detail == {
        "registry": "stub",
        "reason": "Docker schema 1 manifests are not supported",
    }


def test_a_manifest_by_digest_names_the_digest_it_had(scripted, repo, fetcher):
    other = "sha256:" + hashlib.sha256(MANIFEST + b" ").hexdigest()
    scripted.routes["GET", f"/v2/team/app/manifests/{DIGEST}"] = lambda h: (
        200,
        {"Content-Type": OCI_MANIFEST},
        MANIFEST + b" ",
    )
    error = error_of(fetcher.get_manifest, repo, DIGEST, ALL)
    assert error.message == (
        f"upstream registry stub sent a manifest for {DIGEST} whose digest is {other}"
    )
    assert error.detail == {"repository": "stub/team/app"}


def test_a_manifest_at_the_limit_is_taken(scripted, repo, fetcher):
    body = MANIFEST + b" " * (MAX_MANIFEST_BYTES - len(MANIFEST))
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": OCI_MANIFEST}, body)
    assert fetcher.get_manifest(repo, "1", ALL).body == body


# -- blobs: what is refused and said ------------------------------------------------------


def test_an_unknown_blob_is_named(scripted, repo, fetcher):
    error = error_of(fetcher.blob, repo, BLOB)
    assert (error.code, error.status) == ("BLOB_UNKNOWN", 404)
    assert error.message == f"blob {BLOB} of stub/team/app not found upstream"
    assert error.detail == {"repository": "stub/team/app"}
    error = error_of(fetcher.blob_size, repo, BLOB)
    assert (error.code, error.message) == (
        "BLOB_UNKNOWN",
        f"blob {BLOB} of stub/team/app not found upstream",
    )
    error = error_of(fetcher.small_blob, repo, BLOB, 1000, "image config")
    assert (error.code, error.message) == (
        "BLOB_UNKNOWN",
        f"image config {BLOB} of stub/team/app not found upstream",
    )


def test_a_blob_size_from_a_head(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        200,
        {"Content-Length": "77"},
        b"",
    )
    assert fetcher.blob_size(repo, BLOB) == 77


def test_a_redirect_target_that_has_no_blob_is_named(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "/cdn/blob"},
        b"",
    )
    error = error_of(fetcher.blob_size, repo, BLOB)
    assert (error.code, error.message) == (
        "BLOB_UNKNOWN",
        f"blob {BLOB} of stub/team/app not found upstream",
    )
    assert [(m, p) for m, p, _h in scripted.seen] == [
        ("HEAD", f"/v2/team/app/blobs/{BLOB}"),
        ("GET", "/cdn/blob"),
    ]


def test_a_blob_without_a_size_is_502(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, drip(b"", 0))
    error = error_of(fetcher.blob_size, repo, BLOB)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == f"upstream registry stub gave no size for blob {BLOB}"


def test_a_small_blob_names_the_digest_it_had(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, b"{}")
    error = error_of(fetcher.small_blob, repo, BLOB, 1000, "image config")
    assert error.message == (
        f"upstream registry stub sent image config {BLOB} with digest {digest_of(b'{}')}"
    )


def test_a_blob_body_is_cut_at_the_callers_limit(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, b"x" * 100)
    answer = fetcher.blob(repo, BLOB)
    assert b"".join(answer.body.chunks(100, lambda: RegistryError("X", "x"))) == b"x" * 100
    answer.body.close()
    answer = fetcher.blob(repo, BLOB)
    too_large = RegistryError("TOO_LARGE", "over the limit")
    with pytest.raises(RegistryError) as caught:
        b"".join(answer.body.chunks(99, lambda: too_large))
    assert caught.value is too_large
    answer.body.close()


def test_a_blob_body_that_breaks_off_is_named(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        200,
        {"Content-Length": "100", "Connection": "close"},
        drip(b"x", 0),
    )
    answer = fetcher.blob(repo, BLOB)
    error = error_of(lambda: b"".join(answer.body.chunks(1000, lambda: too_large_never())))
    assert error.message.startswith("upstream registry stub broke off while sending a blob")


def too_large_never() -> RegistryError:
    raise AssertionError("the limit was not reached")


def test_a_blob_with_an_invalid_length_is_closed_and_refused(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        200,
        [("Content-Length", "-1")],
        b"",
    )
    error = error_of(fetcher.blob, repo, BLOB)
    assert error.message == "upstream registry stub sent an invalid Content-Length"


def test_an_unasked_range_answer_is_named(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (206, {}, b"x")
    error = error_of(fetcher.blob, repo, BLOB)
    assert error.message == f"upstream registry stub answered 206 for blob {BLOB} of stub/team/app"


def test_a_blob_redirect_to_link_local_is_refused(scripted, repo, fetcher, dns):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "http://169.254.169.254/latest/meta-data/"},
        b"",
    )
    error = error_of(fetcher.blob, repo, BLOB)
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message.startswith(
        f"upstream registry stub redirected blob {BLOB} to 169.254.169.254, a link-local address"
    )
    assert error.message.endswith("; the redirect is not passed on")
    assert error.detail == {"registry": "stub", "digest": BLOB}


def test_an_alias_may_send_clients_to_private_addresses(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "http://10.0.0.5/blob"},
        b"",
    )
    assert fetcher.blob(repo, BLOB).location == "http://10.0.0.5/blob"


def test_a_redirect_target_may_be_8192_characters_and_no_more(scripted, repo, fetcher):
    base = "http://cdn.example.com/blob?sig="
    for length, allowed in ((8192, True), (8193, False)):
        target = base + "a" * (length - len(base))
        scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h, t=target: (
            307,
            {"Location": t},
            b"",
        )
        if allowed:
            assert fetcher.blob(repo, BLOB).location == target
        else:
            error = error_of(fetcher.blob, repo, BLOB)
            assert error.message == "upstream registry stub sent an invalid redirect"
            assert error.detail == {"registry": "stub"}


# -- reads are retried, what an answer leaves out -----------------------------------------


def after_503(answer):
    """A route that answers 503 once, then `answer`: an upstream that recovers."""
    answered: list[int] = []

    def route(handler):
        answered.append(503)
        return answer if len(answered) > 1 else (503, {}, b"")

    return route


def test_every_read_is_retried_after_a_503(scripted, repo, fetcher):
    config = b'{"architecture":"amd64"}'
    config_digest = digest_of(config)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
    routes = {
        ("HEAD", PATH): (200, {"Docker-Content-Digest": DIGEST}, b""),
        ("GET", PATH): (200, {"Content-Type": OCI_MANIFEST}, MANIFEST),
        ("GET", f"/v2/team/app/blobs/{BLOB}"): (200, {}, b"x" * 10),
        ("HEAD", f"/v2/team/app/blobs/{BLOB}"): (307, {"Location": "/cdn/blob"}, b""),
        ("GET", "/cdn/blob"): (200, {"Content-Length": "10"}, b"x" * 10),
        ("GET", f"/v2/team/app/blobs/{config_digest}"): (200, {}, config),
        ("GET", REFERRERS): (200, {}, json.dumps(index).encode()),
        ("GET", "/v2/team/app/tags/list"): (200, {}, b'{"tags": ["a"]}'),
    }
    for key, answer in routes.items():
        scripted.routes[key] = after_503(answer)
    assert fetcher.head_manifest(repo, "1", ALL) == DIGEST
    assert fetcher.get_manifest(repo, "1", ALL).digest == DIGEST
    answer = fetcher.blob(repo, BLOB)
    assert answer.size == 10
    answer.body.close()
    assert fetcher.blob_size(repo, BLOB) == 10
    assert fetcher.small_blob(repo, config_digest, 1000, "image config") == config
    assert fetcher.referrers(repo, BLOB) == index
    assert fetcher.tags(repo, None, None) == (["a"], None)
    assert [(m, p.split("?")[0]) for m, p, _h in scripted.seen] == [
        (method, path) for method, path in routes for _attempt in (1, 2)
    ]


def test_a_manifest_without_media_type_takes_the_upstreams_content_type(scripted, repo, fetcher):
    docker = "application/vnd.docker.distribution.manifest.v2+json"
    body = json.dumps({k: v for k, v in json.loads(MANIFEST).items() if k != "mediaType"})
    scripted.routes["GET", PATH] = lambda h: (200, {"Content-Type": docker}, body.encode())
    assert fetcher.get_manifest(repo, "1", ALL).media_type == docker


def test_a_document_of_no_known_shape_without_content_type_has_no_type(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {}, b'{"some": "thing"}')
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.message == (
        "upstream registry stub sent a document of media type '' where an image manifest or "
        "index belongs"
    )


def test_an_oversized_manifest_is_named(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (200, {}, b" " * (MAX_MANIFEST_BYTES + 1))
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert error.message == (
        f"upstream registry stub sent a manifest larger than the limit of {MAX_MANIFEST_BYTES} "
        "bytes"
    )


def test_a_rate_limit_without_retry_after_tells_no_delay(scripted, repo, fetcher):
    scripted.routes["GET", PATH] = lambda h: (429, {}, b"")
    error = error_of(fetcher.get_manifest, repo, "1", ALL)
    assert (error.code, error.status, error.headers) == ("TOOMANYREQUESTS", 429, {})


def test_a_blob_may_be_sent_to_an_https_location(scripted, repo, fetcher):
    target = "https://cdn.example.com/blob?sig=abc"
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": target},
        b"",
    )
    assert fetcher.blob(repo, BLOB).location == target


class Reachable:
    """Reaches the scripted upstream on loopback for a registry named in a path (whose own
    connections the guard would refuse there): what it hands out is judged as that registry's."""

    def __init__(self, url: str) -> None:
        self.transport = Transport()
        self.loopback = Registry("stub", url, trusted=True)

    def request(self, repo, method, path, headers=None, **kwargs):
        return self.transport.request(
            Repository(self.loopback, repo.path), method, path, headers, **kwargs
        )


def test_a_registry_named_in_a_path_sends_clients_only_to_public_addresses(scripted):
    public = Repository(Registry("stub", scripted.url, trusted=False), "team/app")
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "http://10.0.0.5/blob"},
        b"",
    )
    error = error_of(Fetcher(Reachable(scripted.url)).blob, public, BLOB)
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message.startswith(
        f"upstream registry stub redirected blob {BLOB} to 10.0.0.5, which is not a public address"
    )


def test_a_blob_size_behind_an_invalid_redirect_is_named(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        307,
        {"Location": "ftp://cdn.example/blob"},
        b"",
    )
    error = error_of(fetcher.blob_size, repo, BLOB)
    assert error.message == "upstream registry stub sent an invalid redirect"


def test_a_blob_size_of_an_invalid_length_is_named(scripted, repo, fetcher):
    scripted.routes["HEAD", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        200,
        [("Content-Length", "-1")],
        b"",
    )
    error = error_of(fetcher.blob_size, repo, BLOB)
    assert error.message == "upstream registry stub sent an invalid Content-Length"


def test_an_oversized_small_blob_is_named(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (200, {}, b"x" * 1001)
    error = error_of(fetcher.small_blob, repo, BLOB, 1000, "image config")
    assert error.message == (
        "upstream registry stub sent a image config larger than the limit of 1000 bytes"
    )


def test_the_rest_of_a_blob_that_breaks_off_is_named(scripted, repo, fetcher):
    scripted.routes["GET", f"/v2/team/app/blobs/{BLOB}"] = lambda h: (
        206,
        {"Content-Range": "bytes 100-999/1000", "Content-Length": "900", "Connection": "close"},
        drip(b"x", 0),
    )
    answer = fetcher.blob(repo, BLOB, start=100)
    error = error_of(lambda: b"".join(answer.body.chunks(1000, lambda: too_large_never())))
    assert error.message.startswith("upstream registry stub broke off while sending a blob")


def test_tag_lists_follow_redirects(scripted, repo, fetcher):
    scripted.routes["GET", "/v2/team/app/tags/list"] = lambda h: (307, {"Location": "/cdn/t"}, b"")
    scripted.routes["GET", "/cdn/t"] = lambda h: (200, {}, b'{"tags": ["a", "b"]}')
    assert fetcher.tags(repo, None, None) == (["a", "b"], None)
