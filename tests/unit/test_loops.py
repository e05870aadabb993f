"""No request loops, through the real handler: every upstream request carries this
registry's `Via` entry, a request that carries it back is refused, names and aliases of
this registry itself are refused, and one client request causes a stated number of
upstream requests (retries stay at the first hop).

An in-memory bucket, a scripted upstream on 127.0.0.1 aliased `stub` (see `handler_on_stub`).
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import app
from ociwrap.runtime import hops
from ociwrap_local.events import LocalContext, build_event
from scripted_upstream import Scripted, digest_of, handler_on_stub

OWN = hops.own_name(None, "unit-bucket")  # no PUBLIC_HOSTNAME: the bucket's pseudonym
MARKER = f"1.1 {OWN} (ociwrap)"
Call = Callable[..., dict]


@pytest.fixture
def call(monkeypatch, scripted, loopback_only, dns, on_doubles) -> Call:
    """The handler on `stub`; `call(method, path, headers=(), body=None, **env)` (a changed
    environment builds the service again). Connections reach loopback only and no name is
    looked up (`dns`), so a name that got through sends nothing anywhere."""
    handler_on_stub(monkeypatch, scripted)
    on_doubles()  # the bucket in memory, the upstream over HTTP

    def call(method: str, path: str, headers=(), body=None, **env: str) -> dict:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if env:
            app.reset_service()
        data = json.dumps(body).encode() if body is not None else b""
        event = build_event(method, path, list(headers), data)
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


def error_of(result: dict) -> dict:
    return json.loads(result["body"])["errors"][0]


def wanting_a_token(scripted: Scripted) -> list[str]:
    """Make `team/base` want a Bearer token from the scripted `/token` realm."""
    issued: list[str] = []
    challenge = f'Bearer realm="{scripted.url}/token",service="stub"'
    for key, route in list(scripted.routes.items()):
        if "/v2/team/base/" in key[1]:

            def guarded(handler, route=route):
                if handler.headers.get("Authorization") != "Bearer t1":
                    return 401, {"WWW-Authenticate": challenge}, b""
                return route(handler)

            scripted.routes[key] = guarded

    def token(handler):
        issued.append("t1")
        return 200, {"Content-Type": "application/json"}, b'{"token": "t1"}'

    scripted.routes["GET", "/token"] = token
    return issued


def test_every_upstream_request_carries_the_hop_marker(call, scripted):
    layer = digest_of(b"layer of team/base")
    scripted.routes["GET", "/v2/team/base/tags/list"] = lambda h: (
        200,
        {"Content-Type": "application/json"},
        b'{"name": "team/base", "tags": ["1"]}',
    )
    issued = wanting_a_token(scripted)
    assert call("GET", "/v2/stub/team/base/manifests/1")["statusCode"] == 200
    assert call("GET", f"/v2/stub/team/base/blobs/{layer}")["statusCode"] == 307
    assert call("GET", "/v2/stub/team/base/tags/list")["statusCode"] == 200
    assert issued
    paths = {path.split("?")[0] for _method, path, _headers in scripted.seen}
    assert {
        "/v2/team/base/manifests/1",
        f"/v2/team/base/blobs/{layer}",
        "/v2/team/base/tags/list",
        "/token",
    } <= paths
    assert {headers.get("Via") for _method, _path, headers in scripted.seen} == {MARKER}


def test_a_request_carrying_our_marker_is_refused_before_anything_else(call, scripted):
    result = call("GET", "/v2/stub/team/base/manifests/1", [("Via", f"1.1 proxy, {MARKER}")])
    assert result["statusCode"] == 403
    error = error_of(result)
    assert error["code"] == "DENIED"
    assert error["message"].startswith("request loop:") and OWN in error["message"]
    assert MARKER in result["headers"]["Via"]  # so the registry that sent it sees a loop
    assert scripted.seen == []


def test_another_registrys_marker_is_passed_on_with_ours(call, scripted):
    other = "1.1 mirror.example.com (ociwrap)"
    result = call("GET", "/v2/stub/team/base/manifests/1", [("Via", f"1.0 squid, {other}")])
    assert result["statusCode"] == 200
    assert {h.get("Via") for _m, _p, h in scripted.seen} == {f"{other}, {MARKER}"}


def test_an_answer_carrying_our_marker_back_is_a_loop(call, scripted):
    """What the first hop sees when its request came back: the refusal's `Via` names it."""
    for method in ("GET", "HEAD"):
        scripted.routes[method, "/v2/team/base/manifests/1"] = lambda h: (
            403,
            {"Via": h.headers["Via"]},
            b"",
        )
    result = call("GET", "/v2/stub/team/base/manifests/1")
    assert result["statusCode"] == 403
    assert error_of(result)["message"].startswith("request loop")
    assert len(scripted.seen) == 1  # refused, not retried and not asked again with a GET


