"""Worker processes as warm function instances, and the parent that routes to them.

The parent binds the listening socket and imports the handler module once, then forks
the workers (cheap: they share its memory until they write to it; the handler builds
its AWS clients on its first request). Like API Gateway and Lambda, the parent hands
each new connection to an idle instance, the most recently used one first, so
sequential requests stay on one warm instance and only parallel ones spread out; while
every instance is busy, connections wait in the listen backlog. A worker serves the
connections it was handed (`server`), calling its handler with one event at a time
(`instance`), and tells the parent when it turns busy or idle.

The parent has no threads: one loop accepts, reads the workers' reports, replaces a
worker that died, and on SIGTERM or SIGINT stops them all.
"""

from __future__ import annotations

import contextlib
import gc
import os
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass

from ociwrap_local.instance import Handler, Instance
from ociwrap_local.procs import set_parent_death_signal, stop_children
from ociwrap_local.server import Connection, serve_connection

#: Room for the connections of parallel pulls while every worker is busy.
LISTEN_BACKLOG = 128
#: How long a new connection may take to send its first request before its worker
#: counts as idle again.
FIRST_REQUEST_WAIT_SECONDS = 0.5
#: A worker that dies sooner than this after its start is replaced only after a pause.
MIN_WORKER_LIFE_SECONDS = 1.0
_LOOP_SECONDS = 0.1
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_BUSY, _IDLE, _CONNECTION = b"B", b"I", b"C"


class Stop(Exception):
    """SIGTERM or SIGINT reached the parent."""


