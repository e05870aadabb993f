"""The upstream transport against a scripted registry on 127.0.0.1 (real HTTP, odd answers):
Bearer flow, retries, one deadline for everything, guarded redirect hops."""

from __future__ import annotations

import json
import threading

import pytest
import requests
import urllib3

from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime import deadline, hops, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream import connection
from ociwrap.upstream.bodies import read_body
from ociwrap.upstream.credentials import Credential
from ociwrap.upstream.transport import Transport, transport_error
from scripted_upstream import Scripted, Stall, closed_port, drip


@pytest.fixture
def scripted(emptied_upstream: Scripted) -> Scripted:
    """One scripted upstream for the tests of this file (conftest's `shared_upstream`):
    starting and stopping one per test would take longer than most of them."""
    return emptied_upstream


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


def error_of(call, *args, **kwargs) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args, **kwargs)
    return caught.value


def bearer(scripted, scope: str = "repository:team/app:pull") -> str:
    return f'Bearer realm="{scripted.url}/token",service="stub",scope="{scope}"'


def token_route(issued: list[str], tokens: list[str]):
    def route(handler):
        token = tokens[min(len(issued), len(tokens) - 1)]
        issued.append(token)
        return 200, {"Content-Type": "application/json"}, json.dumps({"token": token}).encode()

    return route


# -- Bearer flow --------------------------------------------------------------------------


def test_bearer_token_is_fetched_once_and_reused(scripted, repo):
    issued: list[str] = []

    def manifest(handler):
        if handler.headers.get("Authorization") != "Bearer t1":
            return 401, {"WWW-Authenticate": bearer(scripted)}, b""
        return 200, {}, b"{}"

    scripted.routes["GET", "/v2/team/app/manifests/1"] = manifest
    scripted.routes["GET", "/token"] = token_route(issued, ["t1"])
    transport = Transport()
    for _ in range(3):
        assert transport.request(repo, "GET", "manifests/1").status_code == 200
    assert issued == ["t1"]
    token_request = scripted.requests_to("/token")[0][1]
    assert (
        "scope=repository%3Ateam%2Fapp%3Apull" in token_request and "service=stub" in token_request
    )
    auths = [h.get("Authorization", "") for _m, _p, h in scripted.requests_to("/manifests/")]
    assert auths == ["", "Bearer t1", "Bearer t1", "Bearer t1"]


def test_a_rejected_cached_token_is_dropped_and_renewed_once(scripted, repo):
    issued: list[str] = []
    accepted = {"t1"}

    def manifest(handler):
        if handler.headers.get("Authorization", "").removeprefix("Bearer ") in accepted:
            return 200, {}, b"{}"
        return 401, {"WWW-Authenticate": bearer(scripted)}, b""

    scripted.routes["GET", "/v2/team/app/manifests/1"] = manifest
    scripted.routes["GET", "/token"] = token_route(issued, ["t1", "t2"])
    transport = Transport()
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    accepted.clear()
    accepted.add("t2")  # the upstream revokes t1 long before it expires
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    assert issued == ["t1", "t2"]


def test_bearer_challenge_is_found_among_several_header_lines(scripted, repo):
    issued: list[str] = []

    def manifest(handler):
        if handler.headers.get("Authorization") == "Bearer t1":
            return 200, {}, b"{}"
        challenges = [
            ("WWW-Authenticate", 'Basic realm="stub"'),
            ("WWW-Authenticate", bearer(scripted)),
        ]
        return 401, challenges, b""

    scripted.routes["GET", "/v2/team/app/manifests/1"] = manifest
    scripted.routes["GET", "/token"] = token_route(issued, ["t1"])
    assert Transport().request(repo, "GET", "manifests/1").status_code == 200
    assert issued == ["t1"]


@pytest.mark.parametrize("expires_in", ["NaN", -5, 1e308, "abc", None, True])
def test_odd_token_lifetimes_fall_back_to_a_default(scripted, repo, expires_in):
    def token(handler):
        body = json.dumps({"token": "t1", "expires_in": expires_in}).encode()
        return 200, {"Content-Type": "application/json"}, body

    scripted.routes["GET", "/token"] = token
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == "Bearer t1"
        else (401, {"WWW-Authenticate": bearer(scripted)}, b"")
    )
    assert Transport().request(repo, "GET", "manifests/1").status_code == 200


