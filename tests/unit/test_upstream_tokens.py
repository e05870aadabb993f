"""Bearer tokens from upstream token services, the Docker Hub flow: which realm is asked and
with what, how long a token is kept (`expires_in`, on a clock the test turns), and what a
client is told when the realm refuses.

The token service is `https://auth.docker.io:<port>/token` as Docker Hub names its own: a
TLS server on 127.0.0.1 under a test CA, the name in the test's DNS table. A registry named
in a path may only reach public addresses, so its requests to that realm go through the
transport under an alias's address policy (`as_alias`); everything else is as deployed.
"""

from __future__ import annotations

import io
import json
import ssl
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import urllib3

from harness.tls import self_signed
from harness.upstream_server import LoopbackServer
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.challenge import Challenge, choose
from ociwrap.upstream.credentials import Credential
from ociwrap.upstream.tokens import Tokens
from ociwrap.upstream.transport import Transport
from scripted_upstream import closed_port

HOST = "auth.docker.io"
HUB = Registry("docker.io", "https://registry-1.docker.io", trusted=False)
BUSYBOX = Repository(HUB, "library/busybox")
SCOPE = "repository:library/busybox:pull"
Answer = tuple[int, dict[str, str], bytes]


def issued(token: str, **fields: Any) -> Answer:
    """A token service's answer: `{"token": token, **fields}`."""
    return (
        200,
        {"Content-Type": "application/json"},
        json.dumps({"token": token, **fields}).encode(),
    )


class Realm:
    """A token service over TLS on 127.0.0.1, known as auth.docker.io: it answers every
    request with `answer(handler)` (by default a token `t<n>` for the n-th request) and
    records each as (method, path, headers, body)."""

    def __init__(self, certificate: tuple[Path, Path]) -> None:
        self.seen: list[tuple[str, str, dict[str, str], str]] = []
        self.answer: Callable[[BaseHTTPRequestHandler], Answer] = lambda h: issued(
            f"t{len(self.seen)}"
        )
        realm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode()
                realm.seen.append((self.command, self.path, dict(self.headers.items()), body))
                status, headers, data = realm.answer(self)
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(data))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = answer

            def log_message(self, *args: object) -> None:
                pass

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*certificate)
        self.server = LoopbackServer(Handler, "token service")
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://{HOST}:{self.server.port}/token"
        self._serving = self.server.serve()

    def queries(self) -> list[dict[str, list[str]]]:
        return [parse_qs(urlsplit(path).query) for _m, path, _h, _b in self.seen]

    def stop(self) -> None:
        self._serving.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for auth.docker.io (its own CA) and its key."""
    return self_signed(tmp_path_factory.mktemp("realm"), HOST)


@pytest.fixture
def realm(certificate, dns) -> Iterator[Realm]:
    dns[HOST] = ["127.0.0.1"]
    server = Realm(certificate)
    yield server
    server.stop()


@pytest.fixture
def transport(certificate) -> Transport:
    return Transport(ca_bundle=str(certificate[0]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def as_alias(transport: Transport):
    """The transport's `send`, under an alias's address policy (see the module's doc)."""

    def send(registry: Registry, *args: Any, **kwargs: Any):
        return transport.send(Registry(registry.name, registry.url, trusted=True), *args, **kwargs)

    return send


def hub_challenge(realm: Realm, **params: str) -> Challenge:
    params = {"service": "registry.docker.io", "scope": SCOPE, **params}
    listed = ",".join(f'{name}="{value}"' for name, value in params.items() if value)
    found = choose([f'Bearer realm="{realm.url}",{listed}'])
    assert found is not None
    return found


def error_of(call: Callable[..., Any], *args: Any, **kwargs: Any) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args, **kwargs)
    return caught.value


# -- the realm and what it is sent --------------------------------------------------------


def test_an_https_realm_like_docker_hubs_issues_the_token(realm, transport):
    token = Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert token == "t1"
    method, path, headers, _body = realm.seen[0]
    assert (method, urlsplit(path).path) == ("GET", "/token")
    assert realm.queries() == [{"scope": [SCOPE], "service": ["registry.docker.io"]}]
    assert "Authorization" not in headers


