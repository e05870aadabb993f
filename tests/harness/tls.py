"""Raw loopback listeners for the upstream client's socket-level tests: a TCP (or TLS)
server on 127.0.0.1 that counts the connections it accepts and hands each to a function
the test writes, and a self-signed certificate for 127.0.0.1 to serve TLS with."""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import socket
import ssl
import threading
from collections.abc import Callable
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: What a connection is given to: the accepted socket (wrapped in TLS when the listener
#: serves TLS, its handshake done). Any OSError it raises ends that connection quietly.
Serve = Callable[[socket.socket], None]


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A certificate for `host`, an IP address or a DNS name (its own CA), and its key, as
    PEM files in `directory`."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    try:
        alternative: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alternative = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def read_request(conn: socket.socket) -> bytes:
    """The request head (up to its blank line) a client sent on `conn`."""
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = conn.recv(65536)
        if not chunk:
            break
        head += chunk
    return head


def answer(status: str = "200 OK", body: bytes = b"{}") -> Serve:
    """A `Serve` that reads one request and answers it, then closes."""

    def serve(conn: socket.socket) -> None:
        read_request(conn)
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        conn.sendall(head.encode() + body)

    return serve


class Listener:
    """A server on 127.0.0.1 that serves each connection it accepts with `serve`, one at a
    time, in a thread of the test process; `accepted` counts the connections (TLS ones
    whose handshake failed included), `ended` is set after each connection is over."""

    def __init__(self, serve: Serve, tls: ssl.SSLContext | None = None) -> None:
        self.serve = serve
        self.tls = tls
        self.accepted = 0
        self.ended = threading.Event()
        self._stop = threading.Event()
        self._serving: socket.socket | None = None
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self._socket.listen(16)
        self._socket.settimeout(0.05)
        self.port = self._socket.getsockname()[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._run, name="raw listener", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                raw, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            self._serving = raw
            raw.settimeout(5)
            try:
                conn = self.tls.wrap_socket(raw, server_side=True) if self.tls else raw
                with conn:
                    self.serve(conn)
            except OSError:
                pass
            finally:
                self._serving = None
                raw.close()
                self.ended.set()

    def stop(self) -> None:
        """Stop accepting, end the connection being served (its client may still hold it
        open), and wait for the thread."""
        self._stop.set()
        serving = self._serving
        if serving is not None:
            with contextlib.suppress(OSError):  # closed meanwhile
                serving.shutdown(socket.SHUT_RDWR)
        self._thread.join(5)
        self._socket.close()


def server_context(directory: Path) -> tuple[ssl.SSLContext, Path]:
    """A TLS server context with a fresh self-signed certificate, and that certificate
    (the CA bundle a client must be given to trust it)."""
    cert, key = self_signed(directory)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
