"""Lambda handler of the registry: HTTP in, HTTP out, nothing else.

Routing, logins, the request deadline and error rendering live in this package
(`routes`, `answers`, `deadlines`, `token_routes`, `observe`); every decision about
images lives in the `ociwrap` library (the layer), which can be tested without AWS.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from answers import (
    Reply,
    content_reply,
    error_response,
    login_required,
    redirect_reply,
    referrers_reply,
    size_reply,
    tags_reply,
    to_response,
)
from deadlines import in_time, request_deadline
from observe import logger, metrics, record, tracing
from ociwrap.names.mediatypes import JSON
from ociwrap.registry.results import Content
from ociwrap.runtime import deadline, errors, hops, telemetry
from ociwrap.runtime.errors import RegistryError
from page_routes import inline_config
from page_routes import router as page_router
from routes import Route, parse_route, split_accept
from token_routes import router as token_router
from wiring import reset_service, service

if TYPE_CHECKING:
    from ociwrap.registry.service import RegistryService

__all__ = ["app", "lambda_handler", "reset_service", "service"]

app = APIGatewayHttpResolver()
READ_METHODS = ["GET", "HEAD"]


def _is_head() -> bool:
    return app.current_event.http_method.upper() == "HEAD"


def _error(exc: RegistryError) -> Response:
    return error_response(exc, head=_is_head())


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


def refuse_loops(resolver: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response:
    """A request that already passed through this registry is refused before anything
    else, its login too (so a loop reads as a loop); the ociwrap registries a request came
    through are passed on with every upstream request it causes (see `hops`)."""
    incoming = hops.ociwrap_hops(resolver.current_event.headers.get("via", ""))
    if incoming:
        try:
            hops.check_incoming(incoming, service().hop_name)
        except RegistryError as exc:
            return _error(exc)
    with hops.within(incoming):
        return next_middleware(resolver)


app.use(middlewares=[refuse_loops, require_login])
app.include_router(token_router)
app.include_router(page_router)


@app.route("/v2", method=READ_METHODS)
@app.route("/v2/", method=READ_METHODS)
def ping() -> Response:
    return to_response(content_reply(Content(b"{}", JSON), _is_head()))


def _blob(registry: RegistryService, route: Route, method: str, headers: dict[str, str]) -> Reply:
    """A blob's size for a HEAD; the page's own read of a generated config with its bytes;
    else a `307` to where the bytes are."""
    if method.upper() == "HEAD":
        return size_reply(registry.blob_size(route.name, route.ref))
    inline = inline_config(registry, route.name, route.ref, method, headers)
    return inline or redirect_reply(registry.blob(route.name, route.ref))


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
        content = in_time(lambda: registry.manifest(route.name, route.ref, accept))
        reply = content_reply(content, head)  # HEAD: the GET's answer without its body
    elif route.kind == "referrers":
        artifact_type = query.get("artifactType") or None
        found = in_time(lambda: registry.referrers(route.name, route.ref, artifact_type))
        reply = referrers_reply(found, head)
    elif route.kind == "blobs":
        reply = in_time(lambda: _blob(registry, route, event.http_method, event.headers))
    else:
        page = in_time(lambda: registry.tags(route.name, query.get("n"), query.get("last")))
        reply = tags_reply(page)
    return to_response(reply)


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


def _is_storage_failure(exc: Exception) -> bool:
    """An AWS SDK failure (S3 throttling, a missing bucket, permissions)."""
    if not type(exc).__module__.startswith("botocore"):
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    return isinstance(exc, BotoCoreError | ClientError)


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    """S3 failures are retryable for the client (503); bugs are logged with their trace and
    answered without it."""
    if _is_storage_failure(exc):
        logger.exception("artifact storage request failed")
        return _error(errors.storage_unavailable())
    logger.exception("unexpected error")
    return _error(RegistryError("UNKNOWN", "internal error; see the registry's logs", status=500))


@tracing
@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict, context: object) -> dict:
    started = time.perf_counter()
    with telemetry.collecting() as stats, deadline.within(request_deadline(context)):
        result = app.resolve(event, context)
    record(event, result, stats, started)
    return result


# -- SnapStart ---------------------------------------------------------------------------------
# A SnapStart version is initialised once and its memory snapshotted; every new instance
# resumes from it. The service (imports, AWS clients, upstream sessions; no open connection,
# no credentials of its own: boto3 reads the role's from the container provider on use) is
# built before the snapshot, so restored instances start with it.
try:
    from snapshot_restore_py import register_before_snapshot  # in Lambda's Python runtimes
except ImportError:  # pragma: no cover - only Lambda has it
    pass
else:  # pragma: no cover
    register_before_snapshot(service)
