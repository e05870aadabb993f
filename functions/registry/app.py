"""Lambda handler of the registry: HTTP in, HTTP out, nothing else.

Routing, `Accept` parsing, the request deadline and error rendering live here;
every decision about images lives in the `ociwrap` library (the layer), which
can be tested without AWS.
"""

from __future__ import annotations

import base64
import contextvars
import json
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from botocore.exceptions import BotoCoreError, ClientError

from ociwrap import deadline, errors, replies
from ociwrap.config import REQUEST_TIMEOUT_SECONDS
from ociwrap.errors import RegistryError
from ociwrap.jsondoc import DocumentError, parse_json
from ociwrap.recipes import invalid_field
from ociwrap.replies import Reply
from ociwrap.service import RegistryService, build_service
from routes import parse_route, split_accept

logger = Logger(service="ociwrap", level=os.environ.get("LOG_LEVEL", "INFO").upper())
app = APIGatewayHttpResolver()

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
READ_METHODS = ["GET", "HEAD"]
#: Kept back from the Lambda's remaining time, to render and send the answer.
ANSWER_MARGIN_SECONDS = 1.0
#: How long past its deadline a request may still be finishing before it is answered 504
#: regardless (an S3 call that started just before the deadline).
BACKSTOP_SECONDS = 0.5

_service_lock = threading.Lock()
_service: RegistryService | None = None


def service() -> RegistryService:
    """Built once per warm Lambda: S3 client, upstream sessions and caches are reused."""
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


def request_deadline(context: Any) -> deadline.Deadline:
    """The Lambda's remaining time less the answer margin, capped by REQUEST_TIMEOUT_SECONDS."""
    try:
        cap = float(service().settings.request_timeout_seconds)
    except RegistryError:
        cap = float(REQUEST_TIMEOUT_SECONDS)
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if callable(remaining):
        cap = min(cap, remaining() / 1000 - ANSWER_MARGIN_SECONDS)
    return deadline.Deadline(max(cap, 0.0))


def in_time(call: Callable[[], Reply]) -> Reply:
    """Run `call` and answer by the deadline, whatever it waits on.

    Every network call draws from the deadline already; this is the backstop for
    one that started just before it ran out and is still waiting (an S3 call on
    botocore's own time-outs): the client gets a spec 504 before API Gateway
    cuts the request off, and the call finishes (or fails) on its own.
    """
    current = deadline.current()
    if current is None:
        return call()
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["reply"] = call()
        except BaseException as exc:  # handed to the request thread below
            outcome["error"] = exc

    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,), daemon=True)
    worker.start()
    worker.join(max(current.remaining(), 0.0) + BACKSTOP_SECONDS)
    if worker.is_alive():
        raise errors.deadline_exceeded("the registry to finish", current.budget)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["reply"]


def error_body(exc: RegistryError) -> bytes:
    """The JSON error body the distribution spec prescribes."""
    entry: dict[str, Any] = {"code": exc.code, "message": exc.message}
    if exc.detail is not None:
        entry["detail"] = exc.detail
    return json.dumps({"errors": [entry]}).encode()


def _is_head() -> bool:
    return app.current_event.http_method.upper() == "HEAD"


def _response(reply: Reply) -> Response:
    """A Powertools Response carrying the reply's exact bytes.

    Bodies are manifests and JSON: sent as text when they are UTF-8 (lossless),
    base64 otherwise, so the client receives the bytes that were digested.
    """
    headers = {**API_VERSION_HEADER, **reply.headers}
    try:
        return Response(status_code=reply.status, headers=headers, body=reply.body.decode())
    except UnicodeDecodeError:
        response = Response(
            status_code=reply.status, headers=headers, body=base64.b64encode(reply.body).decode()
        )
        response.base64_encoded = True
        return response


def login_required() -> RegistryError:
    """401 with the challenge that makes docker/podman/skopeo send their login."""
    return RegistryError(
        "UNAUTHORIZED",
        "authentication required: log in to this registry",
        status=401,
        headers={"WWW-Authenticate": 'Basic realm="ociwrap"'},
    )


def authenticated() -> bool:
    """With REGISTRY_AUTH=basic, does the request carry a valid login?"""
    users = service().users
    if users is None:
        return True
    return users.check(app.current_event.headers.get("authorization")) is not None


