"""The referrers API's answers (distribution-spec 1.1), as pure functions.

`GET /v2/<name>/referrers/<digest>` answers an OCI image index of the manifests
whose `subject` is `<digest>`: never 404 (an empty index when there are none),
optionally filtered by `artifactType`, which the answer then says (the handler's
`OCI-Filters-Applied`).
Entries taken from an upstream are untrusted: only well-formed descriptors are
passed on, with the fields a descriptor may have, and no more than a bounded number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ociwrap.names.digest import is_digest
from ociwrap.names.mediatypes import bare
from ociwrap.registry.results import Descriptor, Referrers

MAX_REFERRERS = 1000
MAX_ANNOTATIONS = 64
MAX_TEXT = 1024


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


def referrers_of(descriptors: Iterable[Descriptor], artifact_type: str | None) -> Referrers:
    """The referrers to answer, only those of `artifact_type` if one is asked for."""
    entries = tuple(descriptors)
    if not artifact_type:
        return Referrers(entries)
    return Referrers(tuple(e for e in entries if e.get("artifactType") == artifact_type), True)
