"""The referrers API's answers (distribution-spec 1.1), as pure functions.

`GET /v2/<name>/referrers/<digest>` answers an OCI image index of the manifests
whose `subject` is `<digest>`: never 404 (an empty index when there are none),
optionally filtered by `artifactType`, in which case `OCI-Filters-Applied` says so.
Entries taken from an upstream are untrusted: only well-formed descriptors are
passed on, with the fields a descriptor may have, and no more than a bounded number.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from ociwrap.names.digest import is_digest
from ociwrap.names.mediatypes import bare
from ociwrap.registry import replies
from ociwrap.registry.replies import Reply

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MAX_REFERRERS = 1000
MAX_ANNOTATIONS = 64
MAX_TEXT = 1024

Descriptor = dict[str, Any]


def _short_text(value: Any) -> bool:
    return isinstance(value, str) and 0 < len(value) <= MAX_TEXT and value.isprintable()


def clean_descriptor(value: Any) -> Descriptor | None:
    """The descriptor with its mediaType, digest, size, artifactType and string
    annotations; None when it is not a well-formed one."""
    if not isinstance(value, Mapping):
        return None
    media_type, digest, size = value.get("mediaType"), value.get("digest"), value.get("size")
    if (
        not _short_text(media_type)
        or bare(media_type) != media_type
        or not isinstance(digest, str)
        or not is_digest(digest)
        or type(size) is not int
        or size < 0
    ):
        return None
    clean: Descriptor = {"mediaType": media_type, "digest": digest, "size": size}
    artifact_type = value.get("artifactType")
    if _short_text(artifact_type):
        clean["artifactType"] = artifact_type
    annotations = value.get("annotations")
    if isinstance(annotations, Mapping):
        kept = {
            key: text
            for key, text in list(annotations.items())[:MAX_ANNOTATIONS]
            if _short_text(key) and isinstance(text, str) and len(text) <= MAX_TEXT
        }
        if kept:
            clean["annotations"] = kept
    return clean


def descriptors_of(index: Any) -> list[Descriptor]:
    """The well-formed entries of an index document (others are dropped), bounded."""
    manifests = index.get("manifests") if isinstance(index, Mapping) else None
    if not isinstance(manifests, list):
        return []
    found = (clean_descriptor(entry) for entry in manifests[:MAX_REFERRERS])
    return [entry for entry in found if entry is not None]


def referrers_index(
    descriptors: Iterable[Descriptor], artifact_type: str | None
) -> tuple[Descriptor, dict[str, str]]:
    """The index to answer and its extra headers, filtered by `artifact_type` if given."""
    entries = list(descriptors)
    headers: dict[str, str] = {}
    if artifact_type:
        entries = [entry for entry in entries if entry.get("artifactType") == artifact_type]
        headers["OCI-Filters-Applied"] = "artifactType"
    return {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}, headers


def referrers_reply(descriptors: Iterable[Descriptor], artifact_type: str | None) -> Reply:
    """The referrers index as an answer."""
    index, headers = referrers_index(descriptors, artifact_type)
    body = json.dumps(index, separators=(",", ":")).encode()
    reply = replies.content(body, OCI_INDEX, None, head=False)
    reply.headers.update(headers)
    return reply
