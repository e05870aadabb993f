"""Media types: the names the specs give them, the Docker → OCI mapping, and what a fetched
manifest really is. Expected values are spelled out as the specs spell them."""

import pytest

from ociwrap.names import mediatypes as mt

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
SCHEMA1 = "application/vnd.docker.distribution.manifest.v1+json"
SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"

#: Every Docker type with an OCI equivalent (image-spec's media-types.md, "Compatibility
#: Matrix"; zstd as containerd names it).
DOCKER_TO_OCI = [
    (DOCKER_MANIFEST, OCI_MANIFEST),
    (DOCKER_LIST, OCI_INDEX),
    (
        "application/vnd.docker.container.image.v1+json",
        "application/vnd.oci.image.config.v1+json",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar",
        "application/vnd.oci.image.layer.v1.tar",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.gzip",
        "application/vnd.oci.image.layer.v1.tar+gzip",
    ),
    (
        "application/vnd.docker.image.rootfs.diff.tar.zstd",
        "application/vnd.oci.image.layer.v1.tar+zstd",
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar",
        "application/vnd.oci.image.layer.nondistributable.v1.tar",
    ),
    (
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
    ),
]


@pytest.mark.parametrize(("docker", "oci"), DOCKER_TO_OCI)
def test_every_docker_type_maps_to_its_oci_equivalent(docker, oci):
    assert mt.to_oci(docker) == oci


@pytest.mark.parametrize(
    "media_type",
    [oci for _, oci in DOCKER_TO_OCI]
    + [
        "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd",
        SCHEMA1,
        "application/vnd.example.unknown",
        "",
    ],
)
def test_types_without_a_docker_origin_pass_unchanged(media_type):
    assert mt.to_oci(media_type) == media_type


def test_the_families_of_types():
    assert {OCI_MANIFEST, DOCKER_MANIFEST} == mt.MANIFEST_TYPES
    assert {OCI_INDEX, DOCKER_LIST} == mt.INDEX_TYPES
    assert {SCHEMA1, SCHEMA1_SIGNED} == mt.SCHEMA1_TYPES
    assert {
        "application/vnd.oci.image.config.v1+json",
        "application/vnd.docker.container.image.v1+json",
    } == mt.CONFIG_TYPES
    assert mt.SERVABLE_TYPES == (OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST)


@pytest.mark.parametrize(
    ("media_type", "expected"),
    [(OCI_INDEX, True), (DOCKER_LIST, True), (OCI_MANIFEST, False), (DOCKER_MANIFEST, False)],
)
def test_is_index_type(media_type, expected):
    assert mt.is_index_type(media_type) is expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ""),
        ("", ""),
        ("application/json", "application/json"),
        ("Application/JSON; charset=utf-8", "application/json"),
        ("  text/plain ; q=1 ; x=2", "text/plain"),
        (f"{OCI_MANIFEST};", OCI_MANIFEST),
    ],
)
def test_bare(header, expected):
    assert mt.bare(header) == expected


# -- detecting what a manifest is ----------------------------------------------------------

INDEX_SHAPE = {"schemaVersion": 2, "manifests": []}
MANIFEST_SHAPE = {"schemaVersion": 2, "config": {}, "layers": []}


@pytest.mark.parametrize(
    ("document", "header"),
    [
        ({"mediaType": DOCKER_MANIFEST, **MANIFEST_SHAPE}, OCI_MANIFEST),
        ({"mediaType": OCI_INDEX, **MANIFEST_SHAPE}, DOCKER_MANIFEST),
        ({"mediaType": "application/vnd.example+json"}, OCI_INDEX),
    ],
)
def test_the_documents_own_media_type_wins(document, header):
    assert mt.detect_media_type(document, header) == document["mediaType"]


@pytest.mark.parametrize(
    "header", [OCI_INDEX, OCI_MANIFEST, DOCKER_LIST, DOCKER_MANIFEST, SCHEMA1, SCHEMA1_SIGNED]
)
@pytest.mark.parametrize("shape", [INDEX_SHAPE, MANIFEST_SHAPE, {"schemaVersion": 1}])
def test_a_manifest_type_header_is_trusted_over_the_shape(header, shape):
    assert mt.detect_media_type(shape, header) == header
    assert mt.detect_media_type(shape, f"{header.upper()}; charset=utf-8") == header


@pytest.mark.parametrize("declared", ["", None, 5, ["x"]])
def test_a_declared_type_that_is_no_string_is_ignored(declared):
    assert mt.detect_media_type({"mediaType": declared, **INDEX_SHAPE}, None) == OCI_INDEX
    assert mt.detect_media_type({"mediaType": declared}, DOCKER_MANIFEST) == DOCKER_MANIFEST


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (INDEX_SHAPE, OCI_INDEX),
        ({"manifests": [], "config": {}, "layers": []}, OCI_INDEX),
        ({"manifests": {}}, "application/json"),
        (MANIFEST_SHAPE, OCI_MANIFEST),
        ({"config": None, "layers": []}, OCI_MANIFEST),
        ({"layers": []}, "application/json"),
        ({"config": {}}, "application/json"),
        ({"config": {}, "layers": {}}, "application/json"),
        ({"schemaVersion": 1}, SCHEMA1),
        ({"fsLayers": []}, SCHEMA1),
        ({"schemaVersion": 2}, "application/json"),
        ({"schemaVersion": "1"}, "application/json"),
        ({}, "application/json"),
        (["manifests"], "application/json"),
    ],
)
def test_failing_both_the_shape_decides(document, expected):
    assert mt.detect_media_type(document, "application/json; charset=utf-8") == expected


def test_nothing_known_is_empty():
    assert mt.detect_media_type({}, None) == ""
    assert mt.detect_media_type({}) == ""
    assert mt.detect_media_type(INDEX_SHAPE) == OCI_INDEX


@pytest.mark.parametrize(
    ("name", "spelled"),
    [
        # sigstore/cosign specs/SIGNATURE_SPEC.md
        ("COSIGN_SIMPLE_SIGNING", "application/vnd.dev.cosign.simplesigning.v1+json"),
        ("COSIGN_SIGNATURE_ARTIFACT", "application/vnd.dev.cosign.artifact.sig.v1+json"),
        # in-toto's attestation framework and DSSE (secure-systems-lab/dsse)
        ("IN_TOTO", "application/vnd.in-toto+json"),
        ("DSSE_ENVELOPE", "application/vnd.dsse.envelope.v1+json"),
        # IANA's registered names, with the charset browsers are told
        ("OCTET_STREAM", "application/octet-stream"),
        ("JSON", "application/json"),
        ("PEM", "application/x-pem-file"),
        ("HTML", "text/html; charset=utf-8"),
        ("CSS", "text/css; charset=utf-8"),
        ("JAVASCRIPT", "text/javascript; charset=utf-8"),
        ("SVG", "image/svg+xml"),
        ("PLAIN_TEXT", "text/plain; charset=utf-8"),
    ],
)
def test_other_types_are_spelled_as_registered(name, spelled):
    assert getattr(mt, name) == spelled


def test_accept_wildcards_are_any_type_and_any_application_type():
    # RFC 9110 §12.5.1: `*/*` any type, `application/*` any of its subtypes; a manifest
    # type is application/..., so both ask for any manifest.
    assert {"*/*", "application/*"} == mt.WILDCARDS
