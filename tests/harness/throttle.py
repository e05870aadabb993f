"""A loopback TCP proxy that slows down what a server sends: a slow upstream on demand.

`Throttle(target_port, bytes_per_second)` listens on 127.0.0.1 (a port chosen at run
time) and forwards every connection to 127.0.0.1:`target_port`. What the client sends
passes as it comes; what the server answers is passed on at most `bytes_per_second`
per connection. Put it in front of a `docker-registry` to get an upstream that serves
blob bytes itself, honours `Range`, and is too slow to copy a large blob within one
request. `stop()` closes the listener and every connection still open.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
import time

from harness.procs import ServerThread

CHUNK = 16 * 1024


def _pipe(source: socket.socket, sink: socket.socket, rate: float | None) -> None:
    """Copy `source` to `sink` until either side closes, at most `rate` bytes a second."""
    with contextlib.suppress(OSError):
        while data := source.recv(CHUNK):
            sink.sendall(data)
            if rate:
                time.sleep(len(data) / rate)
    for sock in (source, sink):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class Throttle:
    """A rate-limiting TCP proxy on 127.0.0.1 in front of a server on 127.0.0.1."""

    def __init__(self, target_port: int, bytes_per_second: float) -> None:
        self.target = ("127.0.0.1", target_port)
        self.rate = bytes_per_second
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                try:
                    server = socket.create_connection(proxy.target, timeout=10)
                except OSError:
                    return
                server.settimeout(None)
                proxy._track(self.request, server)
                up = threading.Thread(target=_pipe, args=(self.request, server, None), daemon=True)
                up.start()
                _pipe(server, self.request, proxy.rate)
                up.join(5)
                proxy._forget(self.request, server)
                server.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = ServerThread(self._server, f"throttle-{self.port}")

    def _track(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.update(socks)

    def _forget(self, *socks: socket.socket) -> None:
        with self._lock:
            self._open.difference_update(socks)

    def start(self) -> Throttle:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and cut every connection, so no handler thread lingers."""
        self._thread.stop()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def __enter__(self) -> Throttle:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
