"""Provenance statements, DSSE envelopes and cosign's attestation layout, as pure values:
the exact bytes of a statement, what each part says, what is refused on reading back."""

from __future__ import annotations

import base64
import json
import time

import pytest

from ociwrap.image.recipes import Overrides, Recipe
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.signing import provenance
from ociwrap.signing.provenance import Dependency, Facts, ProvenanceFormatError

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DSSE = "application/vnd.dsse.envelope.v1+json"
IN_TOTO = "application/vnd.in-toto+json"
SLSA = "https://slsa.dev/provenance/v1"
DIGEST = "sha256:" + "ab" * 32
INDEX = "sha256:" + "01" * 32
PLATFORM = "sha256:" + "02" * 32
WRAPPER = "sha256:" + "03" * 32
HUB = Registry("docker.io", "https://registry-1.docker.io")
BASE = ImageRef(Repository(HUB, "library/ubuntu"), tag="22.04")
TOOL = ImageRef(Repository(Registry("ghcr.io", "https://ghcr.io"), "acme/wrapper"), tag="1")
RECIPE = Recipe("wrap/ubuntu/22.04/with/ghcr.io/acme/wrapper/1", "scope", BASE, (TOOL,))
SUBJECT = {"mediaType": OCI_MANIFEST, "digest": DIGEST, "size": 123}
ADMITTED = {"rule": "ghcr.io/acme/**", "key": "sha256:" + "cd" * 32, "signature": WRAPPER}
DEPENDENCIES = (
    Dependency("base", str(BASE), "docker.io/library/ubuntu", INDEX, PLATFORM, "linux/amd64"),
    Dependency("wrapper", str(TOOL), "ghcr.io/acme/wrapper", WRAPPER, WRAPPER, None, ADMITTED),
)
FACTS = Facts(SUBJECT, RECIPE, DEPENDENCIES, 1700000000.25, 1700000001.5, "linux/amd64")
NAME = "registry.example.com/" + RECIPE.name


def test_the_tag_of_a_digests_attestations_and_back():
    assert provenance.attestation_tag(DIGEST) == f"sha256-{'ab' * 32}.att"
    assert provenance.attested_digest(f"sha256-{'ab' * 32}.att") == DIGEST


@pytest.mark.parametrize(
    "tag",
    [
        "latest",
        f"sha256-{'ab' * 32}.sig",
        f"sha256-{'ab' * 32}",
        "sha256-abc.att",
        f"x{'ab' * 32}.att",
    ],
)
def test_other_tags_attest_nothing(tag):
    assert provenance.attested_digest(tag) is None


def test_the_statement_is_canonical_json_of_exactly_these_fields():
    body = provenance.statement(FACTS, NAME, "registry.example.com", "0.1.0")
    assert body == json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    assert json.loads(body) == {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": NAME, "digest": {"sha256": "ab" * 32}}],
        "predicateType": SLSA,
        "predicate": {
            "buildDefinition": {
                "buildType": "urn:ociwrap:buildtype:composition:v1",
                "externalParameters": {
                    "base": "docker.io/library/ubuntu:22.04",
                    "wrappers": ["ghcr.io/acme/wrapper:1"],
                    "platform": "linux/amd64",
                },
                "resolvedDependencies": [
                    {
                        "name": "base",
                        "uri": "docker://docker.io/library/ubuntu:22.04",
                        "digest": {"sha256": "01" * 32},
                        "annotations": {"role": "base"},
                    },
                    {
                        "name": "base linux/amd64",
                        "uri": f"docker://docker.io/library/ubuntu@{PLATFORM}",
                        "digest": {"sha256": "02" * 32},
                        "annotations": {"role": "base", "index": INDEX, "platform": "linux/amd64"},
                    },
                    {
                        "name": "wrapper",
                        "uri": "docker://ghcr.io/acme/wrapper:1",
                        "digest": {"sha256": "03" * 32},
                        "annotations": {"role": "wrapper", "wrapperPolicy": ADMITTED},
                    },
                ],
            },
            "runDetails": {
                "builder": {"id": "https://registry.example.com", "version": {"ociwrap": "0.1.0"}},
                "metadata": {
                    "startedOn": "2023-11-14T22:13:20.250Z",
                    "finishedOn": "2023-11-14T22:13:21.500Z",
                },
            },
        },
    }


