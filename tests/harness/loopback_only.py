"""Run the local gateway with its network cut down to loopback, for tests.

`python tests/harness/loopback_only.py` patches the socket layer, then runs
`ociwrap_local` as `python -m ociwrap_local` would; forked workers inherit the patch.
Afterwards any connection (`socket.connect`, `connect_ex`, `create_connection`) or
datagram to an address other than loopback fails at once with OSError ("network
disabled in tests"), nothing is sent, and the destination is appended to the file
named by `LOOPBACK_ONLY_LOG`. Host names other than `localhost` are not resolved
either (a DNS query is a packet too); they are appended to `LOOPBACK_ONLY_LOOKUPS`.

The registry's own guard refuses e.g. 169.254.169.254 before it connects; this is the
second line, so that a broken guard fails a test instead of sending a packet anywhere.
"""

from __future__ import annotations

import ipaddress
import os
import runpy
import socket
import sys
from pathlib import Path

REFUSED = "network disabled in tests"
_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost"}
_INET = (socket.AF_INET, socket.AF_INET6)


def is_loopback(host: object) -> bool:
    """Whether connecting to `host` (an address or name) stays on this machine."""
    if isinstance(host, bytes):
        host = host.decode("ascii", "replace")
    if not isinstance(host, str):
        return False
    if host.lower() in _NAMES:
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def _is_numeric(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _record(variable: str, entry: str) -> None:
    path = os.environ.get(variable)
    if not path:
        return
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, f"{entry}\n".encode())  # one write: lines of several workers don't mix
    finally:
        os.close(fd)


def _destination(address: object) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        host = str(address[0])
        return f"[{host}]:{address[1]}" if ":" in host else f"{host}:{address[1]}"
    return str(address)


def _refuse(address: object) -> OSError:
    _record("LOOPBACK_ONLY_LOG", _destination(address))
    return OSError(f"{REFUSED}: {_destination(address)} is not loopback")


def install() -> None:
    """Patch the socket module of this process (and of every process it forks)."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_sendto = socket.socket.sendto
    real_sendmsg = socket.socket.sendmsg
    real_create_connection = socket.create_connection
    real_getaddrinfo = socket.getaddrinfo

    def allowed(sock: socket.socket, address: object) -> bool:
        if sock.family not in _INET:
            return True  # Unix sockets stay on the machine
        return isinstance(address, tuple) and is_loopback(address[0])

    def connect(self: socket.socket, address: object) -> None:
        if not allowed(self, address):
            raise _refuse(address)
        return real_connect(self, address)

    def connect_ex(self: socket.socket, address: object) -> int:
        if not allowed(self, address):
            raise _refuse(address)
        return real_connect_ex(self, address)

    def sendto(self: socket.socket, data: bytes, *args: object) -> int:
        address = args[-1]
        if not allowed(self, address):
            raise _refuse(address)
        return real_sendto(self, data, *args)  # type: ignore[arg-type]

    def sendmsg(self: socket.socket, buffers: object, *args: object) -> int:
        if len(args) >= 3 and args[2] is not None and not allowed(self, args[2]):
            raise _refuse(args[2])
        return real_sendmsg(self, buffers, *args)  # type: ignore[arg-type]

    def create_connection(address: tuple, *args: object, **kwargs: object) -> socket.socket:
        if not is_loopback(address[0]):
            raise _refuse(address)
        return real_create_connection(address, *args, **kwargs)  # type: ignore[arg-type]

    def getaddrinfo(host: object, *args: object, **kwargs: object) -> list:
        name = host.decode("ascii", "replace") if isinstance(host, bytes) else host
        if isinstance(name, str) and not _is_numeric(name) and not is_loopback(name):
            _record("LOOPBACK_ONLY_LOOKUPS", name)
            raise socket.gaierror(socket.EAI_NONAME, f"{REFUSED}: {name} is not resolved")
        return real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]

    socket.socket.connect = connect  # type: ignore[method-assign]
    socket.socket.connect_ex = connect_ex  # type: ignore[method-assign]
    socket.socket.sendto = sendto  # type: ignore[method-assign,assignment]
    socket.socket.sendmsg = sendmsg  # type: ignore[method-assign]
    socket.create_connection = create_connection  # type: ignore[assignment]
    socket.getaddrinfo = getaddrinfo


def main() -> None:
    # Run as a script, this directory is sys.path[0]: the harness's module names
    # (`registry`, `tokens`, ...) must not shadow anything the gateway imports.
    here = str(Path(__file__).resolve().parent)
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve().as_posix() != here]
    install()
    sys.argv = ["ociwrap_local", *sys.argv[1:]]
    runpy.run_module("ociwrap_local", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
