"""A scripted upstream registry on 127.0.0.1 for unit tests of the upstream client.

The integration harness's docker-registry never misbehaves; these cases need an upstream
that does: wrong bytes for a digest, odd redirects, rate limits, stalls, several challenges.
"""

from __future__ import annotations

import hashlib
import json
import select
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
Route = Callable[[BaseHTTPRequestHandler], tuple[int, Any, Any]]


class Scripted:
    """An upstream whose answers a test writes: {(method, path): route}, with a request log.

    A route returns (status, headers, body): headers as a dict or a list of pairs (repeated
    names allowed), body as bytes or as a callable that writes (and may stall) itself.
    It listens on 127.0.0.1 only. `threads` are the threads it serves connections in, so a
    test can tell them from threads the code under test left behind.
    """

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[tuple[str, str, dict[str, str]]] = []
        self.threads: set[threading.Thread] = set()
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self) -> None:
                path = self.path.split("?")[0]
                scripted.seen.append((self.command, self.path, dict(self.headers.items())))
                route = scripted.routes.get((self.command, path))
                status, headers, body = route(self) if route else (404, {}, b"")
                pairs = list(headers.items()) if isinstance(headers, dict) else list(headers)
                self.send_response(status)
                for name, value in pairs:
                    self.send_header(name, value)
                names = {name.lower() for name, _ in pairs}
                if "content-length" not in names and not callable(body):
                    self.send_header("Content-Length", str(len(body)))
                if callable(body) and "content-length" not in names:
                    self.send_header("Connection", "close")
                    self.close_connection = True
                self.end_headers()
                if self.command != "HEAD":
                    try:
                        if callable(body):
                            body(self.wfile)
                        else:
                            self.wfile.write(body)
                    except OSError:
                        self.close_connection = True

            do_GET = do_HEAD = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def process_request(self, request: Any, client_address: Any) -> None:
                """A thread per connection, known in `threads` before it starts (and not
                waited for on close: a stalled answer ends when its client hangs up)."""
                thread = threading.Thread(
                    target=self.process_request_thread,
                    args=(request, client_address),
                    name="scripted upstream",
                    daemon=True,
                )
                scripted.threads.add(thread)
                thread.start()

            def handle_error(self, request: Any, client_address: Any) -> None:
                """Clients that hang up mid-answer are what these tests are about."""

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()

    def requests_to(self, path_part: str) -> list[tuple[str, str, dict[str, str]]]:
        return [seen for seen in self.seen if path_part in seen[1]]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def client_gone(handler: BaseHTTPRequestHandler) -> bool:
    """Whether the client of `handler`'s request has closed its connection."""
    sock = handler.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Drip:
    """A body that sends `data` `repeat` times with `pause` seconds between sends.

    It records what happened, for tests that must show the client stopped reading:
    `sent` (sends that went out), and once it is over `ended` is set and `hung_up` says
    whether it ended because the client went away (a send failed) before the last send.
    """

    def __init__(self, data: bytes, pause: float, repeat: int) -> None:
        self.data, self.pause, self.repeat = data, pause, repeat
        self.sent = 0
        self.hung_up = False
        self.ended = threading.Event()

    def __call__(self, wfile: Any) -> None:
        try:
            for _ in range(self.repeat):
                wfile.write(self.data)
                wfile.flush()
                self.sent += 1
                time.sleep(self.pause)
        except OSError:
            self.hung_up = True
            raise
        finally:
            self.ended.set()


def drip(data: bytes, pause: float, repeat: int = 1) -> Drip:
    """A body that sends `data` `repeat` times with `pause` seconds between sends."""
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
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            if client_gone(handler):
                with self._changed:
                    self.hung_up += 1
                    self._changed.notify_all()
                handler.close_connection = True
                return 499, {"Connection": "close"}, b""  # nobody is there to read it
            time.sleep(0.02)
        with self._changed:
            self.answered += 1
            self._changed.notify_all()
        return self.answer

    def wait_for(self, requests: int, timeout: float = 20.0) -> None:
        """Wait until `requests` requests have ended (hung up or answered)."""
        with self._changed:
            self._changed.wait_for(lambda: self.hung_up + self.answered >= requests, timeout)


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (it was free a moment ago)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


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
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": digest_of(config),
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
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


def handler_on_stub(monkeypatch: Any, scripted: Scripted) -> None:
    """The handler's environment for tests of it in-process: the one-layer images
    `team/base` and `team/wrapper` (label `/w/run`) on `scripted`, aliased `stub`; the
    bucket `unit-bucket` (for an in-process moto); nothing else configured."""
    serve_paths(
        scripted,
        {**one_layer_image("team/base", None), **one_layer_image("team/wrapper", "/w/run")},
    )
    for name, value in {
        "ARTIFACT_BUCKET": "unit-bucket",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "REGISTRY_ALIASES": f"stub={scripted.url}",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("S3_ENDPOINT_URL", "PUBLIC_HOSTNAME", "REGISTRY_AUTH", "REGISTRY_AUTH_FILE"):
        monkeypatch.delenv(name, raising=False)
