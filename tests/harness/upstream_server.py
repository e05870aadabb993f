"""The loopback HTTP server the fake upstreams run on, and what their answers share.

`harness.scripted` (answers a test writes route by route) and `harness.hostile` (answers
picked by scenario) both serve from a `LoopbackServer` in a thread of the test process,
answer errors with the distribution spec's error body, and hold answers back while
watching whether their client is still there.
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from harness.procs import ServerThread

JSON = ("Content-Type", "application/json")


def error_body(code: str, message: str) -> bytes:
    """The distribution spec's error document with one error."""
    return json.dumps({"errors": [{"code": code, "message": message, "detail": None}]}).encode()


def client_gone(handler: BaseHTTPRequestHandler) -> bool:
    """Whether the client of `handler`'s request has closed its connection."""
    sock = handler.connection
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def hold(
    handler: BaseHTTPRequestHandler, seconds: float, stopping: threading.Event | None = None
) -> bool:
    """Wait `seconds` before answering: False as soon as the client hangs up (or `stopping`
    is set), so a test can tell "cut off by the client's deadline" from "waited it out"."""
    stopping = stopping or threading.Event()
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        if stopping.wait(min(0.02, left)) or client_gone(handler):
            handler.close_connection = True
            return False
    return True


class LoopbackServer(ThreadingHTTPServer):
    """An HTTP server on `host` (127.0.0.1) and a port the OS picks, serving each connection
    in a daemon thread that is known in `threads` before it starts, so a test can tell
    them from threads the code under test left behind. Clients that hang up mid-answer
    are what these servers are for: their errors are not reported."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(
        self, handler: type[BaseHTTPRequestHandler], name: str, host: str = "127.0.0.1"
    ) -> None:
        self.name = name
        self.threads: set[threading.Thread] = set()
        super().__init__((host, 0), handler)
        self.port = int(self.server_address[1])
        self.url = f"http://{host}:{self.port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self.process_request_thread,
            args=(request, client_address),
            name=self.name,
            daemon=True,
        )
        self.threads.add(thread)
        thread.start()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that went away is an expected end of a request here."""

    def serve(self) -> ServerThread:
        """Serve in a thread of the test process until the returned thread is stopped."""
        return ServerThread(self, self.name).start()
