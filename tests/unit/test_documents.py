"""Manifests, indexes and configs are checked once, when parsed: every required field wrong in
turn is a 400 `invalid upstream image format` naming the image and the reason, never a 500."""

from __future__ import annotations

import copy

import pytest

from ociwrap.image.documents import (
    Descriptor,
    ImageIndex,
    check_digests,
    is_index,
    parse_config,
    parse_descriptor,
    parse_document,
    parse_image,
    parse_index,
    parse_manifest,
    string_list,
)
from ociwrap.image.platforms import Platform
from ociwrap.runtime.errors import RegistryError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def digest(n: int) -> str:
    return f"sha256:{n:064x}"


def layer(n: int) -> dict:
    return {"mediaType": LAYER, "digest": digest(n), "size": 100 + n}


MANIFEST = {
    "schemaVersion": 2,
    "mediaType": OCI_MANIFEST,
    "config": {"mediaType": OCI_CONFIG, "digest": digest(1000), "size": 500},
    "layers": [layer(1), layer(2)],
}
CONFIG = {
    "architecture": "arm",
    "os": "linux",
    "variant": "v7",
    "config": {"Env": ["A=1"], "Entrypoint": ["/run"], "Labels": {"k": "v"}},
    "rootfs": {"type": "layers", "diff_ids": [digest(11), digest(12)]},
}


def entry(n: int, os: str = "linux", arch: str = "amd64", **extra) -> dict:
    return {
        "mediaType": OCI_MANIFEST,
        "digest": digest(n),
        "size": 1000 + n,
        "platform": {"os": os, "architecture": arch},
        **extra,
    }


ATTESTATION = {
    "mediaType": OCI_MANIFEST,
    "digest": digest(99),
    "size": 840,
    "annotations": {"vnd.docker.reference.type": "attestation-manifest"},
    "platform": {"os": "unknown", "architecture": "unknown"},
}


def reason_of(call, *args, role: str = "base") -> str:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    error = caught.value
    assert (error.code, error.status, error.message) == (
        "MANIFEST_INVALID",
        400,
        "invalid upstream image format",
    )
    assert set(error.detail) == {"image", "reason"}
    assert error.detail["image"] == role
    return error.detail["reason"]


def changed(document: dict, path: tuple, value: object = ...) -> dict:
    """A copy of `document` with the field at `path` set to `value` (removed for `...`)."""
    document = copy.deepcopy(document)
    *parents, last = path
    target = document
    for key in parents:
        target = target[key]
    if value is ...:
        del target[last]
    else:
        target[last] = value
    return document


# -- descriptors ---------------------------------------------------------------------------


def test_a_descriptor_keeps_its_json():
    raw = {**layer(7), "urls": ["https://example.com/x"], "annotations": {"a": "b"}}
    parsed = parse_descriptor(raw, "base", "layer 1")
    assert (parsed.media_type, parsed.digest, parsed.size) == (LAYER, digest(7), 107)
    assert parsed.raw is raw
    assert parse_descriptor({**layer(1), "size": 0}, "base", "layer 1").size == 0
    other = parse_descriptor({**layer(1), "digest": "sha512:" + "ab" * 64}, "base", "x")
    assert other.digest == "sha512:" + "ab" * 64


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "layer 2 is not a descriptor object"),
        ([], "layer 2 is not a descriptor object"),
        ("sha256:x", "layer 2 is not a descriptor object"),
        (changed(layer(1), ("mediaType",)), "layer 2 has no mediaType"),
        (changed(layer(1), ("mediaType",), ""), "layer 2 has no mediaType"),
        (changed(layer(1), ("mediaType",), 5), "layer 2 has no mediaType"),
        (changed(layer(1), ("digest",)), "layer 2 has no valid digest"),
        (changed(layer(1), ("digest",), 5), "layer 2 has no valid digest"),
        (changed(layer(1), ("digest",), "not-a-digest"), "layer 2 has no valid digest"),
        (changed(layer(1), ("digest",), ""), "layer 2 has no valid digest"),
        (changed(layer(1), ("size",)), "layer 2 has no valid size"),
        (changed(layer(1), ("size",), "100"), "layer 2 has no valid size"),
        (changed(layer(1), ("size",), True), "layer 2 has no valid size"),
        (changed(layer(1), ("size",), -1), "layer 2 has no valid size"),
        (changed(layer(1), ("size",), 1.5), "layer 2 has no valid size"),
        (changed(layer(1), ("size",), None), "layer 2 has no valid size"),
    ],
)
def test_each_descriptor_field_wrong_in_turn(value, reason):
    assert reason_of(parse_descriptor, value, "wrapper", "layer 2", role="wrapper") == reason