def test_a_login_goes_to_an_https_realm_as_basic(realm, transport):
    login = Credential("hubuser", "hubpass")
    token = Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport), login)
    assert token == "t1"
    assert realm.seen[0][2]["Authorization"] == login.basic()


def test_an_alias_reaches_an_https_realm_through_the_transport(realm, transport, scripted):
    alias = Repository(Registry("hub", scripted.url, trusted=True), "library/busybox")
    challenge = f'Bearer realm="{realm.url}",service="registry.docker.io",scope="{SCOPE}"'
    scripted.routes["GET", "/v2/library/busybox/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == "Bearer t1"
        else (401, {"WWW-Authenticate": challenge}, b"")
    )
    assert transport.request(alias, "GET", "manifests/1").status_code == 200
    assert len(realm.seen) == 1


def test_an_identity_token_is_exchanged_in_a_refresh_token_grant(realm, transport):
    login = Credential(identity_token="refresh-me")
    realm.answer = lambda h: (200, {}, b'{"access_token": "t-id"}')
    token = Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport), login)
    assert token == "t-id"
    method, path, headers, body = realm.seen[0]
    assert (method, path) == ("POST", "/token")
    assert parse_qs(body) == {
        "grant_type": ["refresh_token"],
        "refresh_token": ["refresh-me"],
        "client_id": ["ociwrap"],
        "scope": [SCOPE],
        "service": ["registry.docker.io"],
    }
    assert "Authorization" not in headers


def test_a_realm_without_a_service_is_asked_without_one(realm, transport):
    Tokens().fetch(BUSYBOX, hub_challenge(realm, service=""), as_alias(transport))
    login = Credential(identity_token="refresh-me")
    Tokens().fetch(BUSYBOX, hub_challenge(realm, service=""), as_alias(transport), login)
    assert realm.queries()[0] == {"scope": [SCOPE]}
    assert "service" not in parse_qs(realm.seen[1][3])


def test_without_a_scope_the_repository_is_asked_for(realm, transport):
    Tokens().fetch(BUSYBOX, hub_challenge(realm, scope=""), as_alias(transport))
    assert realm.queries() == [{"scope": [SCOPE], "service": ["registry.docker.io"]}]


def test_a_realm_that_redirects_is_followed(realm, transport):
    realm.answer = lambda h: (
        (302, {"Location": "/token/v2"}, b"") if h.path.startswith("/token?") else issued("moved")
    )
    assert Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport)) == "moved"
    assert [urlsplit(path).path for _m, path, _h, _b in realm.seen] == ["/token", "/token/v2"]


@pytest.mark.parametrize("url", ["ftp://auth.docker.io/token", "auth.docker.io/token", ""])
def test_a_realm_that_is_no_http_url_is_refused(transport, url):
    challenge = Challenge("bearer", {"realm": url, "service": "registry.docker.io"})
    error = error_of(Tokens().fetch, BUSYBOX, challenge, as_alias(transport))
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == "upstream registry docker.io named an invalid token realm"
    assert error.detail == {"registry": "docker.io"}


def test_an_unreachable_realm_is_named(transport, dns):
    dns[HOST] = ["127.0.0.1"]
    challenge = Challenge("bearer", {"realm": f"https://{HOST}:{closed_port()}/token"})
    error = error_of(Tokens().fetch, BUSYBOX, challenge, as_alias(transport))
    assert error.message.startswith("cannot reach token service of upstream registry docker.io")
    login = Credential(identity_token="refresh-me")
    error = error_of(Tokens().fetch, BUSYBOX, challenge, as_alias(transport), login)
    assert error.message.startswith("cannot reach token service of upstream registry docker.io")


