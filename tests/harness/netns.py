"""Run a real client in a network namespace where only loopback exists.

A client (skopeo, in Go) cannot have its socket layer patched the way the gateway's is
(`harness.loopback_only`). To prove that it is never sent somewhere it must not go, it
runs inside `unshare --net`: there a connection to 169.254.169.254 fails with "network is
unreachable" and no packet leaves the machine, whatever the client was told.

The client still needs the gateway and S3 on this machine's loopback. Unix sockets
cross network namespaces (they live in the file system), so each wanted port is relayed
twice: inside, `127.0.0.1:<port>` forwards to `<dir>/<port>.sock`; outside, that socket
forwards to `127.0.0.1:<port>`. The client uses the same URLs as it would outside.

`isolated(argv, ports, workdir)` runs `argv` that way; this file, run as a script inside
the namespace, is the inner half (`python netns.py DIR PORT,PORT -- ARGV...`).
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path

CHUNK = 65536


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until `source` ends, then end `sink`'s writing half."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)


def _relay(client: socket.socket, target: socket.socket) -> None:
    """Both directions between two connected sockets, until both have ended."""
    back = threading.Thread(target=_pipe, args=(target, client), daemon=True)
    back.start()
    _pipe(client, target)
    back.join()
    target.close()


class _Inside(socketserver.ThreadingTCPServer):
    """127.0.0.1:<port> in the namespace, forwarded to `<dir>/<port>.sock`."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, path: Path) -> None:
        self.path = path
        super().__init__(("127.0.0.1", port), _InsideHandler)


class _InsideHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        target = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target.connect(str(self.server.path))  # type: ignore[attr-defined]
        _relay(self.request, target)


class _Outside(socketserver.ThreadingUnixStreamServer):
    """`<dir>/<port>.sock` outside, forwarded to 127.0.0.1:<port>."""

    daemon_threads = True

    def __init__(self, path: Path, port: int) -> None:
        self.port = port
        super().__init__(str(path), _OutsideHandler)


class _OutsideHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        target = socket.create_connection(("127.0.0.1", self.server.port))  # type: ignore[attr-defined]
        _relay(self.request, target)


@contextlib.contextmanager
def _outside(workdir: Path, ports: Sequence[int]) -> Iterator[None]:
    servers = [_Outside(workdir / f"{port}.sock", port) for port in ports]
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in servers]
    for thread in threads:
        thread.start()
    try:
        yield
    finally:
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in threads:
            thread.join(5)


def isolated(
    argv: Sequence[str | Path], ports: Sequence[int], workdir: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """Run `argv` in a new network namespace (loopback only) where the given ports of
    127.0.0.1 reach this machine's; its output and exit status, never raising on failure."""
    workdir.mkdir(parents=True, exist_ok=True)
    inner = [sys.executable, __file__, str(workdir), ",".join(map(str, ports)), "--", *argv]
    with _outside(workdir, ports):
        return subprocess.run(
            ["unshare", "--net", *map(str, inner)],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def _inside(workdir: Path, ports: Sequence[int], argv: Sequence[str]) -> int:
    """Bring loopback up, open the relays, run `argv`; its exit status."""
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    servers = [_Inside(port, workdir / f"{port}.sock") for port in ports]
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    return subprocess.run(list(argv), check=False).returncode


if __name__ == "__main__":
    # Run as a script, this directory is sys.path[0]: its modules must not shadow any.
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    directory, port_list, separator, *command = sys.argv[1:]
    assert separator == "--", sys.argv
    sys.exit(_inside(Path(directory), [int(p) for p in port_list.split(",")], command))