HEX = "ab" * 32
DIGESTS_OF_NO_ALGORITHM = [
    ("sha256:" + HEX.upper(), "not a valid sha256 digest (64 lowercase hex characters)"),
    ("sha256:" + HEX[:-1], "not a valid sha256 digest (64 lowercase hex characters)"),
    ("sha256:" + HEX[:-1] + "g", "not a valid sha256 digest (64 lowercase hex characters)"),
    ("sha256:" + HEX + "ab", "not a valid sha256 digest (64 lowercase hex characters)"),
    ("sha512:" + HEX, "not a valid sha512 digest (128 lowercase hex characters)"),
    ("md5:" + HEX[:32], "not a digest of a supported algorithm (sha256, sha512)"),
    ("sha384:" + "ab" * 48, "not a digest of a supported algorithm (sha256, sha512)"),
]


@pytest.mark.parametrize(("digest", "problem"), DIGESTS_OF_NO_ALGORITHM)
def test_a_descriptor_digest_must_be_valid_for_its_algorithm(digest, problem):
    reason = reason_of(parse_descriptor, changed(layer(1), ("digest",), digest), "base", "layer 3")
    assert reason == f"layer 3 has digest {digest!r}: {problem}"


@pytest.mark.parametrize(("digest", "problem"), DIGESTS_OF_NO_ALGORITHM)
def test_every_descriptor_of_a_document_is_checked_before_it_is_kept(digest, problem):
    where = "docker.io/library/busybox@" + digest_of_nothing()
    for path, what in (
        (("layers", 1, "digest"), "layer 2"),
        (("config", "digest"), "config"),
        (("subject", "digest"), "subject"),
    ):
        document = changed({**MANIFEST, "subject": layer(9)}, path, digest)
        with pytest.raises(RegistryError) as caught:
            check_digests(document, where)
        error = caught.value
        assert (error.code, error.status) == ("MANIFEST_INVALID", 400)
        assert error.message == f"{what} of {where} has digest {digest!r}: {problem}"
        assert error.detail == {"manifest": where, "descriptor": what, "reason": problem}
    index = {"schemaVersion": 2, "manifests": [entry(1), entry(2, digest=digest)]}
    with pytest.raises(RegistryError) as caught:
        check_digests(index, where)
    assert caught.value.message.startswith(f"index entry 2 of {where} has digest")


def digest_of_nothing() -> str:
    return "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_documents_with_valid_digests_pass_and_other_shapes_are_left_to_parsing():
    check_digests({**MANIFEST, "subject": layer(9)}, "x")
    check_digests({"schemaVersion": 2, "manifests": [entry(1), entry(2)]}, "x")
    check_digests({"layers": [layer(1) | {"digest": "sha512:" + "ab" * 64}]}, "x")
    check_digests({"layers": "not a list", "config": None, "manifests": [5]}, "x")
    check_digests([1, 2], "x")
    with pytest.raises(RegistryError) as caught:
        check_digests({"layers": [{"mediaType": LAYER, "size": 1}]}, "x")
    assert caught.value.message == "layer 1 of x has no valid digest: not a string"
    long = "sha256:" + "A" * 300
    with pytest.raises(RegistryError) as caught:
        check_digests({"layers": [layer(1) | {"digest": long}]}, "x")
    assert repr(long[:139] + "…") in caught.value.message and len(caught.value.message) < 250


def test_descriptor_platform_and_attestation():
    parsed = parse_descriptor(
        entry(
            1, "linux", "arm64", platform={"os": "linux", "architecture": "arm64", "variant": "v8"}
        ),
        "base",
        "index entry 1",
    )
    assert parsed.platform == Platform("linux", "arm64", "v8")
    assert not parsed.is_attestation
    assert parse_descriptor(ATTESTATION, "base", "index entry 2").is_attestation


# -- manifests -----------------------------------------------------------------------------


