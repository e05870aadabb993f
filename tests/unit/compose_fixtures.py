"""The composer's functions in JSON-in, JSON-out form, and the compositions the tests share.

Composition works on parsed documents; these take the JSON the upstreams send (see
`image_documents`), so every test reads as "these documents in, these documents out".
"""

from __future__ import annotations

import pytest
from image_documents import (
    ANNOTATIONS,
    BUSYBOX_CONFIG,
    BUSYBOX_MANIFEST,
    NGINX_CONFIG,
    NGINX_MANIFEST,
    WRAPPER_CONFIG,
    WRAPPER_MANIFEST,
    multi_base_index,
)

from ociwrap.image import compose
from ociwrap.image.compose import Composed
from ociwrap.image.documents import (
    ImageIndex,
    parse_descriptor,
    parse_document,
    parse_image,
    parse_manifest,
)
from ociwrap.image.platforms import plan_wrappers
from ociwrap.image.wrapped_config import compose_config as compose_config_of
from ociwrap.runtime.errors import RegistryError


def compose_image(base_manifest, base_config, wrapper_manifest, wrapper_config, annotations):
    return compose.compose_image(
        parse_image(base_manifest, base_config, "base"),
        parse_image(wrapper_manifest, wrapper_config, "wrapper"),
        annotations,
    )


def compose_config(base_manifest, base_config, wrapper_manifest, wrapper_config):
    return compose_config_of(
        parse_image(base_manifest, base_config, "base"),
        parse_image(wrapper_manifest, wrapper_config, "wrapper"),
    )


def compose_manifest(base_manifest, wrapper_manifest, config_bytes, annotations):
    return compose.compose_manifest(
        parse_manifest(base_manifest, "base"),
        parse_manifest(wrapper_manifest, "wrapper"),
        config_bytes,
        annotations,
    )


def plan_platforms(base_index, wrapper):
    """(base entry, wrapper entry or None) as JSON, for each platform of the plan."""
    base = parse_document(base_index, "base")
    wrapper_document = parse_document(wrapper, "wrapper")
    wrapper_entries = (
        wrapper_document.images() if isinstance(wrapper_document, ImageIndex) else None
    )
    return [
        (entry.raw, chosen.raw if chosen is not None else None)
        for entry, (chosen,) in plan_wrappers(base.images(), [wrapper_entries])
    ]


def compose_index(entries, annotations):
    return compose.compose_index(
        [(parse_descriptor(entry, "base", "entry"), image) for entry, image in entries],
        annotations,
    )


def nginx() -> Composed:
    return compose_image(
        NGINX_MANIFEST, NGINX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG, ANNOTATIONS
    )


def busybox() -> Composed:
    return compose_image(
        BUSYBOX_MANIFEST, BUSYBOX_CONFIG, WRAPPER_MANIFEST, WRAPPER_CONFIG, ANNOTATIONS
    )


def non_empty(history: list[dict]) -> int:
    return sum(1 for entry in history if entry.get("empty_layer") is not True)


def error_of(call, *args) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args)
    return caught.value


def all_digests() -> list[str]:
    """Digests of the compositions above, for the check that they are the same in any process."""
    images = [nginx(), busybox()]
    index = compose_index([(multi_base_index()["manifests"][0], images[0])], ANNOTATIONS)
    return [d for i in images for d in (i.manifest_digest, i.config_digest)] + [
        index.manifest_digest
    ]
