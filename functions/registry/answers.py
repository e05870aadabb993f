"""HTTP answers in API Gateway's shape: replies, spec JSON errors, the login challenge.

Bodies are manifests and JSON: sent as text when they are UTF-8 (lossless), base64
otherwise, so the client receives exactly the bytes that were digested.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from aws_lambda_powertools.event_handler import Response

from ociwrap.registry.replies import Reply
from ociwrap.runtime.errors import RegistryError

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}


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
    headers = {**exc.headers, "Content-Type": "application/json", "Content-Length": str(len(body))}
    return to_response(Reply(exc.status, headers, b"" if head else body))


def json_response(status: int, value: Any) -> Response:
    body = json.dumps(value).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return to_response(Reply(status, headers, body))


def login_required() -> RegistryError:
    """401 with the challenge that makes docker/podman/skopeo send their login."""
    return RegistryError(
        "UNAUTHORIZED",
        "authentication required: log in to this registry",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="ociwrap"'},
    )