def test_a_manifest_is_parsed():
    parsed = parse_manifest(MANIFEST, "base")
    assert parsed.media_type == OCI_MANIFEST
    assert parsed.config == Descriptor(OCI_CONFIG, digest(1000), 500, MANIFEST["config"])
    assert [d.digest for d in parsed.layers] == [digest(1), digest(2)]
    docker = {
        **MANIFEST,
        "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": DOCKER_CONFIG, "digest": digest(1000), "size": 500},
    }
    assert parse_manifest(docker, "base").media_type == DOCKER_MANIFEST
    assert parse_manifest(changed(MANIFEST, ("mediaType",)), "base").media_type == OCI_MANIFEST
    assert parse_manifest(changed(MANIFEST, ("layers",), []), "base").layers == ()


ARTIFACT = "application/vnd.oci.artifact.manifest.v1+json"


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (None, "manifest is not a JSON object"),
        ([MANIFEST], "manifest is not a JSON object"),
        (changed(MANIFEST, ("schemaVersion",), 1), "Docker schema 1 manifests are not supported"),
        (
            changed(
                MANIFEST,
                ("mediaType",),
                "application/vnd.docker.distribution.manifest.v1+prettyjws",
            ),
            "Docker schema 1 manifests are not supported",
        ),
        (
            changed(
                MANIFEST, ("mediaType",), "application/vnd.docker.distribution.manifest.v1+json"
            ),
            "Docker schema 1 manifests are not supported",
        ),
        (
            {**MANIFEST, "manifests": []},
            "an index was given where a single-image manifest is needed",
        ),
        (
            changed(MANIFEST, ("mediaType",), OCI_INDEX),
            "an index was given where a single-image manifest is needed",
        ),
        (
            changed(MANIFEST, ("mediaType",), DOCKER_LIST),
            "an index was given where a single-image manifest is needed",
        ),
        (
            changed(MANIFEST, ("mediaType",), ARTIFACT),
            f"unsupported manifest media type {ARTIFACT!r}",
        ),
        (
            changed(MANIFEST, ("mediaType",), "x" * 100),
            f"unsupported manifest media type {'x' * 80!r}",
        ),
        (changed(MANIFEST, ("mediaType",), ""), "unsupported manifest media type ''"),
        (changed(MANIFEST, ("mediaType",), 5), "unsupported manifest media type '5'"),
        (changed(MANIFEST, ("schemaVersion",)), "manifest schemaVersion is not 2"),
        (changed(MANIFEST, ("schemaVersion",), 3), "manifest schemaVersion is not 2"),
        (changed(MANIFEST, ("schemaVersion",), "2"), "manifest schemaVersion is not 2"),
        (changed(MANIFEST, ("config",)), "config is not a descriptor object"),
        (changed(MANIFEST, ("config", "digest"), "x"), "config has no valid digest"),
        (changed(MANIFEST, ("config", "size"), -5), "config has no valid size"),
        (changed(MANIFEST, ("config", "mediaType")), "config has no mediaType"),
        (
            changed(MANIFEST, ("config", "mediaType"), "application/vnd.cncf.helm.config.v1+json"),
            "config media type 'application/vnd.cncf.helm.config.v1+json' is not an image config",
        ),
        (
            changed(MANIFEST, ("config", "mediaType"), "c" * 100),
            f"config media type {'c' * 80!r} is not an image config",
        ),
        (changed(MANIFEST, ("layers",)), "manifest has no layers list"),
        (changed(MANIFEST, ("layers",), {"0": layer(1)}), "manifest has no layers list"),
        (changed(MANIFEST, ("layers", 0, "mediaType")), "layer 1 has no mediaType"),
        (changed(MANIFEST, ("layers", 1, "digest"), "sha256"), "layer 2 has no valid digest"),
        (changed(MANIFEST, ("layers", 1), "x"), "layer 2 is not a descriptor object"),
    ],
)
def test_each_manifest_field_wrong_in_turn(document, reason):
    assert reason_of(parse_manifest, document, "base") == reason


@pytest.mark.parametrize(
    ("media_type", "document", "expected"),
    [
        ("", MANIFEST, False),
        (OCI_INDEX, MANIFEST, True),
        (DOCKER_LIST, MANIFEST, True),
        (OCI_MANIFEST, {"manifests": []}, True),
        ("", {"mediaType": DOCKER_LIST}, True),
        ("", {"mediaType": OCI_INDEX}, True),
        ("", {"mediaType": 5, "manifests": {}}, False),
        ("", {"manifests": "x"}, False),
        (OCI_INDEX, None, False),
        (OCI_INDEX, [], False),
    ],
)
def test_is_index(media_type, document, expected):
    assert is_index(document, media_type) is expected


