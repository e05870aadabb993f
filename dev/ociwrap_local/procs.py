"""Process plumbing: free ports, waiting until ready, stopping processes, children that
die with their parent.

The one home for it: the gateway's supervisor, its workers and embedded S3 use it, and
so do the tests' harness (`harness.procs`) for the servers it starts.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on `host` (the OS picks it, so no clashes)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(ready: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    """Ask `ready()` every `interval` seconds until it says yes; False once `timeout` is over.

    A process that is starting gives no signal when it can be used, so readiness is polled.
    `ready` is asked once more after the time is up, and may raise to give up early (the
    process being waited for has exited); what a time-out means is the caller's to say.
    """
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


def stop_process(
    process: subprocess.Popen[bytes], grace: float = 5.0, *, group: bool = False
) -> int | None:
    """SIGTERM `process`, SIGKILL it if it is still there after `grace` seconds; its exit code.

    `group`: signal its whole process group (it was started with `start_new_session`), and
    sweep the group with SIGKILL at the end, for children that ignored SIGTERM.
    """

    def send(sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if group:
                os.killpg(process.pid, sig)
            else:
                process.send_signal(sig)

    if process.poll() is None:
        send(signal.SIGTERM)
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(grace)
    if group:
        send(signal.SIGKILL)
    return process.returncode


def set_parent_death_signal(signum: int) -> None:
    """Ask Linux to send `signum` to this process when its parent dies (no-op elsewhere).

    A worker or the embedded S3 then never outlives a gateway that was killed outright.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(name, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signum), 0, 0, 0)


def stop_children(pids: list[int], grace: float = 5.0) -> None:
    """SIGTERM `pids` (children of this process), SIGKILL what is left after `grace`, reap all."""
    left = set(pids)
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)

    def reaped() -> bool:
        for pid in list(left):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        return not left

    if wait_until(reaped, grace, interval=0.01):
        return
    for pid in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in left:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
