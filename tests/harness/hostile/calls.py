"""One request to the hostile registry: what it asked for, and the polite way to answer it.

A `Call` parses the request; a scenario's `Behaviour` answers it, politely (`polite`) or
through one of `harness.bodies`' writers on the call's `wire`.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from harness import bodies
from harness.bodies import Wire
from harness.upstream_server import JSON, error_body

if TYPE_CHECKING:
    from harness.hostile.server import HostileRegistry

SERVICE = "evil"

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True)
class Seen:
    """One request as the hostile registry received it."""

    method: str
    path: str
    query: str
    headers: tuple[tuple[str, str], ...]
    kind: str  # ping | manifest | config | blob | tags | token | other
    scenario: str
    ref: str

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None


def classify(path: str, query: dict[str, list[str]], configs: set[str]) -> tuple[str, str, str]:
    """(kind, repository name, ref) of a request path; the token endpoint's name is its scope's."""
    if path.rstrip("/") == "/v2":
        return "ping", "", ""
    if path == "/token":
        for scope in " ".join(query.get("scope", [])).split():
            kind, _, rest = scope.partition(":")
            if kind == "repository":
                return "token", rest.rpartition(":")[0], ""
        return "token", "", ""
    for kind, pattern in (("manifest", _MANIFEST), ("blob", _BLOB), ("tags", _TAGS)):
        match = pattern.match(path)
        if match:
            ref = match.groupdict().get("ref", "")
            if kind == "blob" and ref in configs:
                kind = "config"
            return kind, match["name"], ref
    return "other", "", ""


class Call:
    """One request, parsed, with the ways of answering it that behaviours combine."""

    def __init__(self, handler: BaseHTTPRequestHandler, server: HostileRegistry) -> None:
        self.handler = handler
        self.server = server
        self.wire = Wire(handler, server.stopping)
        url = urlsplit(handler.path)
        self.method = handler.command
        self.path = url.path
        self.query = url.query
        self.params = parse_qs(url.query)
        self.kind, self.name, self.ref = classify(url.path, self.params, server.content.configs)
        self.scenario = self.name.split("/")[0]
        self.repo = self.name.rsplit("/", 1)[-1]
        self.behaviour = Behaviour()

    @property
    def hung_up(self) -> bool:
        """The client went away before the answer was all sent."""
        return self.wire.hung_up

    def header(self, name: str) -> str:
        return self.handler.headers.get(name, "")

    def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        """A polite answer: its exact Content-Length, the body for GET only."""
        bodies.send(self.wire, status, list(headers), body, self.method)

    def send_error(self, status: int, code: str, message: str, *extra: tuple[str, str]) -> None:
        self.send(status, [JSON, *extra], error_body(code, message))

    # -- the polite answer ---------------------------------------------------------------

    def answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """What a well-behaved registry would answer: status, headers, body."""
        content = self.server.content
        if self.kind == "manifest":
            doc = (
                content.manifests.get(self.ref)
                if DIGEST.match(self.ref)
                else content.top(self.scenario, self.repo)
            )
            if doc is None:
                return 404, [JSON], error_body("MANIFEST_UNKNOWN", f"no manifest {self.ref}")
            headers = [("Content-Type", doc.media_type), ("Docker-Content-Digest", doc.digest)]
            return 200, headers, doc.body
        if self.kind in ("blob", "config"):
            data = content.blobs.get(self.ref)
            if data is None:
                return 404, [JSON], error_body("BLOB_UNKNOWN", f"no blob {self.ref}")
            headers = [("Content-Type", "application/octet-stream")]
            return 200, [*headers, ("Docker-Content-Digest", self.ref)], data
        if self.kind == "tags":
            return self.tags_answer(content.tags(self.scenario))
        if self.kind == "token":
            return self.token_answer()
        return 404, [JSON], error_body("NAME_UNKNOWN", f"nothing at {self.path}")

    def tags_answer(self, tags: list[Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """A page of `tags` (`n`, `last` as distribution does); the Link `last` is %-encoded."""
        headers = [JSON]
        if all(isinstance(tag, str) for tag in tags):
            page = sorted(tags)
            last = self.params.get("last", [""])[0]
            page = [tag for tag in page if tag > last] if last else page
            n = self.params.get("n", [""])[0]
            if n.isdecimal() and n.isascii():
                more = len(page) > int(n)
                page = page[: int(n)]
                if more and page:
                    link = f"/v2/{self.name}/tags/list?n={n}&last={quote(page[-1], safe='')}"
                    headers.append(("Link", f'<{link}>; rel="next"'))
            tags = page
        return 200, headers, json.dumps({"name": self.name, "tags": tags}).encode()

    def token_answer(self, expires_in: str = "300") -> tuple[int, list[tuple[str, str]], bytes]:
        """A token response (`expires_in` is spliced in raw: it may be any JSON, or none)."""
        token = self.server.issue_token(self.scenario, self.behaviour.rotate)
        body = (
            f'{{"token": "{token}", "access_token": "{token}", "expires_in": {expires_in}, '
            f'"issued_at": "{time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}"}}'
        )
        return 200, [JSON], body.encode()

    def challenge(self) -> None:
        realm = self.behaviour.realm or f"{self.server.url}/token"
        bearer = f'Bearer realm="{realm}",service="{SERVICE}",scope="repository:{self.name}:pull"'
        lines = [("WWW-Authenticate", 'Basic realm="evil"')] if self.behaviour.basic_first else []
        lines.append(("WWW-Authenticate", bearer))
        self.send_error(401, "UNAUTHORIZED", "authentication required", *lines)


def polite(call: Call) -> None:
    call.send(*call.answer())


@dataclass(frozen=True)
class Behaviour:
    """How a scenario answers registry requests, and its token endpoint (None: no auth)."""

    registry: Callable[[Call], None] = polite
    token: Callable[[Call], None] | None = None
    realm: str | None = None  # the challenge's realm; default: this server's /token
    basic_first: bool = False  # a Basic challenge line before the Bearer one
    rotate: bool = False  # the first token works once; later ones keep working
    doc: str = ""


def polite_token(call: Call) -> None:
    call.send(*call.token_answer())
