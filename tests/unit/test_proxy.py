"""Pull-through names: manifests by tag and digest, tag pages and referrers, as a client
pulls them through the handler from an upstream in memory (aliased `stub`)."""

from __future__ import annotations

import json

import pytest

from doubles.bucket import MemoryBucket
from doubles.pulls import DOCKER_MANIFEST, OCI_INDEX, OCI_MANIFEST, error_of, manifest, pulls
from doubles.upstream import MemoryUpstream
from ociwrap.names.reference import Repository
from ociwrap.runtime import errors

ARTIFACT = "application/vnd.example.sbom"


class IgnoresPaging(MemoryUpstream):
    """An upstream that ignores `n` and `last` (registry 2.x): every tag, unsorted. It
    remembers the `n` of each tag request and the Accept of each manifest request."""

    def __init__(self) -> None:
        super().__init__()
        self.sizes: list[int | None] = []
        self.accepts: list[tuple[str, ...]] = []

    def tags(self, repo: Repository, n: int | None, last: str | None):
        self._call("tags", repo, last or "")
        self.sizes.append(n)
        return list(self.tag_lists[repo.path]), None

    def get_manifest(self, repo: Repository, ref: str, accept):
        self.accepts.append(tuple(accept))
        return super().get_manifest(repo, ref, accept)


@pytest.fixture
def upstream() -> MemoryUpstream:
    return IgnoresPaging()


@pytest.fixture
def call(monkeypatch, on_doubles, upstream):
    return pulls(monkeypatch, on_doubles, upstream, MemoryBucket())


def tags(call, query: str) -> tuple[int, dict[str, str], dict]:
    status, headers, body = call("GET", f"/v2/stub/team/base/tags/list{query}")
    return status, headers, json.loads(body)


# -- manifests -------------------------------------------------------------------------


def test_a_tag_whose_type_the_client_accepts_is_served_by_digest(call, upstream):
    digest, body = manifest(call, "stub/team/base", "1", OCI_MANIFEST)
    assert body == upstream.manifests["team/base", "1"][0]
    assert upstream.count("get_manifest", "1") == 0  # a HEAD, then the bytes by digest
    assert upstream.count("get_manifest", digest) == 1
    assert manifest(call, "stub/team/base", "1", OCI_MANIFEST) == (digest, body)
    assert upstream.count("get_manifest", digest) == 1  # held, and linked to the repository


def test_a_client_that_accepts_another_type_gets_the_upstreams_answer_to_its_accept(call, upstream):
    _, body = manifest(call, "stub/team/base", "1", DOCKER_MANIFEST)
    assert body == upstream.manifests["team/base", "1"][0]
    assert upstream.count("get_manifest", "1") == 1  # asked by tag, with the client's Accept
    assert upstream.accepts[-1] == (DOCKER_MANIFEST,)


def test_a_manifest_by_digest_is_fetched_once_and_then_held(call, upstream):
    digest = upstream.push("team/app", b'{"schemaVersion":2,"layers":[]}')
    for _ in range(2):
        status, headers, _ = call("GET", f"/v2/stub/team/app/manifests/{digest}")
        assert status == 200 and headers["docker-content-digest"] == digest
        assert headers["content-type"] == OCI_MANIFEST
    assert upstream.count("get_manifest", digest) == 1


# -- blobs ---------------------------------------------------------------------------------


def test_a_blob_is_a_redirect_to_its_copy_and_a_head_its_size(call, upstream):
    body = json.loads(upstream.manifests["team/base", "1"][0])
    layer = body["layers"][0]
    status, headers, _ = call("GET", f"/v2/stub/team/base/blobs/{layer['digest']}")
    assert status == 307 and f"/blobs/sha256/{layer['digest'][7:]}" in headers["location"]
    assert [(c.path, c.ref) for c in upstream.calls] == [("team/base", layer["digest"])]
    config = body["config"]
    status, headers, _ = call("HEAD", f"/v2/stub/team/base/blobs/{config['digest']}")
    assert status == 200 and headers["content-length"] == str(config["size"])
    assert (upstream.calls[-1].path, upstream.calls[-1].ref) == ("team/base", config["digest"])


# -- tags ----------------------------------------------------------------------------------


def test_tags_of_an_upstream_that_ignores_paging_are_paged_here(call, upstream):
    upstream.tag_lists["team/base"] = ["c", "a", "d", "b"]
    status, headers, page = tags(call, "?n=2")
    assert (status, page) == (200, {"name": "stub/team/base", "tags": ["a", "b"]})
    assert headers["link"] == '</v2/stub/team/base/tags/list?n=2&last=b>; rel="next"'
    status, headers, page = tags(call, "?n=2&last=b")
    assert page["tags"] == ["c", "d"] and "link" not in headers
    assert upstream.calls[-1].ref == "b"  # `last` is forwarded, whatever the upstream does
    assert upstream.sizes == [2, 2]  # and so is `n`


