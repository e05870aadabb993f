"""`/v1alpha`: container tokens (create, read, revoke), the signing key, the OpenAPI document."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from answers import Reply, json_response, to_response
from ociwrap.names.mediatypes import JSON, PEM
from ociwrap.names.reference import token_image_name
from ociwrap.runtime import errors
from wiring import service

#: The largest token request body (a request is kilobytes; this is generous).
MAX_TOKEN_BODY = 64 * 1024
OPENAPI = Path(__file__).with_name("openapi.json")

router = Router()


def _expires_at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _too_large() -> errors.RegistryError:
    return errors.RegistryError(
        "SIZE_INVALID", f"a token request is at most {MAX_TOKEN_BODY} bytes", status=413
    )


@router.post("/v1alpha/tokens")
def create_token() -> Response:
    event = router.current_event
    if len(event.body or "") > 2 * MAX_TOKEN_BODY:  # refused before it is decoded
        raise _too_large()
    decoded = event.decoded_body
    body = decoded.encode() if isinstance(decoded, str) else b""
    if len(body) > MAX_TOKEN_BODY:
        raise _too_large()
    registry = service()
    token = registry.tokens.create(body)
    host = registry.settings.public_hostname or event.headers.get("host", "localhost")
    image = f"{token.request.repository}:{token.request.tag}"
    return json_response(
        201,
        {
            "token": token.token,
            "targetImage": f"{host}/{token_image_name(token.token, image)}",
            "expiresAt": _expires_at(token.expires),
        },
    )


@router.get("/v1alpha/tokens/<token>")
def read_token(token: str) -> Response:
    found = service().tokens.get(token)
    return json_response(
        200,
        {
            "token": found.token,
            "request": found.request.document,
            "expiresAt": _expires_at(found.expires),
        },
    )


@router.delete("/v1alpha/tokens/<token>")
def revoke_token(token: str) -> Response:
    service().tokens.revoke(token)
    return to_response(Reply(204, {"Content-Length": "0"}))


@router.get("/v1alpha/signing-key")
def signing_key() -> Response:
    """The public key of the signatures this registry makes, for `cosign verify --key`."""
    body = service().signing_key()
    headers = {"Content-Type": PEM, "Content-Length": str(len(body))}
    return to_response(Reply(200, headers, body))


@router.get("/v1alpha/openapi.json")
def openapi() -> Response:
    body = OPENAPI.read_bytes()
    headers = {"Content-Type": JSON, "Content-Length": str(len(body))}
    return to_response(Reply(200, headers, body))