# -- what the realm answers ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("document", "token"),
    [
        ({"access_token": "oauth"}, "oauth"),
        ({"token": "t", "access_token": "oauth"}, "t"),
        ({"token": "", "access_token": "oauth"}, "oauth"),
        ({"token": "!" + "~" * 16383}, "!" + "~" * 16383),
    ],
    ids=["access-token", "token-first", "empty-token", "longest"],
)
def test_the_token_is_read_as_docker_reads_it(realm, transport, document, token):
    realm.answer = lambda h: (200, {}, json.dumps(document).encode())
    assert Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport)) == token


@pytest.mark.parametrize(
    "document",
    [{"token": "a" * 16385}, {"token": "a b"}, {"token": "a\x7f"}, {"token": ""}, {}, ["t"]],
    ids=["too-long", "space", "delete", "empty", "none", "list"],
)
def test_tokens_that_cannot_go_into_a_header_are_refused(realm, transport, document):
    realm.answer = lambda h: (200, {}, json.dumps(document).encode())
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == "token service of upstream registry docker.io sent no usable token"
    assert error.detail == {"registry": "docker.io"}


def test_a_token_response_may_be_64_kib_and_no_more(realm, transport):
    document = b'{"token": "t"}'
    realm.answer = lambda h: (200, {}, document + b" " * (64 * 1024 - len(document)))
    assert Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport)) == "t"
    realm.answer = lambda h: (200, {}, document + b" " * (64 * 1024 + 1 - len(document)))
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert error.message == (
        "upstream registry docker.io sent a token response larger than the limit of 65536 bytes"
    )


def test_a_response_that_is_no_json_is_refused(realm, transport):
    realm.answer = lambda h: (200, {}, b"<html>sign in</html>")
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message.startswith(
        "token service of upstream registry docker.io sent a response that is not valid JSON"
    )
    assert error.detail == {"registry": "docker.io"}


@pytest.mark.parametrize("status", [500, 404, 204, 302])
def test_other_answers_of_the_realm_are_502(realm, transport, status):
    realm.answer = lambda h: (status, {}, b"")
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == f"token service of upstream registry docker.io answered {status}"
    assert error.detail == {"registry": "docker.io", "status": status}


@pytest.mark.parametrize(("status", "code"), [(401, "UNAUTHORIZED"), (403, "DENIED")])
def test_an_anonymous_refusal_asks_for_a_login(realm, transport, status, code):
    realm.answer = lambda h: (status, {}, b"")
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport))
    assert (error.code, error.status) == (code, status)
    assert error.message == (
        "upstream registry docker.io refused access to library/busybox: the repository does "
        "not exist, or it needs a login in UPSTREAM_CREDENTIALS_SECRET or "
        "UPSTREAM_CREDENTIALS_FILE"
    )
    assert error.detail == {"repository": str(BUSYBOX), "status": status}


@pytest.mark.parametrize(("status", "code"), [(401, "UNAUTHORIZED"), (403, "DENIED")])
def test_a_refused_login_is_reported_and_named(realm, transport, status, code):
    realm.answer = lambda h: (status, {}, b"")
    rejected: list[Registry] = []
    login = Credential("hubuser", "wrong")
    error = error_of(
        Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport), login, rejected.append
    )
    assert (error.code, error.status) == (code, status)
    assert error.message == (
        "upstream registry docker.io refused the login configured for it; check "
        "UPSTREAM_CREDENTIALS_SECRET or UPSTREAM_CREDENTIALS_FILE"
    )
    assert error.detail == {"registry": "docker.io", "status": status}
    assert rejected == [HUB]


def test_a_refused_login_needs_no_one_told(realm, transport):
    """Without a `rejected` to tell, a refused login is still the refusal."""
    realm.answer = lambda h: (401, {}, b"")
    login = Credential("hubuser", "wrong")
    error = error_of(Tokens().fetch, BUSYBOX, hub_challenge(realm), as_alias(transport), login)
    assert "refused the login configured for it" in error.message


# -- how long a token is kept -------------------------------------------------------------