def test_the_same_composition_gives_the_same_bytes_but_for_its_times():
    first = provenance.statement(FACTS, NAME, "registry.example.com", "0.1.0")
    again = provenance.statement(FACTS, NAME, "registry.example.com", "0.1.0")
    later = Facts(SUBJECT, RECIPE, DEPENDENCIES, 1800000000.0, 1800000002.0, "linux/amd64")
    moved = provenance.statement(later, NAME, "registry.example.com", "0.1.0")
    assert first == again
    assert first != moved
    times = {"startedOn": "", "finishedOn": ""}

    def timeless(body: bytes) -> dict:
        document = json.loads(body)
        document["predicate"]["runDetails"]["metadata"] = times
        return document

    assert timeless(first) == timeless(moved)


def test_an_index_names_no_platform_and_each_input_once():
    index = Facts(SUBJECT, RECIPE, (Dependency("base", str(BASE), "r", INDEX),), 0, 0)
    document = json.loads(provenance.statement(index, NAME, "h", "v"))
    build = document["predicate"]["buildDefinition"]
    assert "platform" not in build["externalParameters"]
    assert build["resolvedDependencies"] == [
        {
            "name": "base",
            "uri": "docker://docker.io/library/ubuntu:22.04",
            "digest": {"sha256": "01" * 32},
            "annotations": {"role": "base"},
        }
    ]


def test_a_manifest_used_without_a_known_platform_is_named_so():
    used = Dependency("wrapper 2", "r/x:1", "r/x", INDEX, PLATFORM)
    [_, second] = provenance.dependency_descriptors(used)
    assert second["name"] == "wrapper 2 manifest"
    assert second["annotations"] == {"role": "wrapper 2", "index": INDEX}


def test_overrides_are_external_parameters_as_given():
    overrides = Overrides(
        entrypoint=("/bin/sh", "-c"),
        cmd=(),
        env=(("A", "1"), ("B", "")),
        labels=(("org.example", "yes"),),
        working_dir="/work",
        user="1000",
        platforms=("linux/amd64",),
    )
    pinned = ImageRef(Repository(HUB, "library/ubuntu"), digest=INDEX)
    recipe = Recipe("wt/token/x", "token", pinned, (TOOL, TOOL), overrides, tag="22.04")
    assert provenance.parameters(recipe, None) == {
        "base": f"docker.io/library/ubuntu@{INDEX}",
        "wrappers": ["ghcr.io/acme/wrapper:1", "ghcr.io/acme/wrapper:1"],
        "entrypoint": ["/bin/sh", "-c"],
        "cmd": [],
        "env": {"A": "1", "B": ""},
        "labels": {"org.example": "yes"},
        "workingDir": "/work",
        "user": "1000",
        "platforms": ["linux/amd64"],
    }