@pytest.mark.parametrize(
    ("body", "headers"),
    [
        (b'{"token": "' + b"a" * 70_000 + b'"}', {}),
        (b'{"token": "t\\r\\nX-Injected: 1"}', {}),
        (b'{"token": 5}', {}),
        (b"[" * 10_000, {}),
    ],
    ids=["huge", "crlf", "not-a-string", "deep"],
)
def test_unusable_token_responses_are_502(scripted, repo, body, headers):
    scripted.routes["GET", "/token"] = lambda h: (200, headers, body)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": bearer(scripted)},
        b"",
    )
    error = error_of(Transport().request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert "upstream registry stub" in error.message and "token" in error.message


# -- retries ------------------------------------------------------------------------------


def answers(*statuses: int):
    """A route that answers `statuses` in turn, then 200: an attempt too many gets the 200."""
    left = list(statuses)
    return lambda handler: (left.pop(0) if left else 200, {}, b"")


def test_5xx_on_get_is_retried_with_backoff(scripted, repo):
    answers = iter([503, 502, 200])
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (next(answers), {}, b"{}")
    assert Transport().request(repo, "GET", "manifests/1").status_code == 200
    assert len(scripted.requests_to("/manifests/1")) == 3


def test_retries_stop_after_three_attempts(scripted, repo):
    scripted.routes["HEAD", "/v2/team/app/manifests/1"] = answers(503, 503, 503)
    assert Transport().request(repo, "HEAD", "manifests/1").status_code == 503
    assert len(scripted.requests_to("/manifests/1")) == 3


def test_no_retry_without_budget_for_it(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = answers(503)
    with deadline.within(deadline.Deadline(0.8)):
        assert Transport().request(repo, "GET", "manifests/1").status_code == 503
    assert len(scripted.requests_to("/manifests/1")) == 1


def test_500_is_an_answer_not_a_retry(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (500, {}, b"")
    assert Transport().request(repo, "GET", "manifests/1").status_code == 500
    assert len(scripted.requests_to("/manifests/1")) == 1


def test_unreachable_upstream_is_a_502_naming_it():
    repo = Repository(Registry("gone", f"http://127.0.0.1:{closed_port()}", True), "x")
    error = error_of(Transport().request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert "cannot reach upstream registry gone" in error.message


# -- one deadline -------------------------------------------------------------------------


class Clock:
    """A deadline's clock that moves only when a test moves it."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_slow_headers_end_at_the_deadline(scripted, repo):
    """Headers 5 s late, a quarter of the per-read cap: only the deadline lets go before."""
    stall = Stall(5)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = stall
    transport = Transport()
    with deadline.within(deadline.Deadline(0.25)):
        error = error_of(transport.request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert "deadline" in error.message and "upstream registry stub" in error.message
    stall.wait_for(1)
    assert (stall.hung_up, stall.answered) == (1, 0)  # it let go before the headers came


def test_a_dripping_body_ends_at_the_deadline_not_per_read(scripted, repo):
    """One byte every 0.1 s never trips a per-read time-out; the deadline still ends it."""
    body = drip(b"x", 0.1, repeat=100)  # all of it would take 10 s and be a good answer
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        200,
        {"Content-Length": "100"},
        body,
    )
    transport = Transport()
    with deadline.within(deadline.Deadline(0.25)):
        response = transport.request(repo, "GET", "manifests/1")
        error = error_of(read_body, response, 1000, "manifest", "stub")
    assert error.status == 504 and "deadline" in error.message
    assert body.ended.wait(20)  # without a hang-up it would end after its 10 s
    assert body.hung_up and body.sent < 100, body.sent  # the reading stopped, not the drip


def test_slow_calls_add_up_against_one_deadline(scripted, repo):
    """Each call takes 3 s (on the deadline's clock), so 4 of them use up 10 s: a deadline
    that each call drew afresh would let all ten through; the fifth is never sent."""
    clock = Clock()
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (200, {}, b"{}")
    transport = Transport()
    succeeded = 0
    with deadline.within(deadline.Deadline(10.0, clock)):
        for _ in range(10):
            try:
                transport.request(repo, "GET", "manifests/1").close()
            except RegistryError as exc:
                error = exc
                break
            succeeded += 1
            clock.now += 3
        else:
            pytest.fail("ten slow calls all got through a 10 s deadline")
    assert (error.status, error.message) == (
        504,
        "the request's deadline (10 s) ran out while waiting for upstream registry stub",
    )
    assert succeeded == 4 and len(scripted.seen) == 4


def test_a_slow_token_realm_counts_against_the_deadline(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": bearer(scripted)},
        b"",
    )
    stall = Stall(60)
    scripted.routes["GET", "/token"] = stall
    transport = Transport()
    with deadline.within(deadline.Deadline(0.25)):
        error = error_of(transport.request, repo, "GET", "manifests/1")
    assert error.status == 504 and "deadline" in error.message
    assert "token service of upstream registry stub" in error.message
    stall.wait_for(1)
    assert (stall.hung_up, stall.answered) == (1, 0)


def test_a_passed_deadline_sends_nothing(scripted, repo):
    expired = deadline.Deadline(0.0)
    with deadline.within(expired):
        error = error_of(Transport().request, repo, "GET", "manifests/1")
    assert error.status == 504
    assert scripted.seen == []


# -- redirects ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/iam/",
        "http://[fe80::1]/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    ],
)
def test_an_alias_cannot_redirect_to_link_local(scripted, repo, loopback_only, target):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (302, {"Location": target}, b"")
    error = error_of(Transport().request, repo, "GET", "manifests/1", allow_redirects=True)
    assert (error.code, error.status) == ("DENIED", 403)
    assert "/latest/meta-data" not in error.message + json.dumps(error.detail)
    assert loopback_only == []


def test_redirect_bodies_are_never_read(scripted, repo):
    endless = drip(b"x" * 65536, 0, repeat=2000)  # 128 MB, if anyone read it
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        302,
        {"Location": "/elsewhere", "Content-Length": str(2000 * 65536)},
        endless,
    )
    scripted.routes["GET", "/elsewhere"] = lambda h: (200, {}, b"{}")
    response = Transport().request(repo, "GET", "manifests/1", allow_redirects=True)
    assert response.status_code == 200 and response.content == b"{}"
    # The redirect's connection is closed unread: the body stops when its sends fail,
    # long before its end (socket buffers take a few MB; a client that drained the
    # connection to reuse it would have taken all 128).
    assert endless.ended.wait(20)
    assert endless.hung_up and endless.sent < 1000, endless.sent


def test_authorization_stays_with_the_registry_host(scripted, repo):
    port = scripted.url.rsplit(":", 1)[1]
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (302, {"Location": f"http://localhost:{port}/cdn"}, b"")
        if h.headers.get("Authorization")
        else (401, {"WWW-Authenticate": bearer(scripted)}, b"")
    )
    scripted.routes["GET", "/token"] = token_route([], ["t1"])
    scripted.routes["GET", "/cdn"] = lambda h: (200, {}, b"{}")
    response = Transport().request(repo, "GET", "manifests/1", allow_redirects=True)
    assert response.status_code == 200
    assert "Authorization" not in scripted.requests_to("/cdn")[0][2]


@pytest.mark.parametrize("location", ["file:///etc/passwd", "gopher://x/", "http://[::1"])
def test_unusable_redirect_targets_are_502(scripted, repo, location):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        302,
        {"Location": location},
        b"",
    )
    error = error_of(Transport().request, repo, "GET", "manifests/1", allow_redirects=True)
    assert error.status == 502 and "upstream registry stub" in error.message


def test_redirect_loops_end(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        302,
        {"Location": "/v2/team/app/manifests/1"},
        b"",
    )
    error = error_of(Transport().request, repo, "GET", "manifests/1", allow_redirects=True)
    assert error.status == 502 and "redirected more than" in error.message


def test_parallel_requests_share_the_deadline_of_their_request(scripted, repo):
    """Threads started for one request carry its deadline (concurrency.parallel_map), and
    are gone when it returns."""
    from ociwrap.runtime.concurrency import parallel_map

    stall = Stall(60)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = stall
    transport = Transport()
    errors: list[RegistryError] = []

    def call(_n: int) -> int:
        try:
            transport.request(repo, "GET", "manifests/1").close()
        except RegistryError as exc:
            errors.append(exc)
        return 0

    before = set(threading.enumerate())
    with deadline.within(deadline.Deadline(0.25)):
        parallel_map(call, range(3), 3)
    left = set(threading.enumerate()) - before - scripted.threads
    assert [thread.name for thread in left] == []  # none still running, none to join
    # Without the deadline a thread would wait out the 20 s read cap: "timed out", no deadline.
    assert [(e.status, "deadline" in e.message) for e in errors] == [(504, True)] * 3
    stall.wait_for(len(scripted.seen))  # every request that went out was let go
    assert stall.answered == 0


# -- what every request carries -----------------------------------------------------------


def test_every_request_names_its_sender_and_its_hops(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (200, {}, b"{}")
    Transport().request(repo, "GET", "manifests/1").close()
    Transport(hop="registry.example.com").request(repo, "GET", "manifests/1").close()
    with hops.within(("first.example.com",)):
        Transport(hop="registry.example.com").request(repo, "GET", "manifests/1").close()
    assert [(h["User-Agent"], h["Via"]) for _m, _p, h in scripted.seen] == [
        ("ociwrap", "1.1 ociwrap (ociwrap)"),
        ("ociwrap", "1.1 registry.example.com (ociwrap)"),
        ("ociwrap", "1.1 first.example.com (ociwrap), 1.1 registry.example.com (ociwrap)"),
    ]


def test_an_answer_that_carries_our_own_hop_is_a_loop(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        403,
        {"Via": "1.1 other (ociwrap), 1.1 registry.example.com (ociwrap)"},
        b"",
    )
    error = error_of(Transport(hop="registry.example.com").request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        "request loop: upstream registry stub is this registry itself; a registry alias or an "
        "image name points ociwrap at itself"
    )
    assert error.detail == {"registry": "stub"}
    assert Transport(hop="elsewhere").request(repo, "GET", "manifests/1").status_code == 403


def test_a_request_that_came_through_another_registry_is_not_retried(scripted, repo):
    """Its first hop retries: retrying here too would multiply the attempts."""
    scripted.routes["GET", "/v2/team/app/manifests/1"] = answers(503)
    with hops.within(("first.example.com",)):
        assert Transport().request(repo, "GET", "manifests/1").status_code == 503
    assert len(scripted.seen) == 1


def test_only_reads_are_retried(scripted, repo):
    scripted.routes["POST", "/token"] = answers(503)
    transport = Transport()
    assert transport.send(repo.registry, "POST", f"{scripted.url}/token").status_code == 503
    assert len(scripted.seen) == 1


def test_calls_and_failures_are_counted_per_registry(scripted, repo):
    answers = iter([503, 200, 500])
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (next(answers), {}, b"{}")
    gone = Repository(Registry("gone", f"http://127.0.0.1:{closed_port()}", True), "x")
    with telemetry.collecting() as stats:
        assert Transport().request(repo, "GET", "manifests/1").status_code == 200
        assert Transport().request(repo, "GET", "manifests/1").status_code == 500
        error_of(Transport().request, gone, "GET", "manifests/1")
    assert stats.upstream_calls == 4
    assert {name: counts[:2] for name, counts in stats.registries.items()} == {
        "stub": [3, 2],
        "gone": [1, 1],
    }


# -- what a client is told ----------------------------------------------------------------


def test_a_path_named_registry_on_a_private_address_is_refused(no_network):
    public = Repository(Registry("10.0.0.5", "http://10.0.0.5", trusted=False), "team/app")
    error = error_of(Transport().request, public, "GET", "manifests/1")
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        "refusing to contact 10.0.0.5 (10.0.0.5) for upstream registry 10.0.0.5: not a public "
        "address; name private registries in REGISTRY_ALIASES"
    )
    assert error.detail == {"host": "10.0.0.5"}
    assert no_network == []


def test_an_alias_on_a_link_local_address_is_refused(no_network):
    alias = Repository(Registry("meta", "http://169.254.169.254", trusted=True), "team/app")
    error = error_of(Transport().request, alias, "GET", "manifests/1")
    assert (error.code, error.status) == ("DENIED", 403)
    assert error.message == (
        "refusing to contact 169.254.169.254 (169.254.169.254) for upstream registry meta: "
        "link-local and metadata addresses are never contacted"
    )
    assert no_network == []


def test_an_upstream_slower_than_a_read_may_wait_times_out(scripted, repo, monkeypatch):
    """Without a request deadline, one read waits at most IO_CAP (here shortened)."""
    from ociwrap.upstream import session

    monkeypatch.setattr(connection, "IO_CAP", 0.1)
    monkeypatch.setattr(session, "IO_CAP", 0.1)
    stall = Stall(60)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = stall
    error = error_of(Transport().request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == "upstream registry stub timed out"
    stall.wait_for(1)


def test_the_deadline_is_named_with_its_budget(scripted, repo):
    clock = Clock()
    transport = Transport()
    with deadline.within(deadline.Deadline(29.5, clock)):
        clock.now += 29.5
        error = error_of(transport.request, repo, "GET", "manifests/1")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == (
        "the request's deadline (30 s) ran out while waiting for upstream registry stub"
    )
    assert scripted.seen == []


def test_unreachable_upstreams_name_the_failure(scripted):
    gone = Repository(Registry("gone", f"http://127.0.0.1:{closed_port()}", True), "x")
    error = error_of(Transport().request, gone, "GET", "manifests/1")
    assert error.message == "cannot reach upstream registry gone: ConnectionError"


def test_redirect_loops_are_named_and_end_after_five(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        302,
        {"Location": "/v2/team/app/manifests/1"},
        b"",
    )
    error = error_of(Transport().request, repo, "GET", "manifests/1", allow_redirects=True)
    assert error.message == "upstream registry stub redirected more than 5 times"
    assert len(scripted.seen) == 6


def test_a_redirect_to_no_url_is_named(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        302,
        {"Location": "gopher://x/"},
        b"",
    )
    error = error_of(Transport().request, repo, "GET", "manifests/1", allow_redirects=True)
    assert error.message == "upstream registry stub sent an invalid redirect or URL"


# -- authentication -----------------------------------------------------------------------


class Fixed:
    """Logins as `UpstreamLogins` hands them out: `logins` one after another, the last kept."""

    def __init__(self, *logins: Credential | None) -> None:
        self.logins = list(logins)
        self.rejections = 0

    def for_registry(self, registry: Registry) -> Credential | None:
        return self.logins[min(self.rejections, len(self.logins) - 1)]

    def rejected(self, registry: Registry) -> None:
        self.rejections += 1


def test_a_401_without_a_challenge_is_the_answer(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (401, {}, b"")
    assert (
        Transport(Fixed(Credential("u", "p"))).request(repo, "GET", "manifests/1").status_code
        == 401
    )
    assert len(scripted.seen) == 1


def test_a_basic_challenge_without_a_login_is_the_answer(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": 'Basic realm="stub"'},
        b"",
    )
    assert Transport().request(repo, "GET", "manifests/1").status_code == 401
    assert Transport(Fixed(None)).request(repo, "GET", "manifests/1").status_code == 401
    assert len(scripted.seen) == 2


def test_a_rejected_basic_login_is_renewed_once_then_given_up(scripted, repo):
    old, new = Credential("u", "old"), Credential("u", "new")
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": 'Basic realm="stub"'},
        b"",
    )
    logins = Fixed(old, new)
    transport = Transport(logins)
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    auths = [h.get("Authorization", "") for _m, _p, h in scripted.seen]
    assert auths == ["", old.basic(), old.basic(), new.basic()]
    assert logins.rejections == 1


def test_a_rejected_login_that_is_gone_is_the_answer(scripted, repo):
    login = Credential("u", "p")
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": 'Basic realm="stub"'},
        b"",
    )
    logins = Fixed(login, None)
    transport = Transport(logins)
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    auths = [h.get("Authorization", "") for _m, _p, h in scripted.seen]
    assert auths == ["", login.basic(), login.basic()]
    assert logins.rejections == 1


def test_a_login_refused_at_the_realm_is_reported(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": bearer(scripted)},
        b"",
    )
    scripted.routes["GET", "/token"] = lambda h: (401, {}, b"")
    logins = Fixed(Credential("u", "p"))
    error = error_of(Transport(logins).request, repo, "GET", "manifests/1")
    assert error.code == "UNAUTHORIZED" and logins.rejections == 1


def test_each_login_has_its_own_token(scripted, repo):
    issued: list[str] = []
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization", "").startswith("Bearer ")
        else (401, {"WWW-Authenticate": bearer(scripted)}, b"")
    )
    scripted.routes["GET", "/token"] = token_route(issued, ["t1", "t2"])
    a, b = Transport(Fixed(Credential("a", "p"))), Transport(Fixed(Credential("b", "p")))
    b.tokens = a.tokens
    for transport in (a, b, a, b):
        transport.request(repo, "GET", "manifests/1").close()
    assert issued == ["t1", "t2"]
    auths = [h.get("Authorization", "") for _m, p, h in scripted.seen if "/manifests/" in p]
    assert auths == ["", "Bearer t1", "", "Bearer t2", "Bearer t1", "Bearer t2"]


# -- connections --------------------------------------------------------------------------


def test_a_refused_connection_is_tried_three_times(connects):
    port = closed_port()
    gone = Repository(Registry("gone", f"http://127.0.0.1:{port}", True), "x")
    error_of(Transport().request, gone, "GET", "manifests/1")
    assert connects == [("127.0.0.1", port)] * 3


def test_a_refused_connection_is_not_retried_without_budget_for_it(connects):
    port = closed_port()
    gone = Repository(Registry("gone", f"http://127.0.0.1:{port}", True), "x")
    with deadline.within(deadline.Deadline(0.8)):
        error_of(Transport().request, gone, "GET", "manifests/1")
    assert connects == [("127.0.0.1", port)]


def test_proxies_named_in_the_environment_are_not_used(scripted, repo, monkeypatch):
    """What is contacted is decided by names and aliases alone, never by the environment."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (200, {}, b"{}")
    assert Transport().request(repo, "GET", "manifests/1").status_code == 200


class ByRegistry:
    """Logins per registry name, one after another as each is rejected; records rejections."""

    def __init__(self, logins: dict[str, list[Credential | None]]) -> None:
        self.logins = logins
        self.rejected_at: list[str] = []

    def for_registry(self, registry: Registry) -> Credential | None:
        known = self.logins.get(registry.name, [None])
        return known[min(self.rejected_at.count(registry.name), len(known) - 1)]

    def rejected(self, registry: Registry) -> None:
        self.rejected_at.append(registry.name)


def test_the_login_of_the_registry_asked_is_sent_and_rejected(scripted, repo):
    old, new = Credential("u", "old"), Credential("u", "new")
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == new.basic()
        else (401, {"WWW-Authenticate": 'Basic realm="stub"'}, b"")
    )
    logins = ByRegistry({"stub": [old, new], "other": [Credential("o", "p")]})
    transport = Transport(logins)
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    auths = [h.get("Authorization", "") for _m, _p, h in scripted.seen]
    assert auths == ["", old.basic(), old.basic(), new.basic()]
    assert logins.rejected_at == ["stub"]


def test_a_rejected_token_of_a_login_is_renewed(scripted, repo):
    """The token cached for a login is the one forgotten when the upstream revokes it."""
    issued: list[str] = []
    accepted = {"t1"}
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization", "").removeprefix("Bearer ") in accepted
        else (401, {"WWW-Authenticate": bearer(scripted)}, b"")
    )
    scripted.routes["GET", "/token"] = token_route(issued, ["t1", "t2"])
    transport = Transport(Fixed(Credential("u", "p")))
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    accepted.clear()
    accepted.add("t2")
    assert transport.request(repo, "GET", "manifests/1").status_code == 200
    assert issued == ["t1", "t2"]
    auths = [h.get("Authorization", "") for _m, p, h in scripted.seen if "/manifests/" in p]
    assert auths == ["", "Bearer t1", "Bearer t1", "Bearer t2"]


def test_504_on_get_is_retried(scripted, repo):
    answers = iter([504, 200])
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (next(answers), {}, b"{}")
    assert Transport().request(repo, "GET", "manifests/1").status_code == 200
    assert len(scripted.requests_to("/manifests/1")) == 2


def test_a_redirect_is_the_answer_unless_following_is_asked_for(scripted, repo):
    """Blob redirects are passed on to the client: the transport does not follow them."""
    scripted.routes["GET", "/v2/team/app/blobs/sha256:1"] = lambda h: (
        307,
        {"Location": f"{scripted.url}/cdn/1"},
        b"",
    )
    scripted.routes["GET", "/cdn/1"] = lambda h: (200, {}, b"layer")
    response = Transport().request(repo, "GET", "blobs/sha256:1")
    assert response.status_code == 307
    assert response.headers["Location"] == f"{scripted.url}/cdn/1"
    assert scripted.requests_to("/cdn/") == []


def test_a_form_is_posted_as_given(scripted, repo):
    """OAuth2 token requests post their grant as a form."""
    bodies: list[bytes] = []

    def token(handler):
        bodies.append(handler.rfile.read(int(handler.headers["Content-Length"])))
        return 200, {}, b"{}"

    scripted.routes["POST", "/token"] = token
    form = {"grant_type": "refresh_token", "refresh_token": "r1", "client_id": "ociwrap"}
    response = Transport().send(repo.registry, "POST", f"{scripted.url}/token", data=form)
    assert response.status_code == 200
    assert bodies == [b"grant_type=refresh_token&refresh_token=r1&client_id=ociwrap"]
    assert scripted.seen[0][2]["Content-Type"] == "application/x-www-form-urlencoded"


# -- time-outs, however deeply they are wrapped ----------------------------------------------


def caused_by(cause: BaseException, depth: int) -> OSError:
    """An OSError with `cause` `depth` links down its chain of causes."""
    outer: BaseException = cause
    for level in range(depth):
        wrapper = OSError(f"level {level}")
        wrapper.__cause__ = outer
        outer = wrapper
    return outer


def test_a_time_out_that_urllib3_and_requests_wrapped_is_a_504():
    """requests.ConnectionError(MaxRetryError(reason=ConnectTimeoutError)), as a connect
    to an upstream that never answers ends."""
    timed_out = urllib3.exceptions.ConnectTimeoutError(None, "connecting to r.example timed out")
    exc = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v2/", timed_out))
    error = transport_error(exc, "upstream registry r")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == "upstream registry r timed out"


def test_a_refused_connection_is_no_time_out():
    """urllib3 files NewConnectionError under its connect time-outs; it is a 502."""
    refused = urllib3.exceptions.NewConnectionError(None, "cannot connect to r.example")
    exc = requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v2/", refused))
    error = transport_error(exc, "upstream registry r")
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == "cannot reach upstream registry r: ConnectionError"


def test_time_outs_are_found_in_arguments_and_causes():
    read = requests.ConnectionError(urllib3.exceptions.ReadTimeoutError(None, "/v2/", "slow"))
    assert transport_error(read, "upstream registry r").status == 504
    assert transport_error(caused_by(TimeoutError(), 1), "upstream registry r").status == 504


def test_a_time_out_is_looked_for_ten_causes_deep():
    """And no deeper: a chain of causes that loops back on itself ends too."""
    found = transport_error(caused_by(TimeoutError("slow"), 9), "upstream registry r")
    assert (found.status, found.message) == (504, "upstream registry r timed out")
    deeper = transport_error(caused_by(TimeoutError("slow"), 10), "upstream registry r")
    assert (deeper.status, deeper.message) == (502, "cannot reach upstream registry r: OSError")


def test_a_deadline_that_ran_out_between_calls_sends_nothing_on_a_kept_connection(scripted, repo):
    """The connection of the first call is kept open for the next: once the deadline has
    passed, nothing more goes over it, and the client is told of the deadline."""
    clock = Clock()
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (200, {}, b"{}")
    transport = Transport()
    with deadline.within(deadline.Deadline(10.0, clock)):
        assert transport.request(repo, "GET", "manifests/1").content == b"{}"
        clock.now += 10
        error = error_of(transport.request, repo, "GET", "manifests/1")
    assert (error.status, error.message) == (
        504,
        "the request's deadline (10 s) ran out while waiting for upstream registry stub",
    )
    assert len(scripted.seen) == 1
