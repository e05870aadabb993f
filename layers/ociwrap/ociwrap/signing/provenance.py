"""Provenance of compositions: SLSA provenance v1 statements, DSSE envelopes and cosign's
attestation layout, as pure functions of values and bytes (no keys, no clock, no I/O).

A composed manifest's provenance is an in-toto Statement v1 whose `subject` is the
manifest as pulled (`<PUBLIC_HOSTNAME>/<wrapped name>` and its sha256) and whose
predicate (`https://slsa.dev/provenance/v1`) says what it was made of:

* `buildDefinition.buildType` is `BUILD_TYPE`, one fixed URI for every deployment (it names
  what `externalParameters` mean, not where the build ran);
* `externalParameters` is the recipe as asked: the base and wrapper references (tags or
  digest pins), the platform of a platform's manifest, and the overrides a container token
  gave (entrypoint, cmd, env, labels, workingDir, user, platforms);
* `resolvedDependencies` names the base and each wrapper as resolved: `docker://<reference
  as asked>` with the digest it resolved to, and, where that is an index, a second entry for
  the platform's manifest the composition used. What WRAPPER_POLICY verified of an input is
  its `annotations.wrapperPolicy`; with no policy configured the key is absent;
* `runDetails` names this deployment as the builder (`https://<PUBLIC_HOSTNAME>`, with
  ociwrap's version) and when the composition started and finished (RFC 3339, UTC).

The statement is canonical JSON (sorted keys, compact): the same composition gives the same
bytes but for its two times. It is signed as a DSSE envelope (the signature is over DSSE's
pre-authentication encoding, `PAE`), and the envelope is the one layer of a manifest in
cosign's attestation layout, kept under the tag `sha256-<hex>.att`, which is what
`cosign verify-attestation --type slsaprovenance1` reads. The same manifest carries
`subject` and `artifactType`, so it is also a referrer of the composed manifest.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.image.recipes import Recipe
from ociwrap.names import mediatypes as mt
from ociwrap.names.digest import encoded, is_digest
from ociwrap.signing import cosign

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://slsa.dev/provenance/v1"
#: What `externalParameters` mean: ociwrap's composition of a base and wrappers (version 1).
BUILD_TYPE = "urn:ociwrap:buildtype:composition:v1"
PAYLOAD_TYPE = mt.IN_TOTO
ENVELOPE_TYPE = mt.DSSE_ENVELOPE
#: The layer annotation `cosign verify-attestation --type` filters by.
PREDICATE_ANNOTATION = "predicateType"
_SUFFIX = ".att"
#: A statement is a few kilobytes; an envelope or statement much larger is not ours to read.
MAX_ENVELOPE_BYTES = 256 * 1024


class ProvenanceFormatError(ValueError):
    """An envelope or statement that is not in the format made here."""


def attestation_tag(digest: str) -> str:
    """`sha256:<hex>` → `sha256-<hex>.att`, the tag cosign keeps its attestations under."""
    return f"sha256-{encoded(digest)}{_SUFFIX}"


def attested_digest(tag: str) -> str | None:
    """The digest a `sha256-<hex>.att` tag holds the attestations of; None for other tags."""
    if not tag.startswith("sha256-") or not tag.endswith(_SUFFIX):
        return None
    digest = "sha256:" + tag[len("sha256-") : -len(_SUFFIX)]
    return digest if is_digest(digest) else None


@dataclass(frozen=True)
class Dependency:
    """A base or wrapper as the composition resolved it."""

    role: str  # "base", "wrapper", "wrapper 2", ...
    reference: str  # as asked: `docker.io/library/ubuntu:22.04` or `repo@sha256:…`
    repository: str  # `docker.io/library/ubuntu`
    digest: str  # what the reference resolved to (an index or a manifest)
    used: str | None = None  # the platform's manifest composed, when `digest` is an index
    platform: str | None = None  # that manifest's platform, `os/architecture[/variant]`
    admitted: Mapping[str, Any] | None = None  # what WRAPPER_POLICY verified, if one is set


@dataclass(frozen=True)
class Facts:
    """What the statement of one composed manifest says, besides the name it is pulled as."""

    subject: Mapping[str, Any]  # the composed manifest's descriptor: mediaType, digest, size
    recipe: Recipe
    dependencies: tuple[Dependency, ...]
    started: float  # epoch seconds
    finished: float
    platform: str | None = None  # a platform's manifest's; None for an index


def rfc3339(epoch: float) -> str:
    """UTC, to the millisecond: `2025-01-31T12:00:00.123Z`."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parameters(recipe: Recipe, platform: str | None) -> dict[str, Any]:
    """The recipe as asked: references, the platform composed, the overrides given."""
    found: dict[str, Any] = {
        "base": str(recipe.base),
        "wrappers": [str(wrapper) for wrapper in recipe.wrappers],
    }
    if platform is not None:
        found["platform"] = platform
    given = recipe.overrides
    optional = {
        "entrypoint": list(given.entrypoint) if given.entrypoint is not None else None,
        "cmd": list(given.cmd) if given.cmd is not None else None,
        "env": dict(given.env) if given.env else None,
        "labels": dict(given.labels) if given.labels else None,
        "workingDir": given.working_dir,
        "user": given.user,
        "platforms": list(given.platforms) if given.platforms is not None else None,
    }
    return found | {key: value for key, value in optional.items() if value is not None}


def _sha256(digest: str) -> dict[str, str]:
    return {"sha256": encoded(digest)}