@pytest.fixture
def tokyo(monkeypatch):
    """The process's local time is not UTC."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_times_are_rfc3339_utc_to_the_millisecond(tokyo):
    assert provenance.rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert provenance.rfc3339(1.0019) == "1970-01-01T00:00:01.001Z"
    assert provenance.rfc3339(86399.999) == "1970-01-01T23:59:59.999Z"


def test_a_statement_renamed_differs_only_in_its_subject_name():
    body = provenance.statement(FACTS, NAME, "registry.example.com", "0.1.0")
    other = provenance.renamed(body, "registry.example.com/wrap/other")
    document = json.loads(body)
    document["subject"][0]["name"] = "registry.example.com/wrap/other"
    assert other == provenance.canonical(document)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b"[]",
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"x","subject":[{}]}',
        b'{"_type":"x","predicateType":"https://slsa.dev/provenance/v1","subject":[{}]}',
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[]}',
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[1]}',
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":{}}',
        b'{"_type":"https://in-toto.io/Statement/v1","predicateType":"https://slsa.dev/provenance/v1","subject":[{},{}]}',
        b" " * (256 * 1024 + 1),
    ],
)
def test_what_is_no_statement_of_one_subject_is_refused(data):
    with pytest.raises(ProvenanceFormatError):
        provenance.read_statement(data)


def test_a_statement_of_the_largest_size_is_read():
    body = provenance.statement(FACTS, NAME, "h", "v")
    padded = body + b" " * (256 * 1024 - len(body))
    assert provenance.read_statement(padded)["subject"][0]["name"] == NAME


def nested(levels: int) -> dict:
    """A value whose containers nest `levels` deep."""
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def test_a_statement_nests_at_most_16_levels():
    # the statement itself is level 1: an extra field may add 15 levels more, not 16
    document = json.loads(provenance.statement(FACTS, NAME, "h", "v"))
    assert provenance.read_statement(json.dumps({**document, "x": nested(15)}).encode())
    with pytest.raises(ProvenanceFormatError) as caught:
        provenance.read_statement(json.dumps({**document, "x": nested(16)}).encode())
    assert str(caught.value) == "statement is nested deeper than 16 levels"


def test_an_envelope_nests_at_most_8_levels():
    assert provenance.read_envelope(_envelope(x=nested(7))) == (b"{}", b"sig")
    with pytest.raises(ProvenanceFormatError):
        provenance.read_envelope(_envelope(x=nested(8)))


def test_pae_is_dsses_pre_authentication_encoding():
    # the example of DSSE's protocol document
    assert provenance.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert (
        provenance.pae(IN_TOTO, "é".encode()) == b"DSSEv1 28 " + IN_TOTO.encode() + b" 2 \xc3\xa9"
    )


def test_an_envelope_holds_the_statement_and_one_signature():
    envelope = provenance.envelope(b'{"a":1}', b"\x30\x01")
    assert json.loads(envelope) == {
        "payload": base64.b64encode(b'{"a":1}').decode(),
        "payloadType": IN_TOTO,
        "signatures": [{"keyid": "", "sig": base64.b64encode(b"\x30\x01").decode()}],
    }
    assert provenance.read_envelope(envelope) == (b'{"a":1}', b"\x30\x01")


def _envelope(**changes) -> bytes:
    document = json.loads(provenance.envelope(b"{}", b"sig"))
    document.update(changes)
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    "data",
    [
        b"{",
        b"[]",
        _envelope(payloadType="application/json"),
        _envelope(payload="not base64!"),
        _envelope(payload="e30=!"),
        _envelope(payload=7),
        _envelope(signatures=[]),
        _envelope(signatures={"sig": "AA=="}),
        _envelope(signatures=[{"sig": "AA=="}, {"sig": "AA=="}]),
        _envelope(signatures=[{"sig": "%%"}]),
        _envelope(signatures=[{"keyid": ""}]),
        _envelope(signatures=["AA=="]),
        b" " * (256 * 1024 + 1),
    ],
)
def test_what_is_no_envelope_of_one_signature_is_refused(data):
    with pytest.raises(ProvenanceFormatError):
        provenance.read_envelope(data)


def test_an_envelope_of_the_largest_size_is_read():
    envelope = provenance.envelope(b"{}", b"sig")
    assert provenance.read_envelope(envelope + b" " * (256 * 1024 - len(envelope)))[0] == b"{}"


def test_the_attestation_manifest_is_cosigns_layout_and_a_referrer():
    envelope = provenance.envelope(b"{}", b"sig")
    made = provenance.attestation_manifest(envelope, {**SUBJECT, "annotations": {"x": "y"}})
    document = json.loads(made.body)
    assert document == {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": IN_TOTO,
        "config": {"mediaType": OCI_CONFIG, "size": len(made.config), "digest": made.config_digest},
        "layers": [
            {
                "mediaType": DSSE,
                "size": len(envelope),
                "digest": made.payload_digest,
                "annotations": {"dev.cosignproject.cosign/signature": "", "predicateType": SLSA},
            }
        ],
        "subject": SUBJECT,
    }
    assert made.payload == envelope
    assert json.loads(made.config)["rootfs"]["diff_ids"] == [made.payload_digest]
    assert provenance.attestation_descriptor(made.digest, len(made.body)) == {
        "mediaType": OCI_MANIFEST,
        "digest": made.digest,
        "size": len(made.body),
        "artifactType": IN_TOTO,
        "annotations": {"predicateType": SLSA},
    }


def refusal(read, data: bytes) -> str:
    with pytest.raises(ProvenanceFormatError) as caught:
        read(data)
    return str(caught.value)


def test_refusals_say_what_was_wrong():
    large = b" " * (256 * 1024 + 1)
    assert refusal(provenance.read_statement, large) == "statement is larger than 262144 bytes"
    assert refusal(provenance.read_statement, b"{") == (
        "statement is not valid JSON (JSONDecodeError)"
    )
    assert refusal(provenance.read_statement, b"{}") == (
        "statement is no SLSA provenance v1 statement of one subject"
    )
    assert refusal(provenance.read_envelope, large) == "envelope is larger than 262144 bytes"
    assert refusal(provenance.read_envelope, b"{}") == (
        "envelope is no DSSE envelope of one signature"
    )
    assert refusal(provenance.read_envelope, _envelope(payloadType="x")) == (
        "envelope's payloadType is not application/vnd.in-toto+json"
    )


def test_text_beyond_ascii_is_kept_as_utf8():
    overrides = Overrides(env=(("GREETING", "grüß"),))
    recipe = Recipe("wt/t/x", "t", BASE, (TOOL,), overrides)
    body = provenance.statement(Facts(SUBJECT, recipe, (), 0, 0), NAME, "h", "v")
    assert '"GREETING":"grüß"'.encode() in body
