"""HTTP answers in API Gateway's shape: the registry's values, spec JSON errors, the login
challenge.

The services answer values (`ociwrap.registry.results`); status codes and headers are
decided here. Content is a `200` with `Content-Type`, `Content-Length` and
`Docker-Content-Digest`; a HEAD drops the body and keeps the real length (containerd
builds a descriptor from it, and a length of 0 breaks the pull). A blob is a `307` with
an empty body, `Content-Length: 0` and the `Location` to fetch it from; a HEAD on it is a
`200` with its size (a HEAD that followed a URL signed for GET would fail). Tags carry a
`Link` to their next page, filtered referrers `OCI-Filters-Applied`.

Bodies are manifests and JSON: sent as text when they are UTF-8 (lossless), base64
otherwise, so the client receives exactly the bytes that were digested.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response

from ociwrap.names.mediatypes import JSON, OCI_INDEX, OCTET_STREAM
from ociwrap.registry.results import BlobSize, Content, Redirect, Referrers, TagPage
from ociwrap.runtime.errors import RegistryError

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


@dataclass
class Reply:
    """Status, headers and body; `Content-Length` is set explicitly (HEAD needs the real one)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def content_reply(content: Content, head: bool) -> Reply:
    """A manifest or other document; on HEAD the body is dropped but its length kept."""
    headers = {"Content-Type": content.media_type, "Content-Length": str(len(content.body))}
    if content.digest:
        headers["Docker-Content-Digest"] = content.digest
    return Reply(200, headers, b"" if head else content.body)


def redirect_reply(redirect: Redirect) -> Reply:
    """307 to where the client fetches the bytes itself: empty body, length 0."""
    headers = {
        "Location": redirect.location,
        "Content-Length": "0",
        "Docker-Content-Digest": redirect.digest,
    }
    return Reply(307, headers)


def size_reply(size: BlobSize) -> Reply:
    """HEAD on a blob: its size, answered here."""
    headers = {
        "Content-Type": OCTET_STREAM,
        "Content-Length": str(size.size),
        "Docker-Content-Digest": size.digest,
    }
    return Reply(200, headers)


def json_reply(value: Any, headers: dict[str, str] | None = None, status: int = 200) -> Reply:
    body = json.dumps(value).encode()
    length = {"Content-Type": JSON, "Content-Length": str(len(body))}
    return Reply(status, {**length, **(headers or {})}, body)


def tags_reply(page: TagPage) -> Reply:
    """The tags, and a `Link` back to this registry for the next page if there is one."""
    headers = {}
    if page.next_last:
        size = f"n={page.page_size}&" if page.page_size is not None else ""
        query = f"{size}last={quote(page.next_last)}"
        headers["Link"] = f'</v2/{page.name}/tags/list?{query}>; rel="next"'
    return json_reply({"name": page.name, "tags": list(page.tags)}, headers)


def referrers_reply(found: Referrers, head: bool) -> Reply:
    """The referrers index, compact; `OCI-Filters-Applied` when only one type is listed."""
    body = json.dumps(found.index(), separators=(",", ":")).encode()
    reply = content_reply(Content(body, OCI_INDEX), head)
    if found.filtered:
        reply.headers["OCI-Filters-Applied"] = "artifactType"
    return reply


def to_response(reply: Reply) -> Response:
    """A Powertools Response carrying the reply's exact bytes."""
    headers = {**API_VERSION_HEADER, **reply.headers}
    try:
        return Response(status_code=reply.status, headers=headers, body=reply.body.decode())
    except UnicodeDecodeError:
        response = Response(
            status_code=reply.status, headers=headers, body=base64.b64encode(reply.body).decode()
        )
        response.base64_encoded = True
        return response


def error_body(exc: RegistryError) -> bytes:
    """The JSON error body the distribution spec prescribes."""
    entry: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        entry["detail"] = exc.detail
    return json.dumps({"errors": [entry]}).encode()


def error_response(exc: RegistryError, head: bool) -> Response:
    """The error's status, headers and JSON body (no body for HEAD, its length kept)."""
    body = error_body(exc)
    headers = {**exc.headers, "Content-Type": JSON, "Content-Length": str(len(body))}
    return to_response(Reply(exc.status, headers, b"" if head else body))


def json_response(status: int, value: Any) -> Response:
    return to_response(json_reply(value, status=status))


def login_required() -> RegistryError:
    """401 with the challenge that makes docker/podman/skopeo send their login."""
    return RegistryError(
        "UNAUTHORIZED",
        "authentication required: log in to this registry",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="ociwrap"'},
    )
