"""A scripted upstream registry that misbehaves on purpose, for the registry's robustness tests.

Every byte the registry reads from an upstream is untrusted. `HostileRegistry` is an
upstream that abuses that trust in one way at a time: a `ThreadingHTTPServer` in a
thread of the test process, on 127.0.0.1, on a port chosen at run time. It speaks enough
of the distribution API (`/v2/`, manifests by tag and digest with GET and HEAD, blobs,
`tags/list`, a Bearer token endpoint) to serve a small **good image** (`app`: one
layer, an OCI manifest, a config with `rootfs.diff_ids`) and a **good wrapper**
(`wrapper`: one layer, label `org.goci.wrapper=/wrapper/run.sh`), built
deterministically with `harness.images`.

The first component of the repository name picks a **scenario**, so one server serves
every test: `/v2/good/app/manifests/1` is polite, `/v2/huge-manifest/app/manifests/1`
streams a 1 GiB body. Through a gateway with the alias `evil` that is the image
`evil/huge-manifest/app:1`, or the base of `wrap/evil/huge-manifest/app/1/with/...`.
Any tag names the scenario's image. A scenario may carry a label after a dot
(`good.t7`, made by `fresh("good")`): the same behaviour with its own counters, state,
mode and content. Content is per scenario name: the base layer and both configs carry
the name, so no two scenarios share a manifest, config or base-layer digest and a
registry's content-addressed cache filled by one test never answers for another.

Scenarios (see `BEHAVIOURS`; `describe()` lists them):

* `<body>-<read>`: one kind of read gets a bad body, everything else is polite.
  body: `huge` (declares and streams 1 GiB), `endless` (chunked, no length, 1 GiB),
  `overdeclared` (declares 1 GiB, sends the real body, closes), `bomb` (gzip of 256 MiB,
  `Content-Encoding: gzip`, ~1000:1), `drip` (1 byte every 0.5 s for a minute), `stall`
  (headers after a minute; HEADs stall too), `cut` (closes halfway through the body),
  `badlen-neg|abc|plus|underscore|two` (`Content-Length: -1|abc|+5|1_0`, or two values).
  read: `manifest` (manifest GETs), `config` (config blob GETs), `blob` (layer GETs),
  `tags` (`tags/list`), `token` (Bearer auth on, the token response misbehaves),
  `error` (manifest GETs answer 500 with that body), `notfound` (404 with that body).
* documents (polite protocol, nasty content): `deep-manifest`, `deep-config` (JSON
  nested 100 000 levels), `index-5000` (index of 5000 entries), `variant-long` /
  `variant-big` (index entries with variant `v999...` of 100 000 digits / `v99999999999`;
  `app` and `wrapper` are both such indexes), `layers-200` (200 layers, 200 diff_ids),
  `html-manifest` (`"mediaType": "text/html"` served as `text/html`), `nomediatype`
  (a valid OCI manifest without `mediaType`, served as `application/json`),
  `tags-nonstring`, `tags-crlf` (a tag `v1\\r\\nX-Injected: 1`), `tags-many` (100 000).
* protocol: `lying-head` (HEAD and GET claim a digest the bytes don't have; GET by that
  digest returns other bytes), `head-405`, `head-500`, `redirect-manifest` (manifest
  requests by tag 302 to another path here), `meta-<target>-<read>` with target
  `aws|fe80|ec2v6` (169.254.169.254, [fe80::1], [fd00:ec2::254]) and read `manifest` or
  `config` (a 302 there), `blob` (layer GETs and HEADs answer 307 there), `realm` (the
  Bearer challenge's realm is there) or `token` (the token endpoint answers 302 there);
  `meta-<spelling>-blob` with spelling `decimal|hex|octal|userinfo|mapped|nat64`
  (169.254.169.254 as clients' URL parsers also read it: `2852039166`, `0xa9fea9fe`,
  `0251.0376.0251.0376`, `x@169.254.169.254`, `[::ffff:169.254.169.254]`,
  `[64:ff9b::a9fe:a9fe]`; layer redirects only), `location-nul` / `location-fold` (blob 307 whose
  Location carries a NUL or an obs-fold), `ratelimit` (429, `Retry-After: 120`),
  `unavailable-once` (the first manifest GET is 503), `bearer`, `rotate` (token t1 works
  for one request, then 401; the endpoint then issues t2), `two-challenges` (a Basic
  and a Bearer `WWW-Authenticate` line), `expires-nan|nanliteral|negative|huge|text|null`
  (odd `expires_in`), `chunked-blob` (blobs without Content-Length), `lagging`
  (manifests 0.5 s late), `slowish` (manifests and configs 1.5 s late each), `slow`
  (every read stalls), `down` (500 to everything).

A blob of 5000 bytes (`big_digest`, digest-correct) is served in every scenario, for
mirror limits. The server records every request in `seen` and counts them by
(method, kind, scenario), and how each one ended (`ends`: answered, or the client hung up
mid-answer; `wait_until_served` waits for those under way); `set_mode(scenario, mode)`
swaps a scenario's behaviour at run time (`"ok"`/`"honest"` = polite, `"down"`, `"429"`,
`"slow"`, or any scenario name).
"""