def test_a_page_of_exactly_the_remaining_tags_has_no_next_page(call, upstream):
    upstream.tag_lists["team/base"] = ["b", "a"]
    _, headers, page = tags(call, "?n=2")
    assert page["tags"] == ["a", "b"] and "link" not in headers
    _, headers, page = tags(call, "?n=1")
    assert page["tags"] == ["a"] and headers["link"].endswith('?n=1&last=a>; rel="next"')


def test_tags_after_last_without_n_are_all_the_rest(call, upstream):
    upstream.tag_lists["team/base"] = ["c", "a", "b"]
    _, headers, page = tags(call, "?last=a")
    assert page["tags"] == ["b", "c"] and "link" not in headers
    _, _, page = tags(call, "")
    assert page["tags"] == ["a", "b", "c"]


def test_a_page_of_none_is_empty(call, upstream):
    upstream.tag_lists["team/base"] = ["a"]
    status, headers, page = tags(call, "?n=0")
    assert (status, page["tags"]) == (200, []) and "link" not in headers


@pytest.mark.parametrize("n", ["999999", "000001"])
def test_a_page_size_of_up_to_six_digits_is_a_number(call, upstream, n):
    upstream.tag_lists["team/base"] = ["a", "b"]
    status, _, page = tags(call, f"?n={n}")
    assert status == 200 and page["tags"] == (["a", "b"] if n == "999999" else ["a"])


@pytest.mark.parametrize("n", ["1000000", "-1", "1.5", "x", "\u0663", " 1", ""])
def test_a_page_size_that_is_no_number_is_pagination_number_invalid(call, upstream, n):
    upstream.tag_lists["team/base"] = ["a"]
    status, _, body = call("GET", f"/v2/stub/team/base/tags/list?n={n}")
    error = error_of(body)
    assert (status, error["code"]) == (400, "PAGINATION_NUMBER_INVALID")
    assert error["message"] == f"invalid number of results requested: {n[:20]!r}"
    assert error["detail"] == {"n": n[:20]}


def test_a_long_page_size_is_quoted_cut_short(call, upstream):
    upstream.tag_lists["team/base"] = ["a"]
    n = "9" * 30
    status, _, body = call("GET", f"/v2/stub/team/base/tags/list?n={n}")
    error = error_of(body)
    assert status == 400 and error["detail"] == {"n": "9" * 20}
    assert error["message"] == f"invalid number of results requested: {'9' * 20!r}"


# -- referrers -----------------------------------------------------------------------------

SUBJECT = "sha256:" + "cd" * 32
SBOM = {"mediaType": OCI_MANIFEST, "digest": "sha256:" + "ef" * 32, "size": 7}


def referrers(call, query: str = "") -> tuple[int, dict[str, str], dict]:
    status, headers, body = call("GET", f"/v2/stub/team/base/referrers/{SUBJECT}{query}")
    return status, headers, json.loads(body)


def test_referrers_of_an_upstream_with_the_referrers_api(call, upstream):
    upstream.referrer_indexes["team/base", SUBJECT] = {"manifests": [SBOM]}
    status, headers, index = referrers(call)
    assert status == 200 and headers["content-type"] == OCI_INDEX
    assert index["manifests"] == [SBOM]
    assert upstream.count("get_manifest") == 0


def test_referrers_of_an_upstream_without_the_api_come_from_its_referrers_tag(call, upstream):
    tagged = {**SBOM, "artifactType": ARTIFACT}
    body = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [tagged]})
    upstream.push("team/base", body.encode(), "sha256-" + "cd" * 32, media_type=OCI_INDEX)
    _, headers, index = referrers(call)
    assert index["manifests"] == [tagged] and "oci-filters-applied" not in headers
    assert upstream.accepts == [(OCI_INDEX,)]
    _, headers, index = referrers(call, f"?artifactType={ARTIFACT}")
    assert index["manifests"] == [tagged] and headers["oci-filters-applied"] == "artifactType"
    _, _, index = referrers(call, "?artifactType=application/other")
    assert index["manifests"] == []


@pytest.mark.parametrize("failure", [404, errors.name_unknown("no such repository")])
def test_an_upstream_without_referrers_or_their_tag_has_none(call, upstream, failure):
    upstream.fail(failure, "get_manifest")
    status, _, index = referrers(call)
    assert (status, index["manifests"]) == (200, [])


def test_an_upstream_refusing_the_referrers_tag_is_a_refusal(call, upstream):
    upstream.fail(401, "get_manifest")
    status, _, body = call("GET", f"/v2/stub/team/base/referrers/{SUBJECT}")
    assert (status, error_of(body)["code"]) == (401, "UNAUTHORIZED")


def test_an_upstream_failing_to_answer_for_the_referrers_tag_is_an_error(call, upstream):
    upstream.fail(503, "get_manifest")
    status, _, body = call("GET", f"/v2/stub/team/base/referrers/{SUBJECT}")
    assert status >= 500 and error_of(body)["code"] == "UNAVAILABLE"
