"""Where records live in the bucket, and which tag records are believed.

Record keys are the bucket's layout: a deploy that spelled one differently would no longer
find what earlier deploys stored (a pinned composed digest, a revoked token), so the keys
here are written out in full, as the bucket holds them.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from ociwrap.bucket.records import (
    COMPOSITION_VERSION,
    TagRecord,
    attestation_key,
    composition_key,
    link_key,
    provenance_key,
    signature_key,
    source_key,
    tag_record_key,
    token_key,
)
from ociwrap.image.recipes import Overrides, Recipe
from ociwrap.names.reference import ImageRef, Registry, Repository

HEX = "a" * 64
DIGEST = f"sha256:{HEX}"
OTHER = "sha256:" + "b" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_HUB = Registry("docker.io", "https://registry-1.docker.io")
LOCAL = Registry("local", "http://127.0.0.1:5001", trusted=True)
BUSYBOX = Repository(DOCKER_HUB, "library/busybox")
TOOLS = Repository(LOCAL, "team/tools")


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# -- keys ---------------------------------------------------------------------------------


def test_a_tag_record_is_kept_under_the_host_the_upstream_is_reached_at():
    assert (
        tag_record_key(ImageRef(BUSYBOX, tag="1.36"))
        == "tags/upstream/registry-1.docker.io/library/busybox/1.36.json"
    )
    # an alias is stored under the host and port it names, not under the alias
    tools = tag_record_key(ImageRef(TOOLS, tag="v1"))
    assert tools == "tags/upstream/127.0.0.1:5001/team/tools/v1.json"


def test_a_url_with_a_path_is_split_at_its_scheme_only():
    mirror = Registry("corp", "https://r.corp.example/v2-proxy://x")
    assert link_key(Repository(mirror, "a/b"), DIGEST) == (
        f"tags/links/r.corp.example/v2-proxy://x/a/b/{HEX}.json"
    )


def test_links_sources_tokens_and_signatures_have_their_own_keys():
    busybox = link_key(BUSYBOX, DIGEST)
    assert busybox == f"tags/links/registry-1.docker.io/library/busybox/{HEX}.json"
    assert link_key(TOOLS, DIGEST) == f"tags/links/127.0.0.1:5001/team/tools/{HEX}.json"
    assert source_key("scope1", DIGEST) == f"tags/sources/scope1/{HEX}.json"
    assert token_key("abc123") == "tokens/abc123.json"
    reference = "registry.example.com/wrap/busybox/1/with/tools/1"
    assert signature_key("key9", reference, DIGEST) == (
        f"tags/signatures/key9/{sha(reference)[:40]}/{HEX}.json"
    )
    assert provenance_key(DIGEST) == f"tags/provenance/{HEX}.json"
    assert attestation_key("key9", reference, DIGEST) == (
        f"tags/attestations/key9/{sha(reference)[:40]}/{HEX}.json"
    )


#: The scope of the wrap of busybox:1 with tools:1: sha256 of "<base>|<wrapper>", 40 digits.
WRAP_SCOPE = sha("docker.io/library/busybox:1|local/team/tools:1")[:40]


def recipe(**changes) -> Recipe:
    fields = {
        "name": "wrap/busybox/1/with/tools/1",
        "scope": WRAP_SCOPE,
        "base": ImageRef(BUSYBOX, tag="1"),
        "wrappers": (ImageRef(TOOLS, tag="1"),),
    }
    fields.update(changes)
    return Recipe(**fields)


def test_a_wrap_paths_composition_is_found_under_the_key_it_always_had():
    identity = f"1|docker.io/library/busybox:1|{DIGEST}|local/team/tools:1|{OTHER}"
    assert COMPOSITION_VERSION == 1
    assert composition_key(recipe(), DIGEST, [OTHER]) == f"tags/compositions/{sha(identity)}.json"


def test_a_token_asking_what_a_wrap_path_says_is_keyed_by_its_own_scope():
    identity = json.dumps(
        [
            1,
            "docker.io/library/busybox:1",
            DIGEST,
            [["local/team/tools:1", OTHER]],
            [None, None, [], [], None, None, None],
            "token-abc",
        ]
    )
    key = composition_key(recipe(scope="token-abc"), DIGEST, [OTHER])
    assert key == f"tags/compositions/{sha(identity)}.json"


def test_a_tokens_composition_is_keyed_by_everything_it_asked_for():
    overrides = Overrides(
        entrypoint=("/bin/sh",),
        cmd=("-c", "true"),
        env=(("A", "1"),),
        labels=(("l", "v"),),
        working_dir="/w",
        user="1000",
        platforms=("linux/amd64",),
    )
    identity = json.dumps(
        [
            1,
            "docker.io/library/busybox:1",
            DIGEST,
            [["local/team/tools:1", OTHER]],
            [
                ["/bin/sh"],
                ["-c", "true"],
                [["A", "1"]],
                [["l", "v"]],
                "/w",
                "1000",
                ["linux/amd64"],
            ],
            "token-abc",
        ]
    )
    key = composition_key(recipe(overrides=overrides, scope="token-abc"), DIGEST, [OTHER])
    assert key == f"tags/compositions/{sha(identity)}.json"


def test_two_wrappers_are_keyed_in_their_order_with_their_digests():
    wrappers = (ImageRef(TOOLS, tag="1"), ImageRef(BUSYBOX, tag="2"))
    identity = json.dumps(
        [
            1,
            "docker.io/library/busybox:1",
            DIGEST,
            [["local/team/tools:1", OTHER], ["docker.io/library/busybox:2", DIGEST]],
            [None, None, [], [], None, None, None],
            "token-abc",
        ]
    )
    two = recipe(wrappers=wrappers, scope="token-abc")
    assert (
        composition_key(two, DIGEST, [OTHER, DIGEST]) == f"tags/compositions/{sha(identity)}.json"
    )
    with pytest.raises(ValueError):
        composition_key(two, DIGEST, [OTHER])


# -- tag records ----------------------------------------------------------------------------


def test_a_tag_record_is_fresh_until_it_expires_and_stale_for_a_while_after():
    record = TagRecord(DIGEST, OCI_MANIFEST, 1000.0)
    assert record.fresh(999.9) and not record.fresh(1000.0)
    assert record.usable_stale(1059.9, 60) and not record.usable_stale(1060.0, 60)


def test_a_tag_record_reads_back_what_it_wrote():
    record = TagRecord(DIGEST, OCI_MANIFEST, 1000.5)
    written = record.to_json()
    assert written == {"digest": DIGEST, "mediaType": OCI_MANIFEST, "expires": 1000.5}
    assert TagRecord.from_json(json.loads(json.dumps(written))) == record
    whole = TagRecord.from_json({"digest": DIGEST, "mediaType": OCI_MANIFEST, "expires": 7})
    assert whole == TagRecord(DIGEST, OCI_MANIFEST, 7.0)
    assert isinstance(whole.expires, float)


@pytest.mark.parametrize(
    "value",
    [
        None,
        [DIGEST, OCI_MANIFEST, 1],
        {"mediaType": OCI_MANIFEST, "expires": 1},
        {"digest": 5, "mediaType": OCI_MANIFEST, "expires": 1},
        {"digest": "sha256:short", "mediaType": OCI_MANIFEST, "expires": 1},
        {"digest": DIGEST, "expires": 1},
        {"digest": DIGEST, "mediaType": "application/vnd.oci.image.config.v1+json", "expires": 1},
        {"digest": DIGEST, "mediaType": OCI_MANIFEST},
        {"digest": DIGEST, "mediaType": OCI_MANIFEST, "expires": "1"},
        {"digest": DIGEST, "mediaType": OCI_MANIFEST, "expires": float("nan")},
        {"digest": DIGEST, "mediaType": OCI_MANIFEST, "expires": float("inf")},
    ],
)
def test_anything_else_in_a_tag_record_is_treated_as_absent(value):
    assert TagRecord.from_json(value) is None


@pytest.mark.parametrize(
    "media_type",
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ],
)
def test_every_servable_manifest_type_is_believed(media_type):
    assert TagRecord.from_json({"digest": DIGEST, "mediaType": media_type, "expires": 1}) == (
        TagRecord(DIGEST, media_type, 1.0)
    )