def _always(scripted: Scripted, status: int, path: str) -> None:
    for method in ("GET", "HEAD"):
        scripted.routes[method, path] = lambda h: (status, {}, b"")


@pytest.mark.parametrize(
    ("forwarded", "manifest_requests", "blob_requests"),
    [(False, 6, 3), (True, 2, 1)],
    ids=["from a client", "through another ociwrap"],
)
def test_a_failing_upstream_gets_a_stated_number_of_requests(
    call, scripted, forwarded, manifest_requests, blob_requests
):
    """The worst case of a pull of a proxied name, an upstream that answers 503 to
    everything: a manifest by tag is a HEAD and a GET, each tried 3 times; a blob one GET
    tried 3 times. A request that came through another ociwrap registry is tried once:
    its first hop retries, so retries do not multiply along a chain."""
    blob = "sha256:" + "0" * 64
    _always(scripted, 503, "/v2/team/down/manifests/1")
    _always(scripted, 503, f"/v2/team/down/blobs/{blob}")
    headers = [("Via", "1.1 edge.example.com (ociwrap)")] if forwarded else []
    assert call("GET", "/v2/stub/team/down/manifests/1", headers)["statusCode"] == 502
    assert len(scripted.requests_to("/manifests/")) == manifest_requests
    assert [m for m, _p, _h in scripted.requests_to("/manifests/")].count("HEAD") == (
        manifest_requests // 2
    )
    assert call("GET", f"/v2/stub/team/down/blobs/{blob}", headers)["statusCode"] == 502
    assert len(scripted.requests_to("/blobs/")) == blob_requests


@pytest.mark.parametrize(
    ("forwarded", "token_requests"),
    [(False, 3), (True, 1)],
    ids=["from a client", "through another ociwrap"],
)
def test_a_failing_token_service_gets_a_stated_number_of_requests(
    call, scripted, forwarded, token_requests
):
    """An upstream that wants a token from a realm that answers 503: the HEAD, then the
    token request tried 3 times (once through another ociwrap); the pull fails there."""
    challenge = f'Bearer realm="{scripted.url}/token",service="stub"'
    for method in ("GET", "HEAD"):
        scripted.routes[method, "/v2/team/down/manifests/1"] = lambda h: (
            401,
            {"WWW-Authenticate": challenge},
            b"",
        )
    scripted.routes["GET", "/token"] = lambda h: (503, {}, b"")
    headers = [("Via", "1.1 edge.example.com (ociwrap)")] if forwarded else []
    assert call("GET", "/v2/stub/team/down/manifests/1", headers)["statusCode"] == 502
    assert [(m, p.split("?")[0]) for m, p, _h in scripted.seen] == [
        ("HEAD", "/v2/team/down/manifests/1"),
        *[("GET", "/token")] * token_requests,
    ]


@pytest.mark.parametrize(
    "path",
    [
        "/v2/registry.example.com/library/busybox/manifests/1",
        "/v2/registry.example.com/registry.example.com/library/busybox/manifests/1",
        "/v2/registry.example.com/team/app/tags/list",
        "/v2/wrap/registry.example.com/team/base/1/with/stub/team/wrapper/1/manifests/latest",
        "/v2/wrap/stub/team/base/1/with/registry.example.com/w/1/manifests/latest",
    ],
)
def test_a_name_on_our_own_host_is_refused(call, scripted, loopback_only, path):
    result = call("GET", path, PUBLIC_HOSTNAME="registry.example.com")
    assert result["statusCode"] == 403
    error = error_of(result)
    assert error["code"] == "DENIED"
    assert "request loop" in error["message"] and "registry.example.com" in error["message"]
    assert scripted.seen == [] and loopback_only == []


def test_a_token_for_an_image_on_our_own_host_is_refused(call, scripted):
    body = {"image": "registry.example.com/team/base:1", "wrappers": ["stub/team/wrapper:1"]}
    result = call("POST", "/v1alpha/tokens", body=body, PUBLIC_HOSTNAME="registry.example.com")
    assert result["statusCode"] == 403
    assert "request loop" in error_of(result)["message"]


def test_an_alias_to_ourselves_does_not_start(call, scripted):
    result = call(
        "GET",
        "/v2/self/team/base/manifests/1",
        PUBLIC_HOSTNAME="registry.example.com",
        REGISTRY_ALIASES="self=https://registry.example.com",
    )
    assert result["statusCode"] == 503
    message = error_of(result)["message"]
    assert "REGISTRY_ALIASES" in message and "fetch from itself" in message
    assert scripted.seen == []


def test_images_of_other_hosts_still_compose(call, scripted):
    """The rules above take nothing from an ordinary pull (one wrap of `stub` images)."""
    result = call(
        "GET",
        "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1/manifests/latest",
        PUBLIC_HOSTNAME="registry.example.com",
    )
    assert result["statusCode"] == 200
    assert {h.get("Via") for _m, _p, h in scripted.seen} == {"1.1 registry.example.com (ociwrap)"}