# -- indexes -------------------------------------------------------------------------------


def index_of(*entries: dict, **extra) -> dict:
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": list(entries), **extra}


def test_an_index_is_parsed():
    parsed = parse_index(index_of(entry(1), entry(2, arch="arm64")), "base")
    assert parsed.media_type == OCI_INDEX
    assert [d.digest for d in parsed.manifests] == [digest(1), digest(2)]
    docker = parse_index({**index_of(entry(1)), "mediaType": DOCKER_LIST}, "base")
    assert docker.media_type == DOCKER_LIST
    for missing in (..., "", 5):
        document = changed(index_of(entry(1)), ("mediaType",), missing)
        assert parse_index(document, "base").media_type == OCI_INDEX


@pytest.mark.parametrize("position", [0, 1, 2])
def test_attestations_anywhere_in_an_index_are_not_images(position):
    runnable = [entry(1), entry(2, arch="arm64"), entry(3, arch="s390x")]
    entries = [*runnable]
    entries.insert(position, ATTESTATION)
    images = parse_index(index_of(*entries), "base").images()
    assert [image.digest for image in images] == [digest(1), digest(2), digest(3)]


def test_only_image_manifests_are_images():
    docker = {**entry(4), "mediaType": DOCKER_MANIFEST}
    nested = {**entry(5), "mediaType": OCI_INDEX}
    artifact = {**entry(6), "mediaType": ARTIFACT}
    annotated = {**entry(7), "annotations": {"vnd.docker.reference.type": "attestation-manifest"}}
    parsed = parse_index(index_of(entry(1), nested, docker, artifact, annotated, entry(8)), "w")
    assert [image.digest for image in parsed.images()] == [digest(1), digest(4), digest(8)]
    assert isinstance(parsed, ImageIndex)


def test_an_index_has_at_most_256_entries():
    full = index_of(*(entry(n) for n in range(256)))
    assert len(parse_index(full, "base").manifests) == 256
    over = index_of(*(entry(n) for n in range(257)))
    assert reason_of(parse_index, over, "base") == (
        "index has 257 entries; at most 256 are supported"
    )


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ("index", "manifest is not a JSON object"),
        ({"schemaVersion": 1, "manifests": []}, "Docker schema 1 manifests are not supported"),
        ({"schemaVersion": 2}, "index has no manifests list"),
        ({"schemaVersion": 2, "manifests": {"a": entry(1)}}, "index has no manifests list"),
        (
            index_of(entry(1), entry(2), {"mediaType": OCI_MANIFEST}),
            "index entry 3 has no valid digest",
        ),
        (index_of(changed(entry(1), ("size",))), "index entry 1 has no valid size"),
    ],
)
def test_each_index_field_wrong_in_turn(document, reason):
    assert reason_of(parse_index, document, "wrapper", role="wrapper") == reason


def test_parse_document_tells_manifests_from_indexes():
    assert isinstance(parse_document(index_of(entry(1)), "base"), ImageIndex)
    assert parse_document(MANIFEST, "base").config.digest == digest(1000)
    shaped = changed(index_of(entry(1)), ("mediaType",))
    assert isinstance(parse_document(shaped, "base"), ImageIndex)
    # the media type the upstream answered with counts as much as the document's own
    assert reason_of(parse_document, changed(MANIFEST, ("mediaType",)), "base", OCI_INDEX) == (
        "index has no manifests list"
    )
    assert reason_of(parse_document, {"schemaVersion": 1, "manifests": []}, "base") == (
        "Docker schema 1 manifests are not supported"
    )
    assert reason_of(parse_document, "x", "base") == "manifest is not a JSON object"
    no_layers = changed(MANIFEST, ("layers",))
    assert reason_of(parse_document, no_layers, "wrapper", role="wrapper") == (
        "manifest has no layers list"
    )


# -- configs -------------------------------------------------------------------------------


def test_a_config_is_parsed():
    parsed = parse_config(CONFIG, "base", 2)
    assert parsed.document is CONFIG
    assert parsed.container == CONFIG["config"]
    assert parsed.diff_ids == (digest(11), digest(12))
    assert parsed.labels == {"k": "v"}
    assert parsed.platform == Platform("linux", "arm", "v7")


