"""UPSTREAM_ALLOW through the real handler: proxied names, wrap bases and wrappers and
container tokens reach only the upstream repositories it allows; whatever else they name
is `403 DENIED` naming the setting, before any upstream is asked or anything stored is
served.

An in-memory bucket and an in-memory upstream aliased `stub` (see `handler_on_memory`):
`stub/team/base` and `stub/team/wrapper`; the network is off.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import app
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream, digest_of
from ociwrap.image.recipes import Recipe
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.registry.admission import Admission
from ociwrap.runtime.errors import RegistryError
from ociwrap_local.events import LocalContext, build_event

LAYER = digest_of(b"layer of team/base")
WRAP = "/v2/wrap/stub/team/base/1/with/stub/team/wrapper/1"
Call = Callable[..., dict]


@pytest.fixture
def upstream() -> MemoryUpstream:
    return MemoryUpstream()


@pytest.fixture
def call(monkeypatch, upstream, no_network, on_doubles) -> Call:
    """The handler on `stub`; `call(method, path, body=None, **env)` (a changed
    environment builds the service again, over the same bucket and upstream). No
    connection or lookup leaves (`no_network`): a name that got through sends nothing."""
    handler_on_memory(monkeypatch, upstream)
    monkeypatch.delenv("UPSTREAM_ALLOW", raising=False)
    on_doubles(upstream=upstream)

    def call(method: str, path: str, body=None, **env: str) -> dict:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        if env:
            app.reset_service()
        data = json.dumps(body).encode() if body is not None else b""
        event = build_event(method, path, [("Host", "registry.example.com")], data)
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


def refusal(result: dict) -> str:
    """The message of a `403 DENIED` (a HEAD's is empty: it has no body)."""
    assert result["statusCode"] == 403, result
    if not result["body"]:
        return ""
    error = json.loads(result["body"])["errors"][0]
    assert error["code"] == "DENIED"
    return error["message"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/stub/team/base/manifests/1"),
        ("HEAD", "/v2/stub/team/base/manifests/1"),
        ("GET", f"/v2/stub/team/base/manifests/{'sha256:' + '1' * 64}"),
        ("GET", f"/v2/stub/team/base/blobs/{LAYER}"),
        ("HEAD", f"/v2/stub/team/base/blobs/{LAYER}"),
        ("GET", "/v2/stub/team/base/tags/list"),
        ("GET", f"/v2/stub/team/base/referrers/{'sha256:' + '1' * 64}"),
    ],
)
def test_a_proxied_name_it_does_not_allow_is_refused_unasked(call, upstream, method, path):
    message = refusal(call(method, path, UPSTREAM_ALLOW="stub/team/wrapper"))
    if method == "GET":
        assert "UPSTREAM_ALLOW" in message and "stub/team/base" in message
    assert upstream.calls == []


def test_a_proxied_name_it_allows_is_pulled(call, upstream):
    allow = "docker.io/library/*,stub/team/*"
    assert call("GET", "/v2/stub/team/base/manifests/1", UPSTREAM_ALLOW=allow)["statusCode"] == 200
    assert call("GET", f"/v2/stub/team/base/blobs/{LAYER}")["statusCode"] == 307


def test_docker_hub_names_are_matched_after_resolution(call, upstream, no_network):
    """`busybox` is `docker.io/library/busybox`: refused by a pattern for `stub` alone,
    without a lookup or a connection anywhere."""
    for path in ("/v2/busybox/manifests/1", "/v2/library/busybox/manifests/1"):
        message = refusal(call("GET", path, UPSTREAM_ALLOW="stub"))
        assert "docker.io/library/busybox" in message
    assert upstream.calls == [] and no_network == []


@pytest.mark.parametrize(
    ("allow", "refused"),
    [("stub/team/base", "wrapper image stub/team/wrapper"), ("stub/**/wrapper", "base image")],
)
def test_a_wrapped_name_needs_its_base_and_wrapper_allowed(call, upstream, allow, refused):
    message = refusal(call("GET", f"{WRAP}/manifests/latest", UPSTREAM_ALLOW=allow))
    assert refused in message and "UPSTREAM_ALLOW" in message
    assert upstream.calls == []
    assert call("GET", f"{WRAP}/manifests/latest", UPSTREAM_ALLOW="stub/team/**")["statusCode"] == (
        200
    )


