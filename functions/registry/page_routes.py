"""`GET /`: the page that builds wrapped image references and shows what they will run.

The page is static files in `page/` (HTML, CSS, JS and an icon: no build step, nothing
from another origin) under a strict Content-Security-Policy: scripts and styles only from
this origin, no inline code, and Trusted Types required, so the browser itself refuses
any HTML built from strings (the page inserts what users type as text only). Every
route answers `401` until a login arrives when `REGISTRY_AUTH=basic` (the app's
middleware), which is what makes a browser show its login prompt for the page; the
page's own requests then carry that login.

The page reads images through the registry's own `/v2/` API. Manifests are answered by
the function, but a config is a `307` to a presigned URL of our bucket or to an
upstream, another origin: a browser `fetch` would need CORS there to follow it.
Browsers say where a request comes from with `Sec-Fetch-Site`, a header page scripts
cannot set, so a same-origin `GET` of a config this registry holds (a wrapped name's
generated one, or a base's or wrapper's a composition read: kilobytes of JSON, never a
layer, never fetched for this) is answered with its bytes instead; every other request,
and every other client, gets the `307` as before.
"""

from __future__ import annotations

import functools
import hashlib
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from answers import Reply, content_reply, to_response
from ociwrap.names.mediatypes import CSS, HTML, JAVASCRIPT, OCTET_STREAM, PLAIN_TEXT, SVG
from ociwrap.registry.results import Content
from wiring import service

if TYPE_CHECKING:
    from ociwrap.registry.service import RegistryService

PAGE_DIR = Path(__file__).with_name("page")
#: Where the page's HTML says which host image references name (PUBLIC_HOSTNAME).
HOST_PLACEHOLDER = "{{registry_host}}"
#: Where it says the longest lifetime a container token may ask for (TOKEN_MAX_TTL_SECONDS).
TOKEN_MAX_TTL_PLACEHOLDER = "{{token_max_ttl}}"
#: Where it says whether compositions are signed ("on" or empty).
SIGNING_PLACEHOLDER = "{{signing}}"
#: The largest generated config answered with its bytes. Lambda answers at most 6 MB of
#: JSON, and a body string can grow threefold in it (`\\u` escapes); page.js has the same
#: number and says so when a config is larger instead of fetching it.
CONFIG_INLINE_MAX_BYTES = 1024 * 1024

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "require-trusted-types-for 'script'",
        "trusted-types 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True)
class Asset:
    """One file of the page and its media type."""

    file: str
    media_type: str


PAGE = Asset("index.html", HTML)
STYLES = Asset("page.css", CSS)
SCRIPT = Asset("page.js", JAVASCRIPT)
ICON = Asset("favicon.svg", SVG)
#: The manual, for the page's links to its sections (a copy of the project's README.md).
MANUAL = Asset("README.md", PLAIN_TEXT)
READ_METHODS = ["GET", "HEAD"]

router = Router()


@functools.cache
def _read(file: str) -> bytes:
    """The file's bytes, read once per warm instance (importing the handler stays cheap)."""
    return (PAGE_DIR / file).read_bytes()


def page_facts() -> dict[str, str]:
    """What the page's HTML says of this deployment: the host references name
    (PUBLIC_HOSTNAME, else nothing: the page uses its own origin's host), the longest
    token lifetime, and whether compositions are signed."""
    registry = service()
    return {
        HOST_PLACEHOLDER: registry.settings.public_hostname or "",
        TOKEN_MAX_TTL_PLACEHOLDER: str(registry.settings.token_max_ttl_seconds),
        SIGNING_PLACEHOLDER: "on" if registry.signer is not None else "",
    }


def _body(asset: Asset) -> bytes:
    """The asset's bytes, the HTML's with this deployment's facts filled in."""
    body = _read(asset.file)
    if asset.file != "index.html":
        return body
    for placeholder, value in page_facts().items():
        body = body.replace(placeholder.encode(), html.escape(value, quote=True).encode())
    return body


def page_reply(asset: Asset, head: bool, if_none_match: str | None) -> Reply:
    """The asset with its security headers; `304` when the browser's copy is current.

    `no-cache` makes browsers revalidate every time, so a deployment is seen at once,
    and the ETag keeps revalidation to an empty answer.
    """
    body = _body(asset)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache", "ETag": etag}
    if if_none_match and etag in (tag.strip() for tag in if_none_match.split(",")):
        return Reply(304, {**headers, "Content-Length": "0"})
    headers.update({"Content-Type": asset.media_type, "Content-Length": str(len(body))})
    return Reply(200, headers, b"" if head else body)


def _serve(asset: Asset) -> Response:
    event = router.current_event
    head = event.http_method.upper() == "HEAD"
    return to_response(page_reply(asset, head, event.headers.get("if-none-match")))


@router.route("/", method=READ_METHODS)
def page() -> Response:
    return _serve(PAGE)


@router.route("/page.css", method=READ_METHODS)
def styles() -> Response:
    return _serve(STYLES)


@router.route("/page.js", method=READ_METHODS)
def script() -> Response:
    return _serve(SCRIPT)


@router.route("/README.md", method=READ_METHODS)
def manual() -> Response:
    """The manual as text: the page's header links its sections."""
    return _serve(MANUAL)


@router.route("/favicon.svg", method=READ_METHODS)
def icon() -> Response:
    """The tab's icon: without one, browsers ask for /favicon.ico and log its 404."""
    return _serve(ICON)


def same_origin(headers: dict[str, str]) -> bool:
    """Did a browser send this from a page of this origin (`Sec-Fetch-Site: same-origin`)?

    Browsers set the header themselves and forbid scripts to; other clients do not send
    it. One that fakes it gets what it could fetch by following the `307` anyway.
    """
    return headers.get("sec-fetch-site", "").strip().lower() == "same-origin"


def inline_config_limit(method: str, headers: dict[str, str]) -> int:
    """The largest generated config a blob GET may get as bytes: CONFIG_INLINE_MAX_BYTES
    for the page's own reads (same-origin GETs), 0 (always the `307`) for anything else."""
    return CONFIG_INLINE_MAX_BYTES if method.upper() == "GET" and same_origin(headers) else 0


#: Headers of a config answered with its bytes: the same URL answers other clients with a
#: `307`, so caches must keep the two apart.
INLINE_CONFIG_HEADERS = {"Vary": "Sec-Fetch-Site", "X-Content-Type-Options": "nosniff"}


def inline_config(
    registry: RegistryService, name: str, digest: str, method: str, headers: dict[str, str]
) -> Reply | None:
    """A config with its bytes, for the page's own reads: a wrapped name's generated one,
    or a base's or wrapper's that a composition read (where each setting comes from).
    None (the usual `307`) for every other request, blob, and config over the limit."""
    limit = inline_config_limit(method, headers)
    if not limit:
        return None
    body = registry.readable_config(name, digest, limit)
    if body is None:
        return None
    reply = content_reply(Content(body, OCTET_STREAM, digest), head=False)
    reply.headers.update(INLINE_CONFIG_HEADERS)
    return reply