def listen(host: str, port: int) -> socket.socket:
    """The listening socket the parent accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=LISTEN_BACKLOG)


@dataclass
class Worker:
    number: int
    pid: int
    control: socket.socket  # the parent's end: connections out, busy/idle reports in
    started: float


class Workers:
    """`count` forked workers serving `handler`, fed the connections accepted on `sock`."""

    def __init__(
        self,
        sock: socket.socket,
        handler: Handler,
        count: int,
        *,
        alive: Callable[[], str | None] = lambda: None,
    ) -> None:
        self.sock = sock
        self.handler = handler
        self.count = count
        self.alive = alive  # says why the gateway cannot go on (the embedded S3 died)
        self.workers: dict[int, Worker] = {}  # by pid
        self.idle: list[Worker] = []  # the most recently idle last
        self.selector = selectors.DefaultSelector()

    def run(self, ready: Callable[[], None] = lambda: None) -> int:
        """Fork the workers, call `ready`, then serve until SIGTERM/SIGINT (exit code 0) or
        until the gateway cannot go on (1). The workers are stopped either way."""
        previous = {sig: signal.signal(sig, _raise_stop) for sig in _STOP_SIGNALS}
        code = 0
        try:
            if threading.active_count() > 1:
                print("warning: forking workers from a process with threads", file=sys.stderr)
            gc.freeze()  # what the parent has built stays shared with the workers
            self.sock.setblocking(False)  # accepted while a worker reports idle
            for number in range(1, self.count + 1):
                self._fork(number)
            ready()
            while True:
                self._serve_once()
                self._replace_dead()
                problem = self.alive()
                if problem:
                    print(f"ociwrap: {problem}; stopping", file=sys.stderr, flush=True)
                    code = 1
                    break
        except Stop:
            pass
        finally:
            for sig in _STOP_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
                signal.signal(sig, signal.SIG_IGN)
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return code

    def stop(self) -> None:
        stop_children(list(self.workers))
        for worker in self.workers.values():
            worker.control.close()
        self.workers.clear()
        self.idle.clear()

    def _serve_once(self) -> None:
        for key, _mask in self.selector.select(_LOOP_SECONDS):
            if key.fileobj is self.sock:
                self._hand_out()
            else:
                self._read_reports(key.data)

    def _hand_out(self) -> None:
        """Give waiting connections to idle workers, the most recently idle first."""
        while self.idle:
            try:
                conn, _address = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. out of file descriptors: leave it in the backlog
                print(f"accept failed: {exc!r}", file=sys.stderr, flush=True)
                return
            worker = self.idle.pop()
            try:
                socket.send_fds(worker.control, [_CONNECTION], [conn.fileno()])
            except OSError:
                pass  # the worker died; the client sees its connection closed
            finally:
                conn.close()
        self._update_listening()

    def _read_reports(self, worker: Worker) -> None:
        try:
            reports = worker.control.recv(4096)
        except OSError:
            reports = b""
        if not reports:  # the worker is gone; `_replace_dead` reaps it
            self.selector.unregister(worker.control)
            self._set_idle(worker, False)
            return
        self._set_idle(worker, reports[-1:] == _IDLE)  # the last report is the state now

    def _set_idle(self, worker: Worker, idle: bool) -> None:
        if worker in self.idle:
            self.idle.remove(worker)
        if idle and worker.pid in self.workers:
            self.idle.append(worker)
        self._update_listening()

    def _update_listening(self) -> None:
        """Accept only while some worker is idle; the others wait in the backlog."""
        events = selectors.EVENT_READ if self.idle else 0
        registered = self.sock in self.selector.get_map()
        if events and not registered:
            self.selector.register(self.sock, events)
        elif not events and registered:
            self.selector.unregister(self.sock)

    def _replace_dead(self) -> None:
        for pid, worker in list(self.workers.items()):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if not done:
                continue
            del self.workers[pid]
            self._set_idle(worker, False)
            with contextlib.suppress(KeyError, ValueError):
                self.selector.unregister(worker.control)
            worker.control.close()
            print(
                f"worker {worker.number} (pid {pid}) {_describe(status)}; starting another",
                file=sys.stderr,
                flush=True,
            )
            if time.monotonic() - worker.started < MIN_WORKER_LIFE_SECONDS:
                time.sleep(MIN_WORKER_LIFE_SECONDS)
            self._fork(worker.number)

    def _fork(self, number: int) -> None:
        parent_end, worker_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        sys.stdout.flush()
        sys.stderr.flush()
        parent = os.getpid()
        # Signals wait until the new worker is recorded (a Stop in between would lose it).
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:
                inherited = [self.sock, parent_end, *(w.control for w in self.workers.values())]
                _worker(worker_end, inherited, self.handler, parent, blocked)  # never returns
            worker_end.close()
            worker = Worker(number, pid, parent_end, time.monotonic())
            self.workers[pid] = worker
            self.selector.register(parent_end, selectors.EVENT_READ, worker)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)


def _worker(
    control: socket.socket,
    inherited: list[socket.socket],
    handler: Handler,
    parent: int,
    mask: set,
) -> None:
    """The body of a worker process: serve what the parent hands over, until SIGTERM."""
    try:
        signal.signal(signal.SIGTERM, _exit_now)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
        set_parent_death_signal(signal.SIGTERM)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if os.getppid() != parent:  # the parent died before the line above
            _exit_now()
        for sock in inherited:  # the parent's: the listening socket, other workers' ends
            sock.close()
        _serve_handed_connections(control, handler)
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(1)


def _serve_handed_connections(control: socket.socket, handler: Handler) -> None:
    report_lock = threading.Lock()

    def report(busy: bool) -> None:
        with report_lock:
            control.sendall(_BUSY if busy else _IDLE)

    instance = Instance(handler, on_change=report)
    instance.report_if_idle()
    while True:
        _message, fds, _flags, _address = socket.recv_fds(control, 1, 1)
        if not fds:  # the parent closed its end: it is gone
            _exit_now()
        conn = socket.socket(fileno=fds[0])
        try:
            address = conn.getpeername()
        except OSError:
            conn.close()
            instance.report_if_idle()
            continue
        connection = Connection(instance)
        threading.Thread(
            target=serve_connection, args=(conn, address, connection), daemon=True
        ).start()
        connection.first_request.wait(FIRST_REQUEST_WAIT_SECONDS)
        instance.report_if_idle()  # no request (yet), or done already: ready for another


def _exit_now(*_args: object) -> None:
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(0)


def _raise_stop(_signum: int, _frame: object) -> None:
    raise Stop()


def _describe(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with {os.waitstatus_to_exitcode(status)}"
