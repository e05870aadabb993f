"""What the registry answers, independent of API Gateway: status, headers, bytes.

The services return `Reply` objects; the handler turns them (and errors) into
HTTP responses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    """Status, headers and body; `Content-Length` is set explicitly (HEAD needs the real one)."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


def content(body: bytes, media_type: str, digest: str | None, head: bool) -> Reply:
    """A manifest or JSON answer; on HEAD the body is dropped but the length kept."""
    headers = {"Content-Type": media_type, "Content-Length": str(len(body))}
    if digest:
        headers["Docker-Content-Digest"] = digest
    return Reply(200, headers, b"" if head else body)


def blob_head(digest: str, size: int) -> Reply:
    """HEAD on a blob: the size, answered here (a HEAD on a GET-signed URL would fail)."""
    return Reply(
        200,
        {
            "Content-Type": "application/octet-stream",
            "Content-Length": str(size),
            "Docker-Content-Digest": digest,
        },
    )


def redirect(location: str, digest: str) -> Reply:
    """307 to where the client fetches the bytes itself: empty body, length 0."""
    return Reply(
        307, {"Location": location, "Content-Length": "0", "Docker-Content-Digest": digest}
    )


def json_reply(value: Any, headers: dict[str, str] | None = None) -> Reply:
    body = json.dumps(value).encode()
    return Reply(
        200,
        {"Content-Type": "application/json", "Content-Length": str(len(body)), **(headers or {})},
        body,
    )