from __future__ import annotations

import itertools
import json
import random
import re
import select
import socket
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from harness.images import (
    AMD64,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_MANIFEST,
    WRAPPER_LABEL,
    Image,
    Index,
    Layer,
    canonical,
    file,
    sha256,
    wrapper_image,
)
from harness.procs import ServerThread

HUGE_BYTES = 1024**3  # declared and streamed by `huge`/`endless`, never held in memory
BOMB_PLAIN_BYTES = 256 * 1024**2  # what the gzip bomb inflates to
CHUNK = 64 * 1024
SLOW_SECONDS = 60.0  # how long `stall` holds headers and `drip` keeps dripping
DRIP_INTERVAL = 0.5
LAG_SECONDS = 0.5  # `lagging`: every manifest answer
SLOWISH_SECONDS = 1.5  # `slowish`: every manifest and config answer
DEEP_LEVELS = 100_000
INDEX_ENTRIES = 5000
MANY_LAYERS = 200
MANY_TAGS = 100_000
BIG_BLOB_BYTES = 5000
SERVICE = "evil"
LONG_VARIANT = "v" + "9" * 100_000
BIG_VARIANT = "v99999999999"
CRLF_TAG = "v1\r\nX-Injected: 1"
RETRY_AFTER = "120"
METADATA = {
    "aws": "http://169.254.169.254/latest/meta-data/",
    "fe80": "http://[fe80::1]/latest/meta-data/",
    "ec2v6": "http://[fd00:ec2::254]/latest/meta-data/",
}
#: 169.254.169.254 spelled as clients' URL parsers also read it (for layer redirects only:
#: the connection guard judges what the resolver makes of them).
METADATA_SPELLINGS = {
    "decimal": "http://2852039166/latest/meta-data/",
    "hex": "http://0xa9fea9fe/latest/meta-data/",
    "octal": "http://0251.0376.0251.0376/latest/meta-data/",
    "userinfo": "http://registry.example@169.254.169.254/latest/meta-data/",
    "mapped": "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "nat64": "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
}
MODE_ALIASES = {"ok": "good", "honest": "good", "429": "ratelimit"}

_MANIFEST = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
_BLOB = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")


def error_body(code: str, message: str) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


JSON = ("Content-Type", "application/json")


# -- content: the good images and the nasty documents ------------------------------------


@dataclass(frozen=True)
class Doc:
    """A manifest or index exactly as served."""

    body: bytes
    media_type: str

    @property
    def digest(self) -> str:
        return sha256(self.body)


SCENARIO_LABEL = "org.hostile.scenario"


