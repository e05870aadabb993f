"""The referrers API: answers built from untrusted upstream indexes, and the fetch of them.

A scripted upstream on 127.0.0.1 plays a registry with the referrers API, one without it
(its `sha256-<hex>` tag schema instead) and one that misbehaves.
"""

from __future__ import annotations

import json

import pytest

from answers import referrers_reply
from ociwrap.names.reference import Registry, Repository
from ociwrap.registry.referrers import clean_descriptor, descriptors_of, referrers_of
from ociwrap.registry.results import Referrers
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DIGEST = "sha256:" + "ab" * 32
SUBJECT = "sha256:" + "cd" * 32
GOOD = {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 10, "artifactType": "a/b"}


@pytest.mark.parametrize(
    "entry",
    [
        "x",
        {**GOOD, "mediaType": 5},
        {**GOOD, "mediaType": ""},
        {**GOOD, "mediaType": "a/b; charset=x"},
        {**GOOD, "mediaType": "a/\x00b"},
        {**GOOD, "digest": "sha256:12"},
        {**GOOD, "digest": None},
        {**GOOD, "size": "10"},
        {**GOOD, "size": -1},
        {**GOOD, "size": True},
        {**GOOD, "size": 1.5},
    ],
)
def test_malformed_descriptors_are_dropped(entry):
    assert clean_descriptor(entry) is None


def test_a_descriptor_keeps_only_what_a_descriptor_may_say():
    entry = {
        **GOOD,
        "urls": ["http://169.254.169.254/"],
        "annotations": {"org.example": "yes", "bad": 5, "": "empty key", "long": "x" * 1025},
        "data": "AAAA",
    }
    assert clean_descriptor(entry) == {**GOOD, "annotations": {"org.example": "yes"}}
    assert clean_descriptor({**GOOD, "artifactType": 7}) == {
        "mediaType": OCI_MANIFEST,
        "digest": DIGEST,
        "size": 10,
    }
    assert "annotations" not in clean_descriptor({**GOOD, "annotations": {"k": 1}})
    assert clean_descriptor({**GOOD, "size": 0})["size"] == 0


def test_indexes_are_read_bounded():
    assert descriptors_of(None) == []
    assert descriptors_of({"manifests": {}}) == []
    assert descriptors_of([GOOD]) == []
    assert descriptors_of({"manifests": ["x", GOOD]}) == [GOOD]
    assert len(descriptors_of({"manifests": [GOOD] * 1001})) == 1000


def test_the_answer_and_its_filter():
    both = [GOOD, {**GOOD, "artifactType": "c/d"}]
    assert referrers_of(both, None) == Referrers(tuple(both), filtered=False)
    assert referrers_of(both, "c/d") == Referrers((both[1],), filtered=True)
    reply = referrers_reply(referrers_of(both, None), head=False)
    assert reply.status == 200
    assert reply.headers["Content-Type"] == OCI_INDEX
    assert "OCI-Filters-Applied" not in reply.headers
    index = json.loads(reply.body)
    assert index == {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [GOOD, {**GOOD, "artifactType": "c/d"}],
    }
    assert int(reply.headers["Content-Length"]) == len(reply.body)
    filtered = referrers_reply(referrers_of(both, "c/d"), head=False)
    assert json.loads(filtered.body)["manifests"] == [{**GOOD, "artifactType": "c/d"}]
    assert filtered.headers["OCI-Filters-Applied"] == "artifactType"
    head = referrers_reply(referrers_of(both, "c/d"), head=True)
    assert head.body == b"" and head.headers == filtered.headers  # the GET's length kept


# -- the upstream's referrers ----------------------------------------------------------------


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


def test_an_upstream_with_the_referrers_api(scripted, repo):
    body = json.dumps({"schemaVersion": 2, "manifests": [GOOD, {"junk": 1}]}).encode()
    scripted.routes["GET", f"/v2/team/app/referrers/{SUBJECT}"] = lambda h: (
        200,
        {"Content-Type": OCI_INDEX},
        body,
    )
    document = Fetcher(Transport()).referrers(repo, SUBJECT)
    assert descriptors_of(document) == [GOOD]
    [(_, path, headers)] = scripted.seen
    assert path == f"/v2/team/app/referrers/{SUBJECT}"
    assert headers["Accept"] == OCI_INDEX


def test_an_upstream_without_it_says_so_with_none(scripted, repo):
    assert Fetcher(Transport()).referrers(repo, SUBJECT) is None


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (500, b"", "UNAVAILABLE"),
        (200, b"{not json", "UNAVAILABLE"),
        (200, b"x" * (4 * 1024 * 1024 + 1), "UNAVAILABLE"),
    ],
)
def test_a_misbehaving_upstream_is_an_upstream_failure(scripted, repo, status, body, code):
    scripted.routes["GET", f"/v2/team/app/referrers/{SUBJECT}"] = lambda h: (status, {}, body)
    with pytest.raises(RegistryError) as caught:
        Fetcher(Transport()).referrers(repo, SUBJECT)
    assert caught.value.code == code


def test_descriptor_text_boundaries():
    annotations = {f"k{n}": "v" for n in range(65)}
    kept = clean_descriptor({**GOOD, "annotations": annotations})["annotations"]
    assert list(kept) == [f"k{n}" for n in range(64)]
    longest = "x" * 1024
    entry = clean_descriptor({**GOOD, "artifactType": longest, "annotations": {"k": longest}})
    assert entry["artifactType"] == longest and entry["annotations"] == {"k": longest}
    assert clean_descriptor({**GOOD, "artifactType": "x" * 1025}).get("artifactType") is None
    assert clean_descriptor({**GOOD, "annotations": {"k" * 1024: "v"}})["annotations"]
    assert clean_descriptor({**GOOD, "mediaType": "x"})["mediaType"] == "x"


def test_the_answer_is_compact_json():
    reply = referrers_reply(referrers_of([GOOD], None), head=False)
    assert reply.body == (
        b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",'
        b'"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",'
        b'"digest":"' + DIGEST.encode() + b'","size":10,"artifactType":"a/b"}]}'
    )
