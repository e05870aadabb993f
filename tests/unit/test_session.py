"""The requests session under the transport: what it does with redirect bodies and how
many connections to one upstream it keeps, against a scripted upstream on 127.0.0.1."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from ociwrap.runtime import deadline
from ociwrap.upstream.guard import Policy
from ociwrap.upstream.session import UpstreamSession
from scripted_upstream import closed_port


def test_a_redirect_that_is_not_followed_comes_without_its_body(scripted):
    """A blob's 307 is passed on by its Location alone: its body is never read."""
    scripted.routes["GET", "/v2/team/app/blobs/sha256:1"] = lambda h: (
        307,
        {"Location": "/cdn/1"},
        b"moved to /cdn/1",
    )
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    response = session.get(f"{scripted.url}/v2/team/app/blobs/sha256:1", allow_redirects=False)
    assert response.status_code == 307 and response.headers["Location"] == "/cdn/1"
    assert response.content == b""


def test_a_followed_redirect_leaves_no_body_in_the_history(scripted):
    scripted.routes["GET", "/v2/team/app/blobs/sha256:1"] = lambda h: (
        307,
        {"Location": "/cdn/1"},
        b"moved to /cdn/1",
    )
    scripted.routes["GET", "/cdn/1"] = lambda h: (200, {}, b"layer")
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    response = session.get(f"{scripted.url}/v2/team/app/blobs/sha256:1")
    assert response.content == b"layer"
    assert [(r.status_code, r.content) for r in response.history] == [(307, b"")]


def test_a_redirect_loop_ends_after_five_redirects(scripted):
    scripted.routes["GET", "/v2/"] = lambda h: (302, {"Location": "/v2/"}, b"")
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    with pytest.raises(requests.TooManyRedirects) as caught:
        session.get(f"{scripted.url}/v2/")
    assert str(caught.value) == "Exceeded 5 redirects."
    assert len(scripted.seen) == 6


def test_proxies_named_in_the_environment_are_not_used(scripted, monkeypatch):
    """What is contacted is decided by names and aliases alone, never by the environment."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    scripted.routes["GET", "/v2/"] = lambda h: (200, {}, b"{}")
    assert UpstreamSession(Policy.NOT_LINK_LOCAL).get(f"{scripted.url}/v2/").content == b"{}"


def test_sixteen_connections_to_an_upstream_are_kept_for_reuse(scripted, connects):
    """Seventeen requests at once need seventeen connections; sixteen are kept, so the next
    seventeen open one more."""
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    url = f"{scripted.url}/v2/team/app/manifests/1"

    def round_of(count: int) -> list[int]:
        together = threading.Barrier(count, timeout=10)

        def route(handler):
            together.wait()  # all of them under way at once
            return 200, {}, b"{}"

        scripted.routes["GET", "/v2/team/app/manifests/1"] = route
        with ThreadPoolExecutor(count) as pool:
            return list(pool.map(lambda _: session.get(url).status_code, range(count)))

    assert round_of(17) == [200] * 17
    assert len(connects) == 17
    assert round_of(17) == [200] * 17
    assert len(connects) == 18


def test_a_passed_deadline_stops_a_request_on_a_kept_connection(scripted):
    """The first request's connection is kept open; once the deadline has passed, the next
    request is stopped before anything goes over it."""
    clock = Clock()
    scripted.routes["GET", "/v2/"] = lambda h: (200, {}, b"{}")
    session = UpstreamSession(Policy.NOT_LINK_LOCAL)
    with deadline.within(deadline.Deadline(10.0, clock)):
        assert session.get(f"{scripted.url}/v2/").content == b"{}"
        clock.now += 10
        with pytest.raises(TimeoutError) as caught:
            session.get(f"{scripted.url}/v2/")
    assert str(caught.value) == "the request's deadline has passed"
    assert len(scripted.seen) == 1


class Clock:
    """A deadline's clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now
