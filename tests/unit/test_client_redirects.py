"""Where the registry sends its clients: never to a link-local address, for blobs as for
manifests, and for a registry named in a path only to public ones.

The real handler over an in-memory bucket and a scripted upstream on 127.0.0.1 (aliased
`stub`): the HTTP edge to the upstream is the subject. The network is cut down to loopback
and the test's own name table: a `Location` that slipped through would be answered, but
nothing would be sent anywhere.
"""

from __future__ import annotations

import json

import pytest

import app
from ociwrap.names.reference import Registry, Repository
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream import connection, guard
from ociwrap.upstream.fetch import Fetcher
from ociwrap.upstream.transport import Transport
from ociwrap_local.events import LocalContext, build_event, decode_result
from scripted_upstream import digest_of, handler_on_stub

BASE_LAYER = digest_of(b"layer of team/base")
WRAPPER_LAYER = digest_of(b"layer of team/wrapper")
WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"

#: Upstream redirects that would send a client to its own metadata endpoint.
METADATA_TARGETS = [
    "http://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://0251.0376.0251.0376/latest/meta-data/",
    "http://169.254.169.254./latest/meta-data/",
    "http://registry.example.com@169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[fe80::1%25eth0]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://meta.attacker.example/latest/meta-data/",  # resolves to 169.254.169.254
]


#: The same, for redirects followed here.
FOLLOWED_TARGETS = [
    "https://169.254.169.254/latest/meta-data/",
    "http://2852039166/latest/meta-data/",
    "http://[64:ff9b::a9fe:a9fe]/latest/meta-data/",
    "http://[fe80::1%25eth0]/latest/meta-data/",
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://meta.attacker.example/latest/meta-data/",
]


@pytest.fixture
def names(dns) -> dict[str, list[str]]:
    dns["meta.attacker.example"] = ["93.184.215.14", "169.254.169.254"]
    dns["cdn.example.com"] = ["93.184.215.14"]
    dns["minio.corp.example"] = ["10.0.0.7"]
    return dns


