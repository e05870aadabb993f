"""Lambda handler of the registry: HTTP in, HTTP out, nothing else.

Routing and error rendering live here; every decision about images lives in
the `ociwrap` library (the layer), which can be tested without AWS.
"""

from __future__ import annotations

import base64
import os
import threading
import time

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from botocore.exceptions import BotoCoreError, ClientError

from ociwrap import replies
from ociwrap.errors import RegistryError, unsupported
from ociwrap.proxy import split_accept
from ociwrap.reference import parse_route
from ociwrap.replies import Reply
from ociwrap.service import RegistryService, build_service

logger = Logger(service="ociwrap", level=os.environ.get("LOG_LEVEL", "INFO").upper())
app = APIGatewayHttpResolver()

READ_METHODS = ["GET", "HEAD"]
WRITE_METHODS = ["PUT", "POST", "PATCH", "DELETE"]


_service_lock = threading.Lock()
_service: RegistryService | None = None


def service() -> RegistryService:
    """Built once per warm Lambda: S3 client, upstream sessions and caches are reused.

    The lock matters under the local gateway, where first requests arrive in parallel
    threads and must share one service (and so one in-memory cache).
    """
    global _service
    with _service_lock:
        if _service is None:
            _service = build_service()
        return _service


def reset_service() -> None:
    """Forget the service, so the next request reads the environment again."""
    global _service
    with _service_lock:
        _service = None


def _response(reply: Reply) -> Response:
    """A Powertools Response carrying the reply's exact bytes.

    Bodies are manifests and JSON: sent as text when they are UTF-8 (lossless),
    base64 otherwise, so the client receives the bytes that were digested.
    """
    headers = {**replies.API_VERSION_HEADER, **reply.headers}
    try:
        return Response(status_code=reply.status, headers=headers, body=reply.body.decode())
    except UnicodeDecodeError:
        response = Response(
            status_code=reply.status, headers=headers, body=base64.b64encode(reply.body).decode()
        )
        response.base64_encoded = True
        return response


def _is_head() -> bool:
    return app.current_event.http_method.upper() == "HEAD"


@app.route("/v2", method=READ_METHODS)
@app.route("/v2/", method=READ_METHODS)
def ping() -> Response:
    return _response(replies.content(b"{}", "application/json", None, _is_head()))


@app.route("/v2/.+", method=READ_METHODS)
def registry_read() -> Response:
    event = app.current_event
    route = parse_route(event.path)
    head = _is_head()
    if route is None:
        raise RegistryError("NAME_UNKNOWN", f"no registry route for {event.path}", status=404)
    query = event.query_string_parameters or {}
    registry = service()
    if route.kind == "manifests":
        accept = split_accept([event.headers.get("accept", "")])
        reply = registry.manifest(route.name, route.ref, accept, head)
    elif route.kind == "blobs":
        reply = registry.blob(route.name, route.ref, head)
    elif route.kind == "tags":
        reply = registry.tags(route.name, query.get("n"), query.get("last"))
    else:
        raise RegistryError(
            "UNSUPPORTED", "listing repositories is not supported by this registry", status=404
        )
    return _response(reply)


@app.route("/v2/.*", method=WRITE_METHODS)
def registry_write() -> Response:
    raise unsupported("this registry is pull-only: pushing and deleting are not supported")


@app.not_found
def not_found(_exc: Exception) -> Response:
    return _response(
        replies.error(
            RegistryError(
                "NAME_UNKNOWN", f"no such endpoint: {app.current_event.path}", status=404
            ),
            head=_is_head(),
        )
    )


@app.exception_handler(RegistryError)
def registry_error(exc: RegistryError) -> Response:
    logger.info(
        "request refused", extra={"code": exc.code, "status": exc.status, "error": exc.message}
    )
    return _response(replies.error(exc, head=_is_head()))


@app.exception_handler([BotoCoreError, ClientError])
def storage_error(exc: Exception) -> Response:
    """S3 failed (throttling, a missing bucket, permissions): retryable for the client."""
    logger.exception("artifact storage request failed")
    return _response(
        replies.error(
            RegistryError(
                "UNAVAILABLE", "artifact storage (S3) is unavailable; try again", status=503
            ),
            head=_is_head(),
        )
    )


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    """Bugs and AWS failures: logged with their trace, answered without it."""
    logger.exception("unexpected error")
    return _response(
        replies.error(
            RegistryError("UNKNOWN", "internal error; see the registry's logs", status=500),
            head=_is_head(),
        )
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    started = time.perf_counter()
    result = app.resolve(event, context)
    logger.info(
        "request",
        extra={
            "method": event.get("requestContext", {}).get("http", {}).get("method"),
            "path": event.get("rawPath"),
            "status": result.get("statusCode"),
            "ms": round((time.perf_counter() - started) * 1000, 1),
        },
    )
    return result
