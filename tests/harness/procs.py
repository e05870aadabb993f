"""Start, watch and stop server processes for integration tests.

Ports, waiting until ready and stopping are the local gateway's own plumbing
(`ociwrap_local.procs`), shared.

Every server the harness starts gets its own process group (so `stop()` also ends any
children it forks) and writes stdout+stderr to a log file in a directory the test owns.
When something goes wrong the error carries the tail of that log: a failing fixture
should say why the server did not come up, not just that it did not.
"""

from __future__ import annotations

import os
import socketserver
import subprocess
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from ociwrap_local.procs import free_port as free_port
from ociwrap_local.procs import stop_process
from ociwrap_local.procs import wait_until as wait_until


class HarnessError(RuntimeError):
    """A harness-managed server or tool did not behave; the message carries its log tail."""


def wait_http(
    url: str,
    status: int | Sequence[int] = 200,
    timeout: float = 20.0,
    *,
    method: str = "GET",
    process: Process | None = None,
) -> requests.Response:
    """Poll `url` until it answers `status`; fail early if `process` has already exited.

    Readiness is checked over HTTP because "the process is running" says nothing about
    whether it has bound its port yet.
    """
    wanted = {status} if isinstance(status, int) else set(status)
    last = "no answer yet"
    answer: list[requests.Response] = []  # the one that was awaited

    def answered() -> bool:
        nonlocal last
        if process is not None and not process.alive:
            raise HarnessError(
                f"{process.name} exited with {process.returncode} before {url} answered\n"
                + process.tail()
            )
        try:
            reply = requests.request(method, url, timeout=2, allow_redirects=False)
        except requests.RequestException as exc:
            last = f"{type(exc).__name__}: {exc}"
            return False
        last = f"HTTP {reply.status_code}"
        answer[:] = [reply]
        return reply.status_code in wanted

    if wait_until(answered, timeout):
        return answer[0]
    tail = process.tail() if process is not None else ""
    raise HarnessError(
        f"{url} did not answer {sorted(wanted)} within {timeout:.0f} s ({last})\n{tail}"
    )


def clean_env(
    extra: Mapping[str, str] | None = None, *, drop_prefixes: Sequence[str] = ("AWS_",)
) -> dict[str, str]:
    """This process's environment without variables that leak into test servers, plus `extra`.

    `AWS_*` goes by default: the registry's aws-sdk-go panics at start-up on the machine's
    `AWS_CA_BUNDLE` ("unable to load custom CA bundle, HTTPClient's transport unsupported
    type"), and a developer's own profile or keys must never reach a test server.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith(tuple(drop_prefixes))}
    env.update(extra or {})
    return env


class Process:
    """One command run in the background, in its own process group, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_dir) / f"{name}.log"
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self._popen: subprocess.Popen[bytes] | None = None
        self._stopped = False

    def start(self) -> Process:
        """Start the command; `start_new_session` gives it a process group `stop()` can end."""
        if self.alive:
            raise HarnessError(f"{self.name} is already running (pid {self.pid})")
        self._stopped = False
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        return self

    @property
    def pid(self) -> int:
        if self._popen is None:
            raise HarnessError(f"{self.name} was never started")
        return self._popen.pid

    @property
    def alive(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self._popen is None else self._popen.poll()

    def log(self) -> str:
        """Everything the process has written so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        """The last `lines` of the log, framed so it stands out in a pytest report."""
        text = "\n".join(self.log().splitlines()[-lines:])
        return f"--- last {lines} lines of {self.log_path} ---\n{text}\n--- end ---"

    def wait_http(
        self, url: str, status: int | Sequence[int] = 200, timeout: float = 20.0
    ) -> requests.Response:
        """`wait_http` that gives up as soon as this process dies.

        On failure the process is stopped before the error propagates: a fixture that
        raises during set-up gets no teardown, so nothing else would stop it.
        """
        try:
            return wait_http(url, status, timeout, process=self)
        except BaseException:
            self.stop()
            raise

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; returns the exit code."""
        if self._popen is None:
            return None
        if self._stopped:
            return self._popen.returncode
        # The group is swept once, right away (later its id could belong to someone else).
        self._stopped = True
        return stop_process(self._popen, grace, group=True)

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


class ServerThread:
    """A `socketserver` server running in a daemon thread of the test process.

    It looks for `stop()` every `poll_interval` seconds: short, as unit tests start and
    stop one per test.
    """

    def __init__(
        self, server: socketserver.BaseServer, name: str, poll_interval: float = 0.02
    ) -> None:
        self.server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(poll_interval,), name=name, daemon=True
        )

    def start(self) -> ServerThread:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, close the socket and wait (a little) for the loop to end."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