@pytest.mark.parametrize(
    ("expires_in", "kept"),
    [
        (300, 290.0),  # Docker Hub's five minutes, less the ten-second margin
        (100.5, 90.5),
        (12, 2.0),
        (1, 1.0),
        (0.5, 1.0),
        (11, 1.0),
        (5, 1.0),  # never less than a second
        (None, 50.0),  # the default of 60 s
        (0, 50.0),
        (-5, 50.0),
        ("300", 50.0),
        (True, 50.0),
        (24 * 3600, 24 * 3600 - 10.0),
        (24 * 3600 + 1, 24 * 3600 - 10.0),  # at most a day
        (1e308, 24 * 3600 - 10.0),
    ],
)
def test_expires_in_is_honoured(realm, transport, expires_in, kept):
    clock = Clock()
    fields = {} if expires_in is None else {"expires_in": expires_in}
    realm.answer = lambda h: issued(f"t{len(realm.seen)}", **fields)
    tokens = Tokens(clock)
    fetch = lambda: tokens.fetch(BUSYBOX, hub_challenge(realm), as_alias(transport))  # noqa: E731
    assert fetch() == "t1"
    clock.now += kept - 0.25
    assert fetch() == "t1"
    assert tokens.for_repository(BUSYBOX) == "t1"
    clock.now += 0.25
    assert tokens.for_repository(BUSYBOX) is None
    assert fetch() == "t2"


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_a_lifetime_that_is_no_number_is_the_default(realm, transport, constant):
    """Some token services write `NaN` or `Infinity` where JSON has no such thing."""
    clock = Clock()
    realm.answer = lambda h: (200, {}, b'{"token": "t", "expires_in": ' + constant + b"}")
    tokens = Tokens(clock)
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), as_alias(transport)) == "t"
    clock.now += 49.75
    assert tokens.for_repository(BUSYBOX) == "t"
    clock.now += 0.25
    assert tokens.for_repository(BUSYBOX) is None


# -- which token is whose -----------------------------------------------------------------


def test_a_token_is_kept_per_scope_service_and_login(realm, transport):
    tokens = Tokens()
    send = as_alias(transport)
    hubuser, other = Credential("hubuser", "hubpass"), Credential("other", "pass")
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send) == "t1"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send) == "t1"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm, scope=SCOPE + ",push"), send) == "t2"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm, service="other"), send) == "t3"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send, hubuser) == "t4"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send, other) == "t5"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send, hubuser) == "t4"
    assert len(realm.seen) == 5


def test_a_repository_remembers_its_token_per_login(realm, transport):
    tokens = Tokens()
    send = as_alias(transport)
    hubuser = Credential("hubuser", "hubpass")
    alpine = Repository(HUB, "library/alpine")
    tokens.fetch(BUSYBOX, hub_challenge(realm), send)
    tokens.fetch(BUSYBOX, hub_challenge(realm), send, hubuser)
    assert tokens.for_repository(BUSYBOX) == "t1"
    assert tokens.for_repository(BUSYBOX, hubuser.fingerprint) == "t2"
    assert tokens.for_repository(alpine) is None
    tokens.forget(BUSYBOX, hubuser.fingerprint)
    assert tokens.for_repository(BUSYBOX, hubuser.fingerprint) is None
    assert tokens.for_repository(BUSYBOX) == "t1"
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send, hubuser) == "t3"
    tokens.forget(alpine)  # nothing to forget
    assert tokens.for_repository(BUSYBOX) == "t1"


def test_a_realm_that_is_briefly_unavailable_is_asked_again(realm, transport):
    answers = iter([(503, {}, b""), issued("t")])
    realm.answer = lambda h: next(answers)
    assert Tokens().fetch(BUSYBOX, hub_challenge(realm), as_alias(transport)) == "t"
    assert len(realm.seen) == 2


def test_a_login_is_never_sent_to_a_plain_http_realm_of_a_path_named_registry(realm, transport):
    challenge = Challenge("bearer", {"realm": f"http://{HOST}:{realm.server.port}/token"})
    login = Credential("hubuser", "hubpass")
    error = error_of(Tokens().fetch, BUSYBOX, challenge, as_alias(transport), login)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == (
        "upstream registry docker.io named a token realm that is not HTTPS; its login is not "
        "sent there"
    )
    assert error.detail == {"registry": "docker.io"}
    assert realm.seen == []