def test_what_was_composed_before_is_not_served_once_refused(call, upstream):
    """A composition in the bucket, its blobs and tags are all behind the same check."""
    composed = call("GET", f"{WRAP}/manifests/latest")
    assert composed["statusCode"] == 200
    digest = composed["headers"]["Docker-Content-Digest"]
    seen = len(upstream.calls)
    for method, path in [
        ("GET", f"{WRAP}/manifests/{digest}"),
        ("GET", f"{WRAP}/blobs/{LAYER}"),
        ("GET", f"{WRAP}/tags/list"),
    ]:
        assert "UPSTREAM_ALLOW" in refusal(call(method, path, UPSTREAM_ALLOW="stub/team/base"))
    assert len(upstream.calls) == seen


def test_a_container_token_names_only_allowed_images(call, upstream):
    body = {"image": "stub/team/base:1", "wrappers": ["stub/team/wrapper:1"]}
    message = refusal(call("POST", "/v1alpha/tokens", body=body, UPSTREAM_ALLOW="stub/team/base"))
    assert "wrapper image stub/team/wrapper" in message and "UPSTREAM_ALLOW" in message
    created = call("POST", "/v1alpha/tokens", body=body, UPSTREAM_ALLOW="stub/team/*")
    assert created["statusCode"] == 201
    image = json.loads(created["body"])["targetImage"].removeprefix("registry.example.com/")
    name, tag = image.rsplit(":", 1)
    assert call("GET", f"/v2/{name}/manifests/{tag}")["statusCode"] == 200
    seen = len(upstream.calls)
    # The setting changed since the token was made: its pulls are refused now.
    message = refusal(call("GET", f"/v2/{name}/manifests/{tag}", UPSTREAM_ALLOW="stub/team/base"))
    assert "wrapper image stub/team/wrapper" in message
    assert len(upstream.calls) == seen


def test_unset_allows_any_upstream(call, upstream):
    assert call("GET", f"{WRAP}/manifests/latest")["statusCode"] == 200
    assert call("GET", "/v2/stub/team/base/tags/list")["statusCode"] != 403


# -- the decision itself ------------------------------------------------------------------

HERE = "registry.example.com"


def denial(admit: Callable[[], object]) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        admit()
    assert (caught.value.status, caught.value.code) == (403, "DENIED")
    return caught.value


def test_a_repository_on_its_own_public_host_is_a_request_loop():
    looped = Repository(Registry(HERE, f"https://{HERE}"), "team/app")
    error = denial(lambda: Admission(None, HERE).repository(looped))
    assert error.message == (
        f"request loop: upstream repository {HERE}/team/app is on this registry's own host "
        f"({HERE}, PUBLIC_HOSTNAME); name the image where it lives"
    )
    assert error.detail == {"repository": f"{HERE}/team/app"}
    assert Admission(None, "other.example.com").repository(looped) is looped
    assert Admission(None, None).repository(looped) is looped


def test_an_alias_spelled_like_the_public_host_is_not_a_loop():
    alias = Repository(Registry(HERE, "http://127.0.0.1:5000", trusted=True), "team/app")
    assert Admission(None, HERE).repository(alias) is alias


def test_a_repository_the_allow_list_does_not_match_is_denied_naming_the_setting():
    repo = Repository(Registry("ghcr.io", "https://ghcr.io"), "acme/tool")
    admission = Admission(("ghcr.io/acme/tool",), HERE)
    assert admission.repository(repo) is repo
    error = denial(lambda: Admission(("ghcr.io/other/*",)).repository(repo, "wrapper image"))
    assert error.message == (
        "wrapper image ghcr.io/acme/tool is not allowed here: UPSTREAM_ALLOW lists the "
        "upstream repositories this registry may pull from"
    )
    assert error.detail == {"repository": "ghcr.io/acme/tool"}
    assert "ghcr.io/acme/tool" in denial(lambda: Admission(()).repository(repo)).message


def test_a_recipe_is_admitted_by_its_base_and_every_wrapper():
    ghcr = Registry("ghcr.io", "https://ghcr.io")
    base = ImageRef(Repository(ghcr, "acme/base"), tag="1")
    first = ImageRef(Repository(ghcr, "acme/first"), tag="1")
    second = ImageRef(Repository(ghcr, "acme/second"), tag="1")
    recipe = Recipe("wt/x/ghcr.io/acme/base", "token-x", base, (first, second))
    assert Admission(("ghcr.io/acme/*",)).recipe(recipe) is recipe
    error = denial(lambda: Admission(("ghcr.io/acme/base", "ghcr.io/acme/first")).recipe(recipe))
    assert error.message.startswith("wrapper image ghcr.io/acme/second is not allowed")
    error = denial(lambda: Admission(("ghcr.io/acme/first",)).recipe(recipe))
    assert error.message.startswith("base image ghcr.io/acme/base is not allowed")
