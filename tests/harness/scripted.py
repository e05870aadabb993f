"""A scripted upstream registry on 127.0.0.1: answers a test writes, route by route.

The integration harness's docker-registry never misbehaves; the cases of the upstream
client's tests need an upstream that does: wrong bytes for a digest, odd redirects, rate
limits, stalls, several challenges. `harness.hostile` misbehaves by scenario instead,
for whole pulls through a gateway; both run on `harness.upstream_server`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from harness import bodies
from harness.bodies import Wire
from harness.images import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, sha256
from harness.procs import free_port
from harness.upstream_server import LoopbackServer

Route = Callable[[BaseHTTPRequestHandler], tuple[int, Any, Any]]
#: `digest_of(data)`: the `sha256:<hex>` digest of `data`.
digest_of = sha256
#: `closed_port()`: a port on 127.0.0.1 that nothing listens on (it was free a moment ago).
closed_port = free_port


class Scripted:
    """An upstream whose answers a test writes: {(method, path): route}, with a request log.

    A route returns (status, headers, body): headers as a dict or a list of pairs (repeated
    names allowed), body as bytes or as a callable that writes (and may stall) itself to
    the `harness.bodies.Wire` it is given (file-like: `write`, `flush`).
    It listens on 127.0.0.1 only. `threads` are the threads it serves connections in, so a
    test can tell them from threads the code under test left behind.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def answer(self) -> None:
                path = self.path.split("?")[0]
                scripted.seen.append((self.command, self.path, dict(self.headers.items())))
                route = scripted.routes.get((self.command, path))
                status, headers, body = route(self) if route else (404, {}, b"")
                pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
                sized = "content-length" in {name.lower() for name, _ in pairs}
                if not sized and not callable(body):
                    pairs.append(("Content-Length", str(len(body))))
                wire = Wire(self)
                wire.start(status, pairs, close=callable(body) and not sized)
                if self.command == "HEAD":
                    return
                if not callable(body):
                    wire.send(body)
                    return
                try:
                    body(wire)
                except OSError:
                    wire.gone()

            do_GET = do_HEAD = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = LoopbackServer(Handler, "scripted upstream")
        self.threads = self.server.threads
        self.url = self.server.url
        self._serving = self.server.serve()

    def requests_to(self, path_part: str) -> list[tuple[str, str, dict[str, str]]]:
        return [seen for seen in self.seen if path_part in seen[1]]

    def stop(self) -> None:
        self._serving.stop()


class Drip:
    """A body that sends `data` `repeat` times with `pause` seconds after each send.

    It records what happened, for tests that must show the client stopped reading:
    `sent` (sends that went out), and once it is over `ended` is set and `hung_up` says
    whether it ended because the client went away before the last send.
    """

    def __init__(self, data: bytes, pause: float, repeat: int) -> None:
        self.data, self.pause, self.repeat = data, pause, repeat
        self.sent = 0
        self.hung_up = False
        self.ended = threading.Event()

    def __call__(self, wire: Wire) -> None:
        try:
            self.sent = bodies.drip(wire, itertools.repeat(self.data, self.repeat), self.pause)
            self.hung_up = self.sent < self.repeat
        finally:
            self.ended.set()


def drip(data: bytes, pause: float, repeat: int = 1) -> Drip:
    """A body that sends `data` `repeat` times with `pause` seconds after each send."""
    return Drip(data, pause, repeat)


class Stall:
    """A route that holds its answer back for up to `seconds`, watching its client.

    A request whose client hangs up while it waits is counted in `hung_up` (and never
    answered); one that waits it out is counted in `answered` and gets `answer`. A test
    that gives the stall far longer than its deadline can tell "cut off by the deadline"
    from "waited for the answer" by these counts, not by the clock.
    """

    def __init__(self, seconds: float, answer: tuple[int, Any, Any] = (200, {}, b"{}")) -> None:
        self.seconds = seconds
        self.answer = answer
        self.hung_up = 0
        self.answered = 0
        self._changed = threading.Condition()

    def __call__(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any, Any]:
        if not Wire(handler).pause(self.seconds):
            with self._changed:
                self.hung_up += 1
                self._changed.notify_all()
            return 499, {"Connection": "close"}, b""  # nobody is there to read it
        with self._changed:
            self.answered += 1
            self._changed.notify_all()
        return self.answer

    def wait_for(self, requests: int, timeout: float = 20.0) -> None:
        """Wait until `requests` requests have ended (hung up or answered)."""
        with self._changed:
            self._changed.wait_for(lambda: self.hung_up + self.answered >= requests, timeout)


def one_layer_image(name: str, label: str | None) -> dict[str, bytes]:
    """Blobs and manifests of a one-layer image, by path under /v2/<name>/: its manifest
    by tag `1` and by digest, its config (`Env: FROM=<name>`, the `org.goci.wrapper`
    label when given) and its layer."""
    layer = f"layer of {name}".encode()
    inner: dict = {"Cmd": ["run"], "Env": [f"FROM={name}"]}
    if label:
        inner["Labels"] = {"org.goci.wrapper": label}
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": inner,
            "rootfs": {"type": "layers", "diff_ids": [digest_of(layer)]},
        }
    ).encode()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": OCI_CONFIG,
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": OCI_LAYER_GZIP,
                    "digest": digest_of(layer),
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    return {
        f"/v2/{name}/manifests/1": manifest,
        f"/v2/{name}/manifests/{digest_of(manifest)}": manifest,
        f"/v2/{name}/blobs/{digest_of(config)}": config,
        f"/v2/{name}/blobs/{digest_of(layer)}": layer,
    }


def serve_paths(scripted: Scripted, routes: dict[str, bytes]) -> None:
    """Answer GET and HEAD of each path with its bytes (and their digest)."""
    for path, body in routes.items():
        headers = {"Content-Type": OCI_MANIFEST} if "/manifests/" in path else {}
        headers["Docker-Content-Digest"] = digest_of(body)
        scripted.routes["GET", path] = lambda h, b=body, hd=headers: (200, hd, b)
        scripted.routes["HEAD", path] = lambda h, b=body, hd=headers: (
            200,
            {**hd, "Content-Length": str(len(b))},
            b"",
        )


def stub_paths() -> dict[str, bytes]:
    """The images the handler's tests pull, as `one_layer_image` paths: `team/base` and
    `team/wrapper` (label `/w/run`)."""
    return {**one_layer_image("team/base", None), **one_layer_image("team/wrapper", "/w/run")}


def stub_environment(monkeypatch: Any, upstream_url: str) -> None:
    """The handler's settings for tests of it in-process: the upstream at `upstream_url`
    aliased `stub`, the bucket `unit-bucket`, dummy AWS keys (never a machine's own, for an
    in-process moto); nothing else configured."""
    for name, value in {
        "ARTIFACT_BUCKET": "unit-bucket",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "REGISTRY_ALIASES": f"stub={upstream_url}",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("S3_ENDPOINT_URL", "PUBLIC_HOSTNAME", "REGISTRY_AUTH", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)


def handler_on_stub(monkeypatch: Any, scripted: Scripted) -> None:
    """`stub_paths` served by `scripted`, in the `stub_environment`."""
    serve_paths(scripted, stub_paths())
    stub_environment(monkeypatch, scripted.url)