def gzip_bomb(plain_bytes: int = BOMB_PLAIN_BYTES) -> bytes:
    """gzip of `plain_bytes` of spaces (JSON whitespace), compressed once: ~1000:1."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(plain_bytes // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def deep_json(prefix: dict[str, Any], key: str) -> bytes:
    """`prefix` with `key` holding objects nested `DEEP_LEVELS` deep (about 600 KB)."""
    head = canonical(prefix)[:-1] + b',"' + key.encode() + b'":'
    return head + b'{"a":' * DEEP_LEVELS + b"{}" + b"}" * DEEP_LEVELS + b"}"


class Content:
    """Everything the server hands out: manifests and blobs by digest, images per scenario.

    Each scenario name (label included) gets its own good images, built on first use: the
    base layer and both configs carry the name, so no two scenarios share a manifest,
    config or base-layer digest, and a registry's content-addressed cache of one test
    can never answer for another. The wrapper's layer and the extra layers of
    `layers-200` are shared.
    """

    def __init__(self) -> None:
        self.manifests: dict[str, Doc] = {}
        self.blobs: dict[str, bytes] = {}
        self.configs: set[str] = set()
        self.lies: dict[str, Doc] = {}  # lie digest -> the doc GET by that digest returns
        self.big_blob = random.Random(BIG_BLOB_BYTES).randbytes(BIG_BLOB_BYTES)
        self.big_digest = sha256(self.big_blob)
        self.blobs[self.big_digest] = self.big_blob
        self.wrapper_layers = wrapper_image().layers
        self.extra_layers = [
            Layer.from_entries([file(f"layer/{i}", f"{i}\n")], f"layer {i}")
            for i in range(1, MANY_LAYERS)
        ]
        self.tag_lists: dict[str, list[Any]] = {
            "tags-nonstring": ["1", 2, None, {"tag": "x"}, ["y"], True, 1.5],
            "tags-crlf": [CRLF_TAG, "v2"],
            "tags-many": [f"t{i:06d}" for i in range(MANY_TAGS)],
        }
        self._images: dict[tuple[str, str], Image] = {}
        self._tops: dict[str, dict[str, Doc]] = {}
        self._lock = threading.RLock()

    @staticmethod
    def lie_of(doc: Doc) -> str:
        """The digest `lying-head` claims for `doc`: that of bytes nobody serves."""
        return sha256(doc.body + b"\n")

    def image(self, scenario: str, repo: str) -> Image:
        """The good `app` (small base) or `wrapper` image of `scenario`."""
        with self._lock:
            key = (scenario, repo)
            if key not in self._images:
                labels = {SCENARIO_LABEL: scenario}
                if repo == "wrapper":
                    labels[WRAPPER_LABEL] = "/wrapper/run.sh"
                    config = {"Env": ["WRAPPER_VAR=1"], "Labels": labels}
                    layers = list(self.wrapper_layers)
                else:
                    config = {
                        "Env": ["PATH=/usr/bin:/bin", "BASE_VAR=base"],
                        "Cmd": ["/bin/sh"],
                        "Labels": labels,
                    }
                    marker = file("etc/hostile-scenario", f"{scenario}\n")
                    layers = [Layer.from_entries([marker], "hostile base layer")]
                image = Image(layers, config, dict(AMD64))
                self.configs.add(sha256(image.config_bytes()))
                self.blobs.update(image.blobs())
                self._images[key] = image
            return self._images[key]

    def top(self, scenario: str, repo: str) -> Doc | None:
        """What a tag of `scenario/repo` points to (None: no such repository)."""
        with self._lock:
            if scenario not in self._tops:
                self._tops[scenario] = self._build(scenario)
            return self._tops[scenario].get(repo)

    def tags(self, scenario: str) -> list[Any]:
        return self.tag_lists.get(scenario.split(".")[0], ["1", "2", "latest"])

    # -- building ------------------------------------------------------------------------

    def add_doc(self, body: bytes, media_type: str) -> Doc:
        doc = Doc(body, media_type)
        self.manifests[doc.digest] = doc
        self.lies[self.lie_of(doc)] = doc
        return doc

    def add_image(self, image: Image) -> Doc:
        self.configs.add(sha256(image.config_bytes()))
        self.blobs.update(image.blobs())
        return self.add_doc(image.manifest_bytes(), OCI_MANIFEST)

    def add_index(self, index: Index) -> Doc:
        for image in index.images:
            self.add_image(image)
        return self.add_doc(index.index_bytes(), OCI_INDEX)

    def with_config(self, image: Image, config: bytes) -> Doc:
        """`image`'s manifest, its config swapped for `config` (served as a config blob)."""
        digest = sha256(config)
        self.configs.add(digest)
        self.blobs[digest] = config
        self.blobs.update({layer.digest: layer.blob for layer in image.layers})
        manifest = image.manifest_json()
        manifest["config"] = {"mediaType": OCI_CONFIG, "digest": digest, "size": len(config)}
        return self.add_doc(canonical(manifest), OCI_MANIFEST)

    def _build(self, scenario: str) -> dict[str, Doc]:
        base, wrapper = self.image(scenario, "app"), self.image(scenario, "wrapper")
        kind = scenario.split(".")[0]
        if kind == "deep-manifest":
            prefix = {"schemaVersion": 2, "mediaType": OCI_MANIFEST, SCENARIO_LABEL: scenario}
            deep = self.add_doc(deep_json(prefix, "annotations"), OCI_MANIFEST)
            return {"app": deep, "wrapper": deep}
        if kind == "deep-config":
            return {
                "app": self.with_config(base, deep_json(base.config_json(), "deep")),
                "wrapper": self.with_config(wrapper, deep_json(wrapper.config_json(), "deep")),
            }
        if kind in ("variant-long", "variant-big"):
            variant = LONG_VARIANT if kind == "variant-long" else BIG_VARIANT
            return {
                "app": self._variant_index(base, variant),
                "wrapper": self._variant_index(wrapper, variant),
            }
        good = {"app": self.add_image(base), "wrapper": self.add_image(wrapper)}
        if kind == "index-5000":
            return {**good, "app": self._wide_index(good["app"])}
        if kind == "layers-200":
            many = Image([*base.layers, *self.extra_layers], base.config, dict(AMD64))
            return {**good, "app": self.add_image(many)}
        if kind == "html-manifest":
            html = dict(base.manifest_json(), mediaType="text/html")
            return {**good, "app": self.add_doc(canonical(html), "text/html")}
        if kind == "nomediatype":
            manifest = base.manifest_json()
            del manifest["mediaType"]
            return {**good, "app": self.add_doc(canonical(manifest), "application/json")}
        return good

    def _wide_index(self, top: Doc) -> Doc:
        entry = {"mediaType": OCI_MANIFEST, "digest": top.digest, "size": len(top.body)}
        manifests = [
            dict(entry, platform={**AMD64, "os.version": f"10.0.{i}"}) for i in range(INDEX_ENTRIES)
        ]
        index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
        return self.add_doc(canonical(index), OCI_INDEX)

    def _variant_index(self, image: Image, variant: str) -> Doc:
        """`image` for amd64 plus the same for arm64/<variant> (its config agrees)."""
        arm = {"architecture": "arm64", "os": "linux", "variant": variant}
        return self.add_index(Index([image, Image(image.layers, image.config, arm)]))