def test_plain_http_realms_are_asked_without_a_login_or_for_an_alias(scripted, transport):
    """Only the login is kept from plain HTTP: anonymous tokens, and an alias the operator
    named, may use it (the scripted upstream on plain HTTP is the realm here)."""
    scripted.routes["GET", "/token"] = lambda h: issued("plain")
    challenge = Challenge("bearer", {"realm": f"{scripted.url}/token"})
    alias = Repository(Registry("corp", scripted.url, trusted=True), "team/app")
    login = Credential("corp", "pass")
    assert Tokens().fetch(BUSYBOX, challenge, as_alias(transport)) == "plain"
    assert Tokens().fetch(alias, challenge, transport.send, login) == "plain"
    assert [h.get("Authorization") for _m, _p, h in scripted.seen] == [None, login.basic()]


def test_a_forgotten_token_is_not_found_through_another_repository(realm, transport):
    """Two repositories whose challenges name the same scope share a token; one that forgot
    it does not take it up again when the other fetches it anew."""
    tokens = Tokens()
    send = as_alias(transport)
    alpine = Repository(HUB, "library/alpine")
    assert tokens.fetch(BUSYBOX, hub_challenge(realm), send) == "t1"
    tokens.forget(BUSYBOX)
    assert tokens.for_repository(BUSYBOX) is None
    assert tokens.fetch(alpine, hub_challenge(realm), send) == "t2"
    assert tokens.for_repository(alpine) == "t2"
    assert tokens.for_repository(BUSYBOX) is None


def in_process_realm(asked: list[str]) -> Callable[..., requests.Response]:
    """A token service answered in the process (no socket): each ask is recorded by scope
    and answered with a token named after it, so thousands of asks take milliseconds."""

    def send(registry: Registry, method: str, url: str, **kwargs: Any) -> requests.Response:
        scope = kwargs["params"]["scope"]
        asked.append(scope)
        body = json.dumps({"token": f"t-{len(asked)}", "expires_in": 3600}).encode()
        raw = urllib3.HTTPResponse(
            body=io.BytesIO(body),
            headers={"Content-Length": str(len(body)), "Content-Type": "application/json"},
            status=200,
            preload_content=False,
        )
        response = requests.Response()
        response.status_code, response.raw, response.url = 200, raw, url
        response.headers = requests.structures.CaseInsensitiveDict(raw.headers)
        return response

    return send


def challenge_for(scope: str) -> Challenge:
    found = choose(
        [f'Bearer realm="https://{HOST}/token",service="registry.docker.io",scope="{scope}"']
    )
    assert found is not None
    return found


@pytest.mark.parametrize(("scopes", "first_asked_again"), [(1024, False), (1025, True)])
def test_1024_tokens_are_kept_and_no_more(scopes, first_asked_again):
    asked: list[str] = []
    tokens, send = Tokens(), in_process_realm(asked)
    for n in range(scopes):
        tokens.fetch(BUSYBOX, challenge_for(f"repository:team/app{n}:pull"), send)
    tokens.fetch(BUSYBOX, challenge_for("repository:team/app0:pull"), send)
    assert len(asked) == scopes + first_asked_again


@pytest.mark.parametrize(("repositories", "first_remembered"), [(1024, True), (1025, False)])
def test_1024_repositories_remember_their_token_and_no_more(repositories, first_remembered):
    asked: list[str] = []
    tokens, send = Tokens(), in_process_realm(asked)
    for n in range(repositories):
        tokens.fetch(Repository(HUB, f"team/app{n}"), challenge_for(SCOPE), send)
    assert asked == [SCOPE]  # one token for them all: the scope is the challenge's
    remembered = tokens.for_repository(Repository(HUB, "team/app0"))
    assert remembered == ("t-1" if first_remembered else None)