def dependency_descriptors(dependency: Dependency) -> list[dict[str, Any]]:
    """The ResourceDescriptors of one input: as resolved, then the platform's manifest used."""
    annotations: dict[str, Any] = {"role": dependency.role}
    if dependency.admitted is not None:
        annotations["wrapperPolicy"] = dict(dependency.admitted)
    found = [
        {
            "name": dependency.role,
            "uri": f"docker://{dependency.reference}",
            "digest": _sha256(dependency.digest),
            "annotations": annotations,
        }
    ]
    if dependency.used is not None and dependency.used != dependency.digest:
        used = {"role": dependency.role, "index": dependency.digest}
        if dependency.platform is not None:
            used["platform"] = dependency.platform
        found.append(
            {
                "name": f"{dependency.role} {dependency.platform or 'manifest'}",
                "uri": f"docker://{dependency.repository}@{dependency.used}",
                "digest": _sha256(dependency.used),
                "annotations": used,
            }
        )
    return found


def canonical(document: Any) -> bytes:
    """Sorted keys, compact, UTF-8: one serialisation of a statement in every process."""
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return text.encode()


def statement(facts: Facts, name: str, hostname: str, version: str) -> bytes:
    """The statement of a composed manifest pulled as `name` (`<hostname>/<wrapped name>`)."""
    build = {
        "buildType": BUILD_TYPE,
        "externalParameters": parameters(facts.recipe, facts.platform),
        "resolvedDependencies": [
            descriptor
            for dependency in facts.dependencies
            for descriptor in dependency_descriptors(dependency)
        ],
    }
    run = {
        "builder": {"id": f"https://{hostname}", "version": {"ociwrap": version}},
        "metadata": {"startedOn": rfc3339(facts.started), "finishedOn": rfc3339(facts.finished)},
    }
    document = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": name, "digest": _sha256(facts.subject["digest"])}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {"buildDefinition": build, "runDetails": run},
    }
    return canonical(document)


def read_statement(data: bytes) -> dict[str, Any]:
    """A statement made here, parsed (bounded): its type, predicate type and one subject checked."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise ProvenanceFormatError(f"statement is larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        document = parse_json(data, max_depth=16)
    except DocumentError as exc:
        raise ProvenanceFormatError(f"statement is {exc}") from exc
    subjects = document.get("subject") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("_type") != STATEMENT_TYPE
        or document.get("predicateType") != PREDICATE_TYPE
        or not isinstance(subjects, list)
        or len(subjects) != 1
        or not isinstance(subjects[0], dict)
    ):
        raise ProvenanceFormatError("statement is no SLSA provenance v1 statement of one subject")
    return document


def renamed(data: bytes, name: str) -> bytes:
    """The same statement for the same manifest pulled under another name (another spelling
    of the same wrap): only the subject's name differs."""
    document = read_statement(data)
    document["subject"][0]["name"] = name
    return canonical(document)


def pae(payload_type: str, body: bytes) -> bytes:
    """DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <body>` (lengths in
    bytes, ASCII decimal): what the signature covers."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(body), body)


def envelope(body: bytes, signature: bytes) -> bytes:
    """The DSSE envelope of an in-toto statement and the DER signature of its PAE."""
    document = {
        "payload": base64.b64encode(body).decode(),
        "payloadType": PAYLOAD_TYPE,
        "signatures": [{"keyid": "", "sig": base64.b64encode(signature).decode()}],
    }
    return canonical(document)


def read_envelope(data: bytes) -> tuple[bytes, bytes]:
    """(statement, DER signature) of an envelope made by `envelope`; ProvenanceFormatError
    for anything else."""
    if len(data) > MAX_ENVELOPE_BYTES:
        raise ProvenanceFormatError(f"envelope is larger than {MAX_ENVELOPE_BYTES} bytes")
    try:
        document = parse_json(data, max_depth=8)
        signatures = document["signatures"]
        [signed] = signatures if isinstance(signatures, list) else [None, None]
        body = base64.b64decode(document["payload"], validate=True)
        signature = base64.b64decode(signed["sig"], validate=True)
    except (DocumentError, KeyError, TypeError, ValueError, binascii.Error) as exc:
        raise ProvenanceFormatError("envelope is no DSSE envelope of one signature") from exc
    if document.get("payloadType") != PAYLOAD_TYPE:
        raise ProvenanceFormatError(f"envelope's payloadType is not {PAYLOAD_TYPE}")
    return body, signature


def attestation_manifest(data: bytes, subject: Mapping[str, Any]) -> cosign.SignatureManifest:
    """The manifest holding the envelope `data` about `subject` (mediaType, digest, size), in
    cosign's attestation layout: its signature annotation is empty (the signature is in the
    envelope) and `predicateType` names the predicate."""
    annotations = {cosign.SIGNATURE_ANNOTATION: "", PREDICATE_ANNOTATION: PREDICATE_TYPE}
    return cosign.attached_manifest(ENVELOPE_TYPE, data, annotations, PAYLOAD_TYPE, subject)


def attestation_descriptor(digest: str, size: int) -> dict[str, Any]:
    """An attestation manifest as an entry of a referrers index."""
    return {
        "mediaType": cosign.OCI_MANIFEST,
        "digest": digest,
        "size": size,
        "artifactType": PAYLOAD_TYPE,
        "annotations": {PREDICATE_ANNOTATION: PREDICATE_TYPE},
    }
