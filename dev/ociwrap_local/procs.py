"""Process plumbing shared by the gateway's supervisor and its children."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import time

_PR_SET_PDEATHSIG = 1


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
    deadline = time.monotonic() + grace
    while left:
        for pid in list(left):
            try:
                done, _status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done = pid
            if done:
                left.discard(pid)
        if not left:
            break
        if time.monotonic() > deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for pid in left:
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
            break
        time.sleep(0.01)
