"""How the fake upstreams send an answer's body, the polite way and every hostile way.

`harness.scripted` (a test's `drip(...)` bodies) and `harness.hostile` (the bad bodies of
its scenarios) write through a `Wire`, which tells "the client went away" from "sent",
and through the one set of writers here: `drip` (pieces with pauses between them), the
block and framing generators it is fed with, and `WRITERS`, the misbehaving answers.
"""

from __future__ import annotations

import functools
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from http.server import BaseHTTPRequestHandler

from harness.upstream_server import hold

HUGE_BYTES = 1024**3  # declared and streamed by `huge`/`endless`, never held in memory
BOMB_PLAIN_BYTES = 256 * 1024**2  # what the gzip bomb inflates to
CHUNK = 64 * 1024
SLOW_SECONDS = 60.0  # how long `stall` holds headers and `drip` keeps dripping
DRIP_INTERVAL = 0.5

Headers = list[tuple[str, str]]


class Wire:
    """The connection of one request's answer, watched for a client that hangs up.

    `start`, `send` and `pause` report a client that went away (and `hung_up` remembers
    it) instead of raising; `write` and `flush` are the file interface for bodies a test
    writes itself, and raise as a socket does. `stopping` (the server is stopping) ends
    pauses early too, without counting as a hang-up.
    """

    def __init__(
        self, handler: BaseHTTPRequestHandler, stopping: threading.Event | None = None
    ) -> None:
        self.handler = handler
        self.stopping = stopping or threading.Event()
        self.hung_up = False

    def start(self, status: int, headers: Iterable[tuple[str, str]], close: bool = False) -> None:
        """Status line and headers, written as given (no checks: that is the point)."""
        self.handler.send_response(status)
        for name, value in headers:
            self.handler.send_header(name, value)
        if close:
            self.handler.send_header("Connection", "close")  # also ends the keep-alive loop
        self.handler.end_headers()

    def send(self, data: bytes) -> bool:
        """Send `data`; False once the client has gone."""
        try:
            self.handler.wfile.write(data)
            return True
        except OSError:
            self.gone()
            return False

    def pause(self, seconds: float) -> bool:
        """Wait; False (stop now) if the server stops or the client hangs up meanwhile."""
        if not self.stopping.is_set() and hold(self.handler, seconds, self.stopping):
            return True
        self.handler.close_connection = True
        if not self.stopping.is_set():
            self.hung_up = True
        return False

    def gone(self) -> None:
        """The client went away mid-answer: this connection ends here."""
        self.handler.close_connection = True
        self.hung_up = True

    def write(self, data: bytes) -> int:
        return self.handler.wfile.write(data)

    def flush(self) -> None:
        self.handler.wfile.flush()


# -- what a body is made of ----------------------------------------------------------------


def pieces(data: bytes, size: int) -> Iterator[bytes]:
    """`data` in pieces of `size` bytes."""
    return (data[i : i + size] for i in range(0, len(data), size))


def spaces(total: int) -> Iterator[bytes]:
    """`total` bytes of JSON whitespace, a block at a time (never all held in memory)."""
    block = b" " * CHUNK
    for sent in range(0, total, CHUNK):
        yield block[: min(CHUNK, total - sent)]


def chunked(parts: Iterable[bytes]) -> Iterator[bytes]:
    """`parts` framed for `Transfer-Encoding: chunked`, with the closing empty chunk."""
    for part in parts:
        yield b"%x\r\n%s\r\n" % (len(part), part)
    yield b"0\r\n\r\n"


@functools.cache
def gzip_bomb(plain_bytes: int = BOMB_PLAIN_BYTES) -> bytes:
    """gzip of `plain_bytes` of spaces (JSON whitespace), compressed once: ~1000:1."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b" " * (1024 * 1024)
    parts = [compressor.compress(block) for _ in range(plain_bytes // len(block))]
    parts.append(compressor.flush())
    return b"".join(parts)


def drip(wire: Wire, parts: Iterable[bytes], pause: float = 0.0, give_up: float = 0.0) -> int:
    """Send `parts` with `pause` seconds after each, until the client or the server goes
    (or `give_up` seconds have passed, when given); how many parts went out."""
    end = time.monotonic() + give_up if give_up else None
    sent = 0
    for part in parts:
        if (end is not None and time.monotonic() > end) or not wire.send(part):
            break
        sent += 1
        if not wire.pause(pause):
            break
    return sent


# -- bad bodies: one writer per misbehaviour, each given the polite answer ----------------

Writer = Callable[[Wire, int, Headers, bytes], None]


def send(wire: Wire, status: int, headers: Headers, body: bytes, method: str = "GET") -> None:
    """A polite answer: its exact Content-Length, the body for GET only."""
    wire.start(status, [*headers, ("Content-Length", str(len(body)))])
    if method != "HEAD":
        wire.send(body)


def write_huge(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """Declares 1 GiB and streams it."""
    wire.start(status, [*headers, ("Content-Length", str(HUGE_BYTES))], close=True)
    drip(wire, spaces(HUGE_BYTES))


def write_endless(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """No length at all: chunked, 1 GiB of it."""
    wire.start(status, [*headers, ("Transfer-Encoding", "chunked")], close=True)
    drip(wire, chunked(spaces(HUGE_BYTES)))


def write_overdeclared(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """Promises 1 GiB, sends the real body, hangs up."""
    wire.start(status, [*headers, ("Content-Length", str(HUGE_BYTES))], close=True)
    wire.send(body)


def write_bomb(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """A few hundred KB that gzip-inflate to 256 MiB."""
    bomb = gzip_bomb()
    encoded = [("Content-Encoding", "gzip"), ("Content-Length", str(len(bomb)))]
    wire.start(status, [*headers, *encoded], close=True)
    wire.send(bomb)


def write_drip(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """The real body, one byte every half second, for at most a minute."""
    wire.start(status, [*headers, ("Content-Length", str(len(body)))], close=True)
    drip(wire, pieces(body, 1), DRIP_INTERVAL, give_up=SLOW_SECONDS)


def write_stall(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """Nothing for a minute, then the polite answer."""
    if wire.pause(SLOW_SECONDS):
        send(wire, status, headers, body, wire.handler.command)


def write_cut(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
    """The right Content-Length, half the body, then the connection closes."""
    wire.start(status, [*headers, ("Content-Length", str(len(body)))], close=True)
    wire.send(body[: len(body) // 2])


def bad_length(*values: str) -> Writer:
    """`Content-Length` header lines with these values ("{n}" is the real length)."""

    def write(wire: Wire, status: int, headers: Headers, body: bytes) -> None:
        lengths = [("Content-Length", value.format(n=len(body))) for value in values]
        wire.start(status, [*headers, *lengths], close=True)
        wire.send(body)

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
