"""Registry request paths and `Accept` headers, parsed: the HTTP side of a pull.

API Gateway (payload 2.0) lower-cases header names and joins repeated headers
with commas, so `Accept` arrives as one comma-separated string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ociwrap.names.mediatypes import SERVABLE_TYPES, WILDCARDS, bare


@dataclass(frozen=True)
class Route:
    """A parsed `/v2/...` request path."""

    kind: str  # "ping", "manifests", "blobs", "referrers", "tags", "catalog"
    name: str = ""
    ref: str = ""


_CONTENT = re.compile(r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs|referrers)/(?P<ref>[^/]+)")
_TAGS = re.compile(r"/v2/(?P<name>.+)/tags/list")


def parse_route(path: str) -> Route | None:
    """Split a request path into name and reference; None if it is no registry route."""
    if path in ("/v2", "/v2/"):
        return Route("ping")
    if path.rstrip("/") == "/v2/_catalog":
        return Route("catalog")
    match = _CONTENT.fullmatch(path)
    if match:
        return Route(match["kind"], match["name"], match["ref"])
    match = _TAGS.fullmatch(path)
    if match:
        return Route("tags", match["name"])
    return None


def split_accept(values: list[str]) -> list[str]:
    """Media types a client accepts, without parameters or q-values.

    No `Accept`, or a wildcard, means every manifest type this registry serves.
    """
    found: list[str] = []
    for value in values:
        for item in value.split(","):
            media_type = bare(item)
            if media_type in WILDCARDS:
                found.extend(SERVABLE_TYPES)
            elif media_type:
                found.append(media_type)
    return list(dict.fromkeys(found)) or list(SERVABLE_TYPES)
