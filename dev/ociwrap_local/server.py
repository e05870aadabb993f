"""The HTTP front of one worker: requests in, events to the instance, answers out.

What API Gateway does before the function sees a request is done here too: a body over
its 10 MB payload limit is refused with 413 without being read (`Content-Length` is
checked first, chunked bodies are read only up to the limit), a malformed
`Content-Length` is a 400, both with API Gateway's own JSON. Every method token reaches
the handler. Each connection has a thread for its I/O, so an idle keep-alive connection
blocks nobody; the handler calls of all of them go through the worker's one `Instance`.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import threading
import time
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from ociwrap_local.events import (
    API_GATEWAY_TIMEOUT_SECONDS,
    LAMBDA_TIMEOUT_SECONDS,
    MAX_REQUEST_BODY_BYTES,
    build_event,
)
from ociwrap_local.instance import Instance, Invocation

#: How long an idle keep-alive connection is kept open.
IDLE_TIMEOUT_SECONDS = 60.0
#: After refusing a body, how long its remaining bytes are read and dropped, so the
#: client sees the answer rather than a reset connection.
LINGER_SECONDS = 1.0

_MESSAGES = {
    400: "Bad Request",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_DIGITS = re.compile(r"[0-9]+")
_HEX = re.compile(rb"[0-9A-Fa-f]+")
_MAX_CHUNK_LINE = 4096
_MAX_TRAILER_LINES = 100


class Refused(Exception):
    """The gateway answers the request itself with `status`."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class ClientGone(Exception):
    """The client closed the connection before its request was complete."""


def access_log_lines(
    client: str,
    requestline: str,
    status: int,
    sent: int,
    handler_seconds: float | None,
    total_seconds: float,
    handler_timed_out: bool = False,
) -> list[str]:
    """The gateway's log lines for one request: the access line, and any deadline overrun.

    `<client> "<request line>" <status> <bytes sent> <handler ms>ms`; then, when API
    Gateway would have cut the request off (or Lambda would have ended the function),
    a line with `DEADLINE EXCEEDED`.
    """
    took = "-" if handler_seconds is None else f"{handler_seconds * 1000:.1f}ms"
    lines = [f'{client} "{requestline}" {status} {sent} {took}']
    if handler_timed_out:
        lines.append(
            f'{client} DEADLINE EXCEEDED "{requestline}": the handler ran '
            f"{handler_seconds or 0:.1f} s, Lambda ends it after {LAMBDA_TIMEOUT_SECONDS} s"
        )
    elif total_seconds > API_GATEWAY_TIMEOUT_SECONDS:
        lines.append(
            f'{client} DEADLINE EXCEEDED "{requestline}": answered after {total_seconds:.1f} s, '
            f"API Gateway cuts requests off after {API_GATEWAY_TIMEOUT_SECONDS} s"
        )
    return lines