# -- one request -------------------------------------------------------------------------


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
        url = urlsplit(handler.path)
        self.method = handler.command
        self.path = url.path
        self.query = url.query
        self.params = parse_qs(url.query)
        self.kind, self.name, self.ref = classify(url.path, self.params, server.content.configs)
        self.scenario = self.name.split("/")[0]
        self.repo = self.name.rsplit("/", 1)[-1]
        self.behaviour: Behaviour = BEHAVIOURS["good"]
        self.hung_up = False  # the client went away before the answer was all sent

    def header(self, name: str) -> str:
        return self.handler.headers.get(name, "")

    # -- writing -------------------------------------------------------------------------

    def start(self, status: int, headers: Iterable[tuple[str, str]], close: bool = False) -> None:
        """Status line and headers, written as given (no checks: that is the point)."""
        self.handler.send_response(status)
        for name, value in headers:
            self.handler.send_header(name, value)
        if close:
            self.handler.send_header("Connection", "close")  # also ends the keep-alive loop
        self.handler.end_headers()

    def write(self, data: bytes) -> bool:
        """False once the client has gone."""
        try:
            self.handler.wfile.write(data)
            return True
        except OSError:
            self.handler.close_connection = True
            self.hung_up = True
            return False

    def send(self, status: int, headers: Iterable[tuple[str, str]], body: bytes = b"") -> None:
        """A polite answer: its exact Content-Length, the body for GET only."""
        self.start(status, [*headers, ("Content-Length", str(len(body)))])
        if self.method != "HEAD":
            self.write(body)

    def send_error(self, status: int, code: str, message: str, *extra: tuple[str, str]) -> None:
        self.send(status, [JSON, *extra], error_body(code, message))

    def stream(self, total: int, chunked: bool = False) -> None:
        """`total` bytes of JSON whitespace, a block at a time, until the client goes."""
        block = b" " * CHUNK
        sent = 0
        while sent < total and not self.server.stopping.is_set():
            piece = block[: min(CHUNK, total - sent)]
            data = b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece
            if not self.write(data):
                return
            sent += len(piece)
        if chunked:
            self.write(b"0\r\n\r\n")

    def pause(self, seconds: float) -> bool:
        """Wait; False (stop now) if the server stops or the client hangs up meanwhile."""
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            if self.server.stopping.wait(min(0.2, left)):
                self.handler.close_connection = True
                return False
            if self.client_gone():
                self.handler.close_connection = True
                self.hung_up = True
                return False
        return True

    def client_gone(self) -> bool:
        sock = self.handler.connection
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    # -- the polite answer ---------------------------------------------------------------

    def answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """What a well-behaved registry would answer: status, headers, body."""
        content = self.server.content
        if self.kind == "manifest":
            doc = (
                content.manifests.get(self.ref)
                if _DIGEST.match(self.ref)
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


# -- bad bodies: one writer per misbehaviour, each given the polite answer ----------------

Writer = Callable[[Call, int, list[tuple[str, str]], bytes], None]


def write_huge(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """Declares 1 GiB and streams it."""
    call.start(status, [*headers, ("Content-Length", str(HUGE_BYTES))], close=True)
    call.stream(HUGE_BYTES)


def write_endless(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """No length at all: chunked, 1 GiB of it."""
    call.start(status, [*headers, ("Transfer-Encoding", "chunked")], close=True)
    call.stream(HUGE_BYTES, chunked=True)


def write_overdeclared(
    call: Call, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Promises 1 GiB, sends the real body, hangs up."""
    call.start(status, [*headers, ("Content-Length", str(HUGE_BYTES))], close=True)
    call.write(body)


def write_bomb(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """A few hundred KB that gzip-inflate to 256 MiB."""
    bomb = call.server.bomb
    encoded = [("Content-Encoding", "gzip"), ("Content-Length", str(len(bomb)))]
    call.start(status, [*headers, *encoded], close=True)
    call.write(bomb)


def write_drip(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """The real body, one byte every half second, for at most a minute."""
    call.start(status, [*headers, ("Content-Length", str(len(body)))], close=True)
    give_up = time.monotonic() + SLOW_SECONDS
    for i in range(len(body)):
        if time.monotonic() > give_up or not call.write(body[i : i + 1]):
            return
        if not call.pause(DRIP_INTERVAL):
            return


def write_stall(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """Nothing for a minute, then the polite answer."""
    if call.pause(SLOW_SECONDS):
        call.send(status, headers, body)


def write_cut(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    """The right Content-Length, half the body, then the connection closes."""
    call.start(status, [*headers, ("Content-Length", str(len(body)))], close=True)
    call.write(body[: len(body) // 2])


def bad_length(*values: str) -> Writer:
    """`Content-Length` header lines with these values ("{n}" is the real length)."""

    def write(call: Call, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        lengths = [("Content-Length", value.format(n=len(body))) for value in values]
        call.start(status, [*headers, *lengths], close=True)
        call.write(body)

    write.__doc__ = f"Content-Length: {' / '.join(values)}"
    return write


WRITERS: dict[str, Writer] = {
    "huge": write_huge,
    "endless": write_endless,
    "overdeclared": write_overdeclared,
    "bomb": write_bomb,
    "drip": write_drip,
    "stall": write_stall,
    "cut": write_cut,
    "badlen-neg": bad_length("-1"),
    "badlen-abc": bad_length("abc"),
    "badlen-plus": bad_length("+5"),
    "badlen-underscore": bad_length("1_0"),
    "badlen-two": bad_length("{n}", "1{n}"),
}


# -- behaviours: what a scenario does with each request ----------------------------------


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


# Which `Call.kind` each read of the grid attacks, and the status its bad body comes with.
READS: dict[str, tuple[str, int | None]] = {
    "manifest": ("manifest", None),
    "config": ("config", None),
    "blob": ("blob", None),
    "tags": ("tags", None),
    "error": ("manifest", 500),
    "notfound": ("manifest", 404),
}


def misbehave(read: str, writer: Writer) -> Behaviour:
    """Polite, except that `read` comes with `writer`'s body (a token read: auth on)."""
    if read == "token":
        return Behaviour(token=lambda call: writer(call, *call.answer()), doc=writer.__doc__ or "")

    kind, error_status = READS[read]

    def registry(call: Call) -> None:
        if call.kind != kind or (call.method == "HEAD" and writer is not write_stall):
            polite(call)
        elif error_status is not None:
            body = error_body("UNKNOWN", "upstream trouble")
            writer(call, error_status, [JSON], body)
        else:
            writer(call, *call.answer())

    return Behaviour(registry, doc=writer.__doc__ or "")


def down(call: Call) -> None:
    """500 to every request."""
    call.send_error(500, "UNKNOWN", "the registry is down")


def ratelimit(call: Call) -> None:
    """429 with Retry-After: 120 to every request."""
    call.send_error(429, "TOOMANYREQUESTS", "slow down", ("Retry-After", RETRY_AFTER))


def slow(call: Call) -> None:
    """Every read holds its headers back for a minute."""
    write_stall(call, *call.answer())


def delayed(seconds: float, kinds: tuple[str, ...]) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind in kinds and not call.pause(seconds):
            return
        polite(call)

    registry.__doc__ = f"{'/'.join(kinds)} answers {seconds} s late"
    return registry


def lying_head(call: Call) -> None:
    """HEAD and GET by tag claim a digest the bytes don't have; GET by it gives other bytes."""
    content = call.server.content
    if call.kind == "manifest":
        doc = content.lies.get(call.ref) or (
            None if _DIGEST.match(call.ref) else content.top(call.scenario, call.repo)
        )
        if doc is not None:
            lie = content.lie_of(doc)
            headers = [("Content-Type", doc.media_type), ("Docker-Content-Digest", lie)]
            return call.send(200, headers, doc.body)
    polite(call)


def refuse_head(status: int) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == "manifest" and call.method == "HEAD":
            call.send_error(status, "UNSUPPORTED", "no HEAD here")
        else:
            polite(call)

    registry.__doc__ = f"manifest HEADs answer {status}, GETs work"
    return registry


def redirect_manifest(call: Call) -> None:
    """Manifest requests by tag answer 302 to another path here (`?moved=1`), then polite."""
    if call.kind == "manifest" and not _DIGEST.match(call.ref) and "moved" not in call.params:
        call.send(302, [("Location", f"{call.server.url}{call.path}?moved=1")])
    else:
        polite(call)


def redirect_to(target: str, kind: str, status: int = 302) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == kind:
            call.send(status, [("Location", target)])
        else:
            polite(call)

    registry.__doc__ = f"{kind} requests answer {status} to {target}"
    return registry


def redirect_token(target: str) -> Callable[[Call], None]:
    def token(call: Call) -> None:
        call.send(302, [("Location", target)])

    return token


def bad_location(location_tail: str) -> Callable[[Call], None]:
    def registry(call: Call) -> None:
        if call.kind == "blob" and call.method == "GET":
            call.send(307, [("Location", f"{call.server.url}/storage/{location_tail}")])
        else:
            polite(call)

    registry.__doc__ = f"layer GETs answer 307 with Location .../storage/{location_tail!r}"
    return registry


def unavailable_once(call: Call) -> None:
    """The first manifest GET of the scenario is 503, later ones are polite."""
    if call.kind == "manifest" and call.method == "GET" and call.server.bump(call.scenario) == 1:
        call.send_error(503, "UNAVAILABLE", "try again")
    else:
        polite(call)


def chunked_blob(call: Call) -> None:
    """Layer blobs come without Content-Length (chunked GETs, length-less HEADs)."""
    status, headers, body = call.answer()
    if call.kind != "blob" or status != 200:
        return call.send(status, headers, body)
    if call.method == "HEAD":
        return call.start(200, headers, close=True)
    call.start(200, [*headers, ("Transfer-Encoding", "chunked")])
    for i in range(0, len(body), 1000):
        piece = body[i : i + 1000]
        if not call.write(b"%x\r\n%s\r\n" % (len(piece), piece)):
            return
    call.write(b"0\r\n\r\n")


def expiring(literal: str) -> Behaviour:
    return Behaviour(
        token=lambda call: call.send(*call.token_answer(literal)),
        doc=f"Bearer auth, token responses with expires_in {literal}",
    )


BEHAVIOURS: dict[str, Behaviour] = {
    "good": Behaviour(doc="polite"),
    "down": Behaviour(down, doc=down.__doc__ or ""),
    "ratelimit": Behaviour(ratelimit, doc=ratelimit.__doc__ or ""),
    "slow": Behaviour(slow, doc=slow.__doc__ or ""),
    "lagging": Behaviour(delayed(LAG_SECONDS, ("manifest",))),
    "slowish": Behaviour(delayed(SLOWISH_SECONDS, ("manifest", "config"))),
    "lying-head": Behaviour(lying_head, doc=lying_head.__doc__ or ""),
    "head-405": Behaviour(refuse_head(405)),
    "head-500": Behaviour(refuse_head(500)),
    "redirect-manifest": Behaviour(redirect_manifest, doc=redirect_manifest.__doc__ or ""),
    "location-nul": Behaviour(bad_location("blob\x00evil")),
    "location-fold": Behaviour(bad_location("blob\r\n folded")),
    "unavailable-once": Behaviour(unavailable_once, doc=unavailable_once.__doc__ or ""),
    "chunked-blob": Behaviour(chunked_blob, doc=chunked_blob.__doc__ or ""),
    "bearer": Behaviour(token=polite_token, doc="Bearer auth, polite"),
    "rotate": Behaviour(token=polite_token, rotate=True, doc="token t1 works once, then t2"),
    "two-challenges": Behaviour(
        token=polite_token, basic_first=True, doc="Basic and Bearer challenge lines"
    ),
    "expires-nan": expiring('"NaN"'),
    "expires-nanliteral": expiring("NaN"),
    "expires-negative": expiring("-5"),
    "expires-huge": expiring("1e309"),
    "expires-text": expiring('"abc"'),
    "expires-null": expiring("null"),
}
for _writer_name, _writer in WRITERS.items():
    for _read in [*READS, "token"]:
        BEHAVIOURS[f"{_writer_name}-{_read}"] = misbehave(_read, _writer)
for _target_name, _target in METADATA.items():
    BEHAVIOURS[f"meta-{_target_name}-manifest"] = Behaviour(redirect_to(_target, "manifest"))
    BEHAVIOURS[f"meta-{_target_name}-config"] = Behaviour(redirect_to(_target, "config"))
    BEHAVIOURS[f"meta-{_target_name}-blob"] = Behaviour(redirect_to(_target, "blob", 307))
    BEHAVIOURS[f"meta-{_target_name}-realm"] = Behaviour(
        token=polite_token, realm=_target, doc=f"Bearer challenge with realm {_target}"
    )
    BEHAVIOURS[f"meta-{_target_name}-token"] = Behaviour(
        token=redirect_token(_target), doc=f"the token endpoint answers 302 to {_target}"
    )
for _target_name, _target in METADATA_SPELLINGS.items():
    BEHAVIOURS[f"meta-{_target_name}-blob"] = Behaviour(redirect_to(_target, "blob", 307))
for _name in (
    "deep-manifest",
    "deep-config",
    "index-5000",
    "variant-long",
    "variant-big",
    "layers-200",
    "html-manifest",
    "nomediatype",
    "tags-nonstring",
    "tags-crlf",
    "tags-many",
):
    BEHAVIOURS[_name] = Behaviour(doc="polite protocol, nasty documents")


def describe() -> dict[str, str]:
    """Scenario name -> one line on what it does."""
    return {
        name: b.doc or (b.registry.__doc__ or "").strip() for name, b in sorted(BEHAVIOURS.items())
    }


# -- the server --------------------------------------------------------------------------


@dataclass
class ScenarioState:
    tokens: set[str] = field(default_factory=set)
    issued: int = 0
    first_token_uses: int = 0
    bumps: int = 0


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class HostileRegistry:
    """The misbehaving upstream at `url` (http://127.0.0.1:PORT); see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.url = ""
        self.content = Content()
        self.bomb = b""
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[Seen] = []
        self._ends: list[tuple[str, str]] = []  # (scenario, how the request ended)
        self._served = threading.Condition(self._lock)
        self._modes: dict[str, str] = {}
        self._state: dict[str, ScenarioState] = {}
        self._labels = itertools.count(1)
        self._serving: ServerThread | None = None

    # -- the images it serves ----------------------------------------------------------

    def image(self, scenario: str, repo: str = "app") -> Image:
        """The good `app` or `wrapper` image of `scenario` (layers, config, manifest)."""
        return self.content.image(scenario, repo)

    def top(self, scenario: str, repo: str = "app") -> Doc:
        """The manifest or index a tag of `scenario/repo` points to (honestly)."""
        doc = self.content.top(scenario, repo)
        assert doc is not None, f"no {repo} in scenario {scenario}"
        return doc

    def lie(self, scenario: str, repo: str = "app") -> str:
        """The digest `lying-head` claims for `scenario/repo`."""
        return self.content.lie_of(self.top(scenario, repo))

    @property
    def big_blob(self) -> bytes:
        return self.content.big_blob

    @property
    def big_digest(self) -> str:
        return self.content.big_digest

    # -- scenarios and modes -----------------------------------------------------------

    def fresh(self, behaviour: str) -> str:
        """A scenario name nobody has used: `behaviour.tN` (own counters, state and mode)."""
        if behaviour not in BEHAVIOURS:
            raise KeyError(f"no scenario {behaviour!r}")
        return f"{behaviour}.t{next(self._labels)}"

    def set_mode(self, scenario: str, mode: str) -> None:
        """From now on `scenario` behaves as `mode` (a scenario name, or ok/honest/429)."""
        mode = MODE_ALIASES.get(mode, mode)
        if mode not in BEHAVIOURS:
            raise KeyError(f"no mode {mode!r}")
        with self._lock:
            self._modes[scenario] = mode

    def mode(self, scenario: str) -> str:
        with self._lock:
            return self._modes.get(scenario) or scenario.split(".")[0]

    def _behaviour(self, scenario: str) -> Behaviour | None:
        return BEHAVIOURS.get(self.mode(scenario))

    def _scenario(self, scenario: str) -> ScenarioState:
        return self._state.setdefault(scenario, ScenarioState())  # callers hold the lock

    def bump(self, scenario: str) -> int:
        """A per-scenario counter for behaviours that change over time."""
        with self._lock:
            state = self._scenario(scenario)
            state.bumps += 1
            return state.bumps

    def issue_token(self, scenario: str, rotate: bool) -> str:
        with self._lock:
            state = self._scenario(scenario)
            state.issued += 1
            token = f"{scenario}-t{min(state.issued, 2) if rotate else 1}"
            state.tokens.add(token)
            return token

    def _authorized(self, call: Call) -> bool:
        scheme, _, token = call.header("Authorization").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            state = self._scenario(call.scenario)
            if token not in state.tokens:
                return False
            if call.behaviour.rotate and token.endswith("-t1"):
                state.first_token_uses += 1
                if state.first_token_uses > 1:
                    state.tokens.discard(token)
                    return False
            return True

    # -- what it saw -------------------------------------------------------------------

    @property
    def seen(self) -> list[Seen]:
        """Every request so far, oldest first (a copy)."""
        with self._lock:
            return list(self._seen)

    def requests(
        self,
        method: str | None = None,
        kind: str | None = None,
        scenario: str | None = None,
        ref: str | None = None,
    ) -> list[Seen]:
        """The requests matching every given filter."""
        return [
            s
            for s in self.seen
            if (method is None or s.method == method.upper())
            and (kind is None or s.kind == kind)
            and (scenario is None or s.scenario == scenario)
            and (ref is None or s.ref == ref)
        ]

    def count(
        self,
        method: str | None = None,
        kind: str | None = None,
        scenario: str | None = None,
        ref: str | None = None,
    ) -> int:
        return len(self.requests(method, kind, scenario, ref))

    def counts(self) -> Counter[tuple[str, str, str]]:
        """Requests per (method, kind, scenario)."""
        return Counter((s.method, s.kind, s.scenario) for s in self.seen)

    def ends(self, scenario: str) -> list[str]:
        """How each request of `scenario` that is over ended, in order: "answered" (all of
        the answer was sent), or "hung up" (the client went away before that)."""
        with self._lock:
            return [how for name, how in self._ends if name == scenario]

    def wait_until_served(self, scenario: str, timeout: float) -> bool:
        """Wait until no request of `scenario` is under way any more; False on time-out."""

        def over() -> bool:
            started = sum(1 for seen in self._seen if seen.scenario == scenario)
            return sum(1 for name, _ in self._ends if name == scenario) >= started

        with self._served:
            return self._served.wait_for(over, timeout)

    def _ended(self, call: Call) -> None:
        with self._served:
            self._ends.append((call.scenario, "hung up" if call.hung_up else "answered"))
            self._served.notify_all()

    def _record(self, call: Call) -> None:
        seen = Seen(
            call.method,
            call.path,
            call.query,
            tuple(call.handler.headers.items()),
            call.kind,
            call.scenario,
            call.ref,
        )
        with self._lock:
            self._seen.append(seen)

    # -- serving -----------------------------------------------------------------------

    def _dispatch(self, call: Call) -> None:
        if call.kind == "ping":
            return call.send(200, [JSON, ("Docker-Distribution-API-Version", "registry/2.0")])
        behaviour = self._behaviour(call.scenario)
        if behaviour is None:
            if call.kind == "token":
                return polite_token(call)
            return call.send_error(404, "NAME_UNKNOWN", f"no scenario {call.scenario!r}")
        call.behaviour = behaviour
        if call.kind == "token":
            return (behaviour.token or polite_token)(call)
        if behaviour.token is not None and not self._authorized(call):
            return call.challenge()
        behaviour.registry(call)

    def start(self) -> HostileRegistry:
        registry = self
        if not self.bomb:
            self.bomb = gzip_bomb()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "hostile-registry"
            timeout = 300  # idle keep-alive connections end eventually

            def answer(self) -> None:
                call = Call(self, registry)
                registry._record(call)
                try:
                    registry._dispatch(call)
                except OSError:  # the client went away mid-answer
                    self.close_connection = True
                    call.hung_up = True
                finally:
                    registry._ended(call)

            def refuse(self) -> None:
                self.close_connection = True
                body = error_body("UNSUPPORTED", "read-only")
                self.send_response(405)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = answer
            do_POST = do_PUT = do_PATCH = do_DELETE = refuse

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: requests are recorded in `seen` instead."""

        self.stopping.clear()
        server = _Server((self.host, 0), Handler)
        self.port = int(server.server_address[1])
        self.url = f"http://{self.host}:{self.port}"
        self._serving = ServerThread(server, "hostile-registry").start()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends stalls, drips and streams
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self) -> HostileRegistry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