@pytest.fixture
def call(monkeypatch, scripted, loopback_only, names, on_doubles):
    """`call(method, path)` -> (status, headers with lower-case names, body), through the
    real handler; the scripted upstream is `stub`."""
    handler_on_stub(monkeypatch, scripted)
    on_doubles()

    def call(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
        event = build_event(method, path, [("Accept", OCI_MANIFEST)], b"")
        status, pairs, body = decode_result(app.lambda_handler(event, LocalContext()))
        return status, {name.lower(): value for name, value in pairs}, body

    return call


def redirect_blob(scripted, repository: str, digest: str, target: str) -> None:
    """The upstream answers GET and HEAD of the blob with a 307 to `target`."""
    for method in ("GET", "HEAD"):
        scripted.routes[method, f"/v2/{repository}/blobs/{digest}"] = lambda h: (
            307,
            {"Location": target},
            b"",
        )


def assert_denied(answer: tuple[int, dict[str, str], bytes], *words: str) -> str:
    """A 403 DENIED spec error without a `Location`; its message."""
    status, headers, body = answer
    assert status == 403, (status, headers, body)
    assert "location" not in headers
    assert headers["content-type"].startswith("application/json")
    error = json.loads(body)["errors"][0]
    assert error["code"] == "DENIED"
    assert "/latest/meta-data" not in body.decode()
    for word in words:
        assert word in error["message"], error["message"]
    return error["message"]


@pytest.mark.parametrize("target", METADATA_TARGETS)
def test_a_proxied_blob_is_never_redirected_to_link_local(call, scripted, loopback_only, target):
    redirect_blob(scripted, "team/base", BASE_LAYER, target)
    message = assert_denied(
        call("GET", f"/v2/stub/team/base/blobs/{BASE_LAYER}"), "stub", BASE_LAYER, "link-local"
    )
    assert message.startswith(f"upstream registry stub redirected blob {BASE_LAYER} to ")
    assert loopback_only == []


@pytest.mark.parametrize(
    ("layer", "repository"), [(BASE_LAYER, "base"), (WRAPPER_LAYER, "wrapper")]
)
@pytest.mark.parametrize("target", METADATA_TARGETS[:4] + METADATA_TARGETS[-1:])
def test_a_wrapped_names_layers_are_never_redirected_to_link_local(
    call, scripted, loopback_only, layer, repository, target
):
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/latest")
    assert status == 200, body
    assert layer in body.decode()
    redirect_blob(scripted, f"team/{repository}", layer, target)
    assert_denied(call("GET", f"/v2/{WRAP}/blobs/{layer}"), "link-local")
    assert loopback_only == []


def test_a_polite_redirect_is_still_handed_on(call, scripted):
    """The control: a signed URL on a public name reaches the client as it came."""
    signed = "https://cdn.example.com/blobs/abc?X-Amz-Signature=s"
    redirect_blob(scripted, "team/base", BASE_LAYER, signed)
    status, headers, _ = call("GET", f"/v2/stub/team/base/blobs/{BASE_LAYER}")
    assert (status, headers["location"]) == (307, signed)
    status, headers, _ = call("GET", f"/v2/{WRAP}/manifests/latest")
    assert status == 200
    redirect_blob(scripted, "team/wrapper", WRAPPER_LAYER, "http://10.0.0.5:9000/b/l?sig=1")
    status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{WRAPPER_LAYER}")
    assert (status, headers["location"]) == (307, "http://10.0.0.5:9000/b/l?sig=1")  # an alias


@pytest.mark.parametrize("target", FOLLOWED_TARGETS)
@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_manifest_redirects_are_followed_here_through_the_guard(
    call, scripted, loopback_only, method, target
):
    """Manifests are never answered with a redirect: the registry follows the upstream's
    itself, and the connection guard refuses the address before a packet is sent."""
    for verb in ("GET", "HEAD"):
        scripted.routes[verb, "/v2/team/base/manifests/1"] = lambda h: (
            302,
            {"Location": target},
            b"",
        )
    status, headers, body = call(method, "/v2/stub/team/base/manifests/1")
    assert (status, "location" in headers) == (403, False)
    if method == "GET":
        assert json.loads(body)["errors"][0]["code"] == "DENIED"
    assert loopback_only == []


def test_a_blob_head_follows_the_redirect_here_through_the_guard(call, scripted, loopback_only):
    redirect_blob(scripted, "team/base", BASE_LAYER, FOLLOWED_TARGETS[0])
    status, headers, _ = call("HEAD", f"/v2/stub/team/base/blobs/{BASE_LAYER}")
    assert (status, "location" in headers) == (403, False)
    assert loopback_only == []


# -- a registry named in a path: public addresses only ----------------------------------------

PRIVATE_TARGETS = [
    ("http://10.0.0.5:9000/bucket/blob", "not a public address"),
    ("http://192.168.1.10/blob", "not a public address"),
    ("http://127.0.0.1:8080/blob", "not a public address"),
    ("http://2130706433/blob", "not a public address"),
    ("http://localhost:8080/blob", "local resolver"),
    ("http://minio/blob", "local resolver"),
    ("http://minio.corp.example/blob", "not a public address"),  # resolves to 10.0.0.7
]


@pytest.fixture
def public_stand_in(monkeypatch, scripted):
    """The scripted upstream as a registry named in a path (address policy PUBLIC): the
    connection guard lets this one loopback address through, nothing else changes."""
    monkeypatch.setattr(
        connection,
        "allows",
        lambda policy, address: address == "127.0.0.1" or guard.allows(policy, address),
    )
    return Repository(Registry("registry.example.com", scripted.url), "team/base")


@pytest.mark.parametrize(("target", "why"), PRIVATE_TARGETS)
def test_a_path_named_registry_may_not_send_clients_inside(
    scripted, loopback_only, names, public_stand_in, target, why
):
    redirect_blob(scripted, "team/base", BASE_LAYER, target)
    with pytest.raises(RegistryError) as caught:
        Fetcher(Transport()).blob(public_stand_in, BASE_LAYER)
    assert (caught.value.code, caught.value.status) == ("DENIED", 403)
    assert why in caught.value.message and "registry.example.com" in caught.value.message
    alias = Repository(Registry("stub", scripted.url, trusted=True), "team/base")
    assert Fetcher(Transport()).blob(alias, BASE_LAYER).location == target
    assert loopback_only == []


def test_a_path_named_registry_may_send_clients_to_public_names(
    scripted, loopback_only, names, public_stand_in
):
    signed = "https://cdn.example.com/blobs/abc?X-Amz-Signature=s"
    redirect_blob(scripted, "team/base", BASE_LAYER, signed)
    assert Fetcher(Transport()).blob(public_stand_in, BASE_LAYER).location == signed
