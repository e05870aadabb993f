"""An AWS service endpoint on 127.0.0.1 that answers as a test scripts it.

For answers moto does not give (an error code no service model names, a value of the
wrong type, a failure on every attempt) and for what a client sends (the region in its
signature, the key it asks for). Point a client at it with boto3's own settings
(`AWS_ENDPOINT_URL_<SERVICE>`) or an `endpoint_url`; `answer(request)` gives
(status, body) for each request, and `requests` records them in order.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def operation(self) -> str:
        """The JSON protocol's operation (`GetSecretValue`), from `X-Amz-Target`."""
        return self.headers.get("x-amz-target", "").rpartition(".")[2]


class AwsEndpoint:
    """Start with `start()`, stop with `stop()` (the fixtures that make one do both)."""

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.answer: Callable[[Request], tuple[int, bytes]] = lambda request: (200, b"{}")
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # answers S3's `Expect: 100-continue` at once
            disable_nagle_algorithm = True  # headers and body go out at once

            def handle_request(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(self.command, self.path, headers, body)
                endpoint.requests.append(request)
                status, payload = endpoint.answer(request)
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_HEAD = handle_request

            def log_message(self, *_args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True  # kept-alive connections end with the test
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.01,))

    def answer_json(self, status: int, document: Any) -> None:
        """Answer every request with `document` as JSON."""
        payload = json.dumps(document).encode()
        self.answer = lambda request: (status, payload)

    def start(self) -> AwsEndpoint:
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join()
