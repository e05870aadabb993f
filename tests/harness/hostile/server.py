"""The hostile registry's server: one loopback server for every scenario, and what it saw.

It keeps each scenario's state (tokens issued, counters, the mode it was switched to),
dispatches each request to its scenario's `Behaviour`, and records it (`Journal`).
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from harness.bodies import gzip_bomb
from harness.hostile.behaviours import BEHAVIOURS, MODE_ALIASES
from harness.hostile.calls import Behaviour, Call, polite_token
from harness.hostile.content import Content, Doc
from harness.hostile.journal import Journal
from harness.images import Image
from harness.procs import ServerThread
from harness.upstream_server import JSON, LoopbackServer, error_body


@dataclass
class ScenarioState:
    tokens: set[str] = field(default_factory=set)
    issued: int = 0
    first_token_uses: int = 0
    bumps: int = 0


class HostileRegistry(Journal):
    """The misbehaving upstream at `url` (http://127.0.0.1:PORT); see the module docstring."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self.url = ""
        self.content = Content()
        self.stopping = threading.Event()
        super().__init__()
        self._modes: dict[str, str] = {}
        self._state: dict[str, ScenarioState] = {}
        self._labels = itertools.count(1)
        self._serving: ServerThread | None = None

    # -- the images it serves ----------------------------------------------------------

    def image(self, scenario: str, repo: str = "app") -> Image:
        """The good `app` or `wrapper` image of `scenario` (layers, config, manifest)."""
        return self.content.image(scenario, repo)

    def top(self, scenario: str, repo: str = "app") -> Doc:
        """The manifest or index a tag of `scenario/repo` points to (honestly)."""
        doc = self.content.top(scenario, repo)
        assert doc is not None, f"no {repo} in scenario {scenario}"
        return doc

    def lie(self, scenario: str, repo: str = "app") -> str:
        """The digest `lying-head` claims for `scenario/repo`."""
        return self.content.lie_of(self.top(scenario, repo))

    @property
    def big_blob(self) -> bytes:
        return self.content.big_blob

    @property
    def big_digest(self) -> str:
        return self.content.big_digest

    # -- scenarios and modes -----------------------------------------------------------

    def fresh(self, behaviour: str) -> str:
        """A scenario name nobody has used: `behaviour.tN` (own counters, state and mode)."""
        if behaviour not in BEHAVIOURS:
            raise KeyError(f"no scenario {behaviour!r}")
        return f"{behaviour}.t{next(self._labels)}"

    def set_mode(self, scenario: str, mode: str) -> None:
        """From now on `scenario` behaves as `mode` (a scenario name, or ok/honest/429)."""
        mode = MODE_ALIASES.get(mode, mode)
        if mode not in BEHAVIOURS:
            raise KeyError(f"no mode {mode!r}")
        with self._lock:
            self._modes[scenario] = mode

    def mode(self, scenario: str) -> str:
        with self._lock:
            return self._modes.get(scenario) or scenario.split(".")[0]

    def _behaviour(self, scenario: str) -> Behaviour | None:
        return BEHAVIOURS.get(self.mode(scenario))

    def _scenario(self, scenario: str) -> ScenarioState:
        return self._state.setdefault(scenario, ScenarioState())  # callers hold the lock

    def bump(self, scenario: str) -> int:
        """A per-scenario counter for behaviours that change over time."""
        with self._lock:
            state = self._scenario(scenario)
            state.bumps += 1
            return state.bumps

    def issue_token(self, scenario: str, rotate: bool) -> str:
        with self._lock:
            state = self._scenario(scenario)
            state.issued += 1
            token = f"{scenario}-t{min(state.issued, 2) if rotate else 1}"
            state.tokens.add(token)
            return token

    def _authorized(self, call: Call) -> bool:
        scheme, _, token = call.header("Authorization").partition(" ")
        if scheme.lower() != "bearer":
            return False
        with self._lock:
            state = self._scenario(call.scenario)
            if token not in state.tokens:
                return False
            if call.behaviour.rotate and token.endswith("-t1"):
                state.first_token_uses += 1
                if state.first_token_uses > 1:
                    state.tokens.discard(token)
                    return False
            return True

    # -- serving -----------------------------------------------------------------------

    def _dispatch(self, call: Call) -> None:
        if call.kind == "ping":
            return call.send(200, [JSON, ("Docker-Distribution-API-Version", "registry/2.0")])
        behaviour = self._behaviour(call.scenario)
        if behaviour is None:
            if call.kind == "token":
                return polite_token(call)
            return call.send_error(404, "NAME_UNKNOWN", f"no scenario {call.scenario!r}")
        call.behaviour = behaviour
        if call.kind == "token":
            return (behaviour.token or polite_token)(call)
        if behaviour.token is not None and not self._authorized(call):
            return call.challenge()
        behaviour.registry(call)

    def start(self) -> HostileRegistry:
        registry = self
        gzip_bomb()  # made once, before the first `bomb` request waits for it

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # each write goes out when written
            server_version = "hostile-registry"
            timeout = 300  # idle keep-alive connections end eventually

            def answer(self) -> None:
                call = Call(self, registry)
                registry.record(call)
                try:
                    registry._dispatch(call)
                except OSError:  # the client went away mid-answer
                    call.wire.gone()
                finally:
                    registry.ended(call)

            def refuse(self) -> None:
                self.close_connection = True
                body = error_body("UNSUPPORTED", "read-only")
                self.send_response(405)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_HEAD = answer
            do_POST = do_PUT = do_PATCH = do_DELETE = refuse

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: requests are recorded in `seen` instead."""

        self.stopping.clear()
        server = LoopbackServer(Handler, "hostile-registry", self.host)
        self.port = server.port
        self.url = server.url
        self._serving = server.serve()
        return self

    def stop(self) -> None:
        self.stopping.set()  # ends stalls, drips and streams
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self) -> HostileRegistry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