class Connection:
    """What a request handler knows of its worker: the instance, and when a request came."""

    def __init__(self, instance: Instance) -> None:
        self.instance = instance
        self.first_request = threading.Event()


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """Turns each request into an event, invokes the instance, writes back its answer."""

    protocol_version = "HTTP/1.1"
    server_version = "ociwrap-gateway"
    timeout = IDLE_TIMEOUT_SECONDS
    disable_nagle_algorithm = True
    server: Connection  # type: ignore[assignment]

    def setup(self) -> None:
        super().setup()
        self.unread_body = False
        self._expects_continue = False

    def handle_one_request(self) -> None:
        """One request: read it, dispatch any method token, answer; errors end the connection."""
        self._expects_continue = False
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return  # answered by send_error
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self.close_connection = True

    def handle_expect_100(self) -> bool:
        """`100 Continue` is sent only once the body's length has been accepted."""
        self._expects_continue = True
        return True

    def _dispatch(self) -> None:
        received = time.monotonic()
        instance = self.server.instance
        with instance.pending():
            self.server.first_request.set()
            try:
                if not _TOKEN.fullmatch(self.command):
                    raise Refused(400)
                body = self._read_body()
            except Refused as refused:
                self.close_connection = True
                self.unread_body = True
                sent = self._answer_json(refused.status)
                self._log(refused.status, sent, None, received)
                return
            except ClientGone:
                self.close_connection = True
                return
            event = build_event(
                self.command, self.path, self.headers.items(), body, self.client_address[0]
            )
            invocation = instance.invoke(event)
        sent = self._write(invocation)
        self._log(invocation.status, sent, invocation, received)

    def _read_body(self) -> bytes:
        codings = self.headers.get_all("Transfer-Encoding") or []
        lengths = self.headers.get_all("Content-Length") or []
        if codings:
            parts = [c.strip().lower() for value in codings for c in value.split(",")]
            if lengths or parts != ["chunked"]:
                raise Refused(400)
            return self._read_chunked()
        if not lengths:
            return b""
        values = {v.strip() for value in lengths for v in value.split(",")}
        if len(values) != 1:
            raise Refused(400)
        (text,) = values
        if not _DIGITS.fullmatch(text):
            raise Refused(400)
        digits = text.lstrip("0") or "0"
        length = int(digits) if len(digits) <= 18 else MAX_REQUEST_BODY_BYTES + 1
        if length > MAX_REQUEST_BODY_BYTES:
            raise Refused(413)
        self._continue()
        body = self.rfile.read(length) if length else b""
        if len(body) < length:
            raise ClientGone()
        return body

    def _read_chunked(self) -> bytes:
        """A chunked body, read no further than API Gateway's limit."""
        self._continue()
        parts: list[bytes] = []
        total = 0
        while True:
            line = self._line()
            size_text = line.split(b";", 1)[0].strip()
            if not _HEX.fullmatch(size_text):
                raise Refused(400)
            size = int(size_text, 16) if len(size_text) <= 16 else MAX_REQUEST_BODY_BYTES + 1
            if size == 0:
                break
            total += size
            if total > MAX_REQUEST_BODY_BYTES:
                raise Refused(413)
            data = self.rfile.read(size)
            if len(data) < size:
                raise ClientGone()
            if self._line() != b"":
                raise Refused(400)
            parts.append(data)
        for _ in range(_MAX_TRAILER_LINES):
            if self._line() == b"":
                return b"".join(parts)
        raise Refused(400)

    def _line(self) -> bytes:
        """One CRLF-terminated line of a chunked body, without its end."""
        line = self.rfile.readline(_MAX_CHUNK_LINE + 1)
        if not line:
            raise ClientGone()
        if len(line) > _MAX_CHUNK_LINE or not line.endswith(b"\n"):
            raise Refused(400)
        return line.rstrip(b"\r\n")

    def _continue(self) -> None:
        if self._expects_continue:
            self._expects_continue = False
            self.send_response_only(HTTPStatus.CONTINUE)
            self.end_headers()

    def _write(self, invocation: Invocation) -> int:
        head = self.command == "HEAD"
        self.send_response(invocation.status)
        has_length = False
        for name, value in invocation.headers:
            if _unsafe(name) or _unsafe(value):
                sys.stderr.write(f"dropped a response header with a line break: {name!r}\n")
                continue
            if name.lower() == "content-length":
                if not head:
                    continue  # API Gateway sets it from the body it sends
                has_length = True
            self.send_header(name, value)
        if not head:
            self.send_header("Content-Length", str(len(invocation.body)))
        elif not has_length:
            self.send_header("Content-Length", "0")
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if head or not invocation.body:
            return 0
        self.wfile.write(invocation.body)
        return len(invocation.body)

    def _answer_json(self, status: int) -> int:
        """An answer of the gateway's own, as API Gateway words it; the connection ends."""
        message = _MESSAGES.get(status) or HTTPStatus(status).phrase
        data = json.dumps({"message": message}, separators=(",", ":")).encode()
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
            return len(data)
        return 0

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Malformed requests (request line, headers) get API Gateway's JSON, not HTML."""
        sent = self._answer_json(int(code))
        self.server.first_request.set()
        self._log(int(code), sent, None, time.monotonic())

    def _log(self, status: int, sent: int, invocation: Invocation | None, received: float) -> None:
        lines = access_log_lines(
            self.address_string(),
            self.requestline,
            status,
            sent,
            None if invocation is None else invocation.seconds,
            time.monotonic() - received,
            invocation is not None and invocation.timed_out,
        )
        sys.stderr.write("".join(f"{line}\n" for line in lines))

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once their body is written, with the bytes sent."""

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def _unsafe(text: str) -> bool:
    return "\r" in text or "\n" in text


def serve_connection(conn: socket.socket, address: Any, connection: Connection) -> None:
    """All requests of one connection, then a close that lets a refused body drain."""
    try:
        handler = GatewayRequestHandler(conn, address, connection)  # type: ignore[arg-type]
        if handler.unread_body:
            _linger(conn)
    except OSError:
        pass  # the client went away
    except Exception:
        traceback.print_exc()
    finally:
        connection.first_request.set()
        with contextlib.suppress(OSError):
            conn.close()


def _linger(conn: socket.socket) -> None:
    """Stop sending, read and drop what the client still sends, for a moment."""
    with contextlib.suppress(OSError):
        conn.shutdown(socket.SHUT_WR)
        conn.settimeout(0.2)
        deadline = time.monotonic() + LINGER_SECONDS
        while time.monotonic() < deadline:
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                continue