def require_login(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """Every route answers 401 until a valid login arrives (REGISTRY_AUTH=basic)."""
    if not authenticated():
        return _error(login_required())
    return next_middleware(resolver)


def _error(exc: RegistryError) -> Response:
    body = error_body(exc)
    headers = {
        **exc.headers,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    return _response(Reply(exc.status, headers, b"" if _is_head() else body))


app.use(middlewares=[require_login])


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
        raise errors.name_unknown(f"no registry route for {event.path}")
    if route.kind == "catalog":
        raise RegistryError(
            "UNSUPPORTED", "listing repositories is not supported by this registry", status=404
        )
    query = event.query_string_parameters or {}
    registry = service()
    if route.kind == "manifests":
        accept = split_accept([event.headers.get("accept", "")])
        reply = in_time(lambda: registry.manifest(route.name, route.ref, accept, head))
    elif route.kind == "blobs":
        reply = in_time(lambda: registry.blob(route.name, route.ref, head))
    else:
        reply = in_time(lambda: registry.tags(route.name, query.get("n"), query.get("last")))
    return _response(reply)


# -- container tokens ------------------------------------------------------------------------

#: The largest token request body (a request is kilobytes; this is generous).
MAX_TOKEN_BODY = 64 * 1024
OPENAPI = Path(__file__).with_name("openapi.json")


def _json(status: int, value: Any) -> Response:
    body = json.dumps(value).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return _response(Reply(status, headers, body))


def _expires_at(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@app.post("/v1alpha/tokens")
def create_token() -> Response:
    event = app.current_event
    raw = event.body or ""
    if len(raw) > 2 * MAX_TOKEN_BODY:
        raise errors.RegistryError(
            "SIZE_INVALID", f"a token request is at most {MAX_TOKEN_BODY} bytes", status=413
        )
    body = event.decoded_body.encode() if isinstance(event.decoded_body, str) else b""
    if len(body) > MAX_TOKEN_BODY:
        raise errors.RegistryError(
            "SIZE_INVALID", f"a token request is at most {MAX_TOKEN_BODY} bytes", status=413
        )
    try:
        document = parse_json(body)
    except DocumentError as exc:
        raise invalid_field("(body)", f"not a JSON document: {exc}") from exc
    registry = service()
    token = registry.tokens.create(document)
    host = registry.settings.public_hostname or event.headers.get("host", "localhost")
    return _json(
        201,
        {
            "token": token.token,
            "targetImage": f"{host}/wt/{token.token}/{token.request.repository}:"
            f"{token.request.tag}",
            "expiresAt": _expires_at(token.expires),
        },
    )


@app.get("/v1alpha/tokens/<token>")
def read_token(token: str) -> Response:
    found = service().tokens.get(token)
    return _json(
        200,
        {
            "token": found.token,
            "request": found.request.document,
            "expiresAt": _expires_at(found.expires),
        },
    )


@app.delete("/v1alpha/tokens/<token>")
def revoke_token(token: str) -> Response:
    service().tokens.revoke(token)
    return _response(Reply(204, {"Content-Length": "0"}))


@app.get("/v1alpha/openapi.json")
def openapi() -> Response:
    body = OPENAPI.read_bytes()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    return _response(Reply(200, headers, body))


@app.not_found
def not_found(_exc: Exception) -> Response:
    """No route: other methods are refused like writes (pull-only), other paths are unknown."""
    event = app.current_event
    try:
        if not authenticated():
            return _error(login_required())
    except RegistryError as exc:
        return _error(exc)
    if event.http_method.upper() not in READ_METHODS:
        return _error(
            errors.unsupported(
                "this registry is pull-only: pushing and deleting are not supported",
                detail={"method": event.http_method[:20]},
            )
        )
    return _error(errors.name_unknown(f"no such endpoint: {event.path[:200]}"))


@app.exception_handler(RegistryError)
def registry_error(exc: RegistryError) -> Response:
    logger.info(
        "request refused", extra={"code": exc.code, "status": exc.status, "error": exc.message}
    )
    return _error(exc)


@app.exception_handler([BotoCoreError, ClientError])
def storage_error(exc: Exception) -> Response:
    """S3 failed (throttling, a missing bucket, permissions): retryable for the client."""
    logger.exception("artifact storage request failed")
    return _error(errors.storage_unavailable())


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    """Bugs: logged with their trace, answered without it."""
    logger.exception("unexpected error")
    return _error(RegistryError("UNKNOWN", "internal error; see the registry's logs", status=500))


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    started = time.perf_counter()
    with deadline.within(request_deadline(context)):
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