@pytest.mark.parametrize("container", [None, ...])
def test_a_config_without_container_config_is_empty(container):
    document = changed(CONFIG, ("config",), container)
    parsed = parse_config(document, "base", 2)
    assert parsed.container == {}
    assert parsed.labels == {}


def test_rootfs_type_defaults_to_layers():
    parsed = parse_config(changed(CONFIG, ("rootfs", "type")), "base", 2)
    assert parsed.diff_ids == (digest(11), digest(12))


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        ([CONFIG], "config is not a JSON object"),
        (None, "config is not a JSON object"),
        (changed(CONFIG, ("rootfs",)), "config has no rootfs"),
        (changed(CONFIG, ("rootfs",), ["layers"]), "config has no rootfs"),
        (changed(CONFIG, ("rootfs", "type"), "tree"), "config rootfs type 'tree' is not 'layers'"),
        (
            changed(CONFIG, ("rootfs", "type"), "t" * 60),
            f"config rootfs type {'t' * 40!r} is not 'layers'",
        ),
        (changed(CONFIG, ("rootfs", "type"), None), "config rootfs type 'None' is not 'layers'"),
        (changed(CONFIG, ("rootfs", "diff_ids")), "config has no rootfs.diff_ids list"),
        (changed(CONFIG, ("rootfs", "diff_ids"), "x"), "config has no rootfs.diff_ids list"),
        (
            changed(CONFIG, ("rootfs", "diff_ids"), [digest(1), 2]),
            "config has no rootfs.diff_ids list",
        ),
        (
            changed(CONFIG, ("rootfs", "diff_ids"), [digest(1)]),
            "config lists 1 diff_ids but the manifest has 2 layers",
        ),
        (
            changed(CONFIG, ("rootfs", "diff_ids"), [digest(1)] * 3),
            "config lists 3 diff_ids but the manifest has 2 layers",
        ),
        (changed(CONFIG, ("config",), ["Env"]), "config.config is not a JSON object"),
        (
            changed(CONFIG, ("config", "Entrypoint"), 5),
            "config.Entrypoint is not a list of strings",
        ),
        (
            changed(CONFIG, ("config", "Entrypoint"), ["/a", 1]),
            "config.Entrypoint is not a list of strings",
        ),
        (changed(CONFIG, ("config", "Env"), {"A": "1"}), "config.Env is not a list of strings"),
        (changed(CONFIG, ("config", "Env"), [None]), "config.Env is not a list of strings"),
        (changed(CONFIG, ("config", "Labels"), ["k=v"]), "config.Labels is not a JSON object"),
        (changed(CONFIG, ("config", "Labels"), "k=v"), "config.Labels is not a JSON object"),
    ],
)
def test_each_config_field_wrong_in_turn(document, reason):
    assert reason_of(parse_config, document, "wrapper", 2, role="wrapper") == reason


def test_labels_may_be_null():
    parsed = parse_config(changed(CONFIG, ("config", "Labels"), None), "base", 2)
    assert parsed.labels == {}


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, []), ("/bin/sh -c x", ["/bin/sh -c x"]), ([], []), (["a", "b=c"], ["a", "b=c"])],
)
def test_string_lists(value, expected):
    assert string_list("base", "Env", value) == expected


@pytest.mark.parametrize("value", [5, ["a", 5], {"a": "b"}, [["a"]]])
def test_string_lists_refuse_anything_else(value):
    assert reason_of(string_list, "wrapper", "Cmd", value, role="wrapper") == (
        "config.Cmd is not a list of strings"
    )


def test_a_string_list_is_a_copy():
    value = ["a"]
    copied = string_list("base", "Env", value)
    copied.append("b")
    assert value == ["a"]


def test_parse_image_checks_the_config_against_the_manifest():
    image = parse_image(MANIFEST, CONFIG, "base")
    assert image.manifest.layers[1].digest == digest(2)
    assert image.config.diff_ids == (digest(11), digest(12))
    one_layer = changed(MANIFEST, ("layers",), [layer(1)])
    assert reason_of(parse_image, one_layer, CONFIG, "wrapper", role="wrapper") == (
        "config lists 2 diff_ids but the manifest has 1 layers"
    )
