"""The upstream client against a scripted registry on 127.0.0.1 (real HTTP, odd answers).

The harness's docker-registry never misbehaves; these cases need an upstream that does:
wrong bytes for a digest, relative redirects, rate limits, HEADs without a length.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ociwrap.errors import RegistryError
from ociwrap.reference import Registry, Repository
from ociwrap.upstream import Upstream

MANIFEST = json.dumps(
    {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json"}
).encode()
DIGEST = "sha256:" + hashlib.sha256(MANIFEST).hexdigest()
OCI = ["application/vnd.oci.image.manifest.v1+json"]

Route = Callable[[BaseHTTPRequestHandler], tuple[int, dict[str, str], bytes]]


class Scripted:
    """A registry whose answers a test writes: {(method, path): route}, with a request log."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.seen: list[tuple[str, str, str]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self) -> None:
                path = self.path.split("?")[0]
                scripted.seen.append(
                    (self.command, self.path, self.headers.get("Authorization", ""))
                )
                route = scripted.routes.get((self.command, path))
                status, headers, body = route(self) if route else (404, {}, b"")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                if "Content-Length" not in headers and not callable(body):
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    if callable(body):  # a route that streams (and stalls) itself
                        body(self.wfile)
                    else:
                        self.wfile.write(body)

            do_GET = do_HEAD = answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    yield server
    server.stop()


@pytest.fixture
def repo(scripted: Scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


def test_manifest_bytes_that_do_not_match_the_digest_are_refused(scripted, repo):
    scripted.routes["GET", f"/v2/team/app/manifests/{DIGEST}"] = lambda h: (
        200,
        {"Content-Type": OCI[0]},
        MANIFEST + b" ",
    )
    with pytest.raises(RegistryError) as caught:
        Upstream().get_manifest(repo, DIGEST, OCI)
    assert caught.value.status == 502
    assert "stub" in caught.value.message and DIGEST in caught.value.message


def test_bearer_token_is_fetched_once_and_reused(scripted, repo):
    tokens = []

    def manifest(handler):
        if handler.headers.get("Authorization") != "Bearer t1":
            challenge = (
                f'Bearer realm="{scripted.url}/token",service="stub",'
                'scope="repository:team/app:pull"'
            )
            return 401, {"WWW-Authenticate": challenge}, b""
        return 200, {"Content-Type": OCI[0]}, MANIFEST

    def token(handler):
        tokens.append(handler.path)
        return 200, {"Content-Type": "application/json"}, b'{"token": "t1", "expires_in": 300}'

    scripted.routes["GET", "/v2/team/app/manifests/1"] = manifest
    scripted.routes["GET", "/token"] = token
    upstream = Upstream()
    for _ in range(3):
        assert upstream.get_manifest(repo, "1", OCI).digest == DIGEST
    assert len(tokens) == 1
    assert "scope=repository%3Ateam%2Fapp%3Apull" in tokens[0] and "service=stub" in tokens[0]
    # after the first exchange, requests carry the token straight away (no 401 round trip)
    manifest_requests = [s for s in scripted.seen if "/manifests/" in s[1]]
    assert [auth for _m, _p, auth in manifest_requests] == [
        "",
        "Bearer t1",
        "Bearer t1",
        "Bearer t1",
    ]


def test_relative_blob_redirect_is_made_absolute(scripted, repo):
    blob = "sha256:" + "1" * 64
    scripted.routes["GET", f"/v2/team/app/blobs/{blob}"] = lambda h: (
        307,
        {"Location": "/cdn/blob?sig=abc"},
        b"<html>redirect body that must not be passed on</html>",
    )
    answer = Upstream().get_blob(repo, blob)
    assert answer.location == f"{scripted.url}/cdn/blob?sig=abc"
    assert answer.response is None


def test_rate_limit_is_passed_on_as_429(scripted, repo):
    scripted.routes["HEAD", "/v2/team/app/manifests/1"] = lambda h: (429, {}, b"")
    with pytest.raises(RegistryError) as caught:
        Upstream().head_manifest(repo, "1", OCI)
    assert (caught.value.code, caught.value.status) == ("TOOMANYREQUESTS", 429)


def test_head_without_digest_is_not_trusted(scripted, repo):
    scripted.routes["HEAD", "/v2/team/app/manifests/1"] = lambda h: (
        200,
        {"Content-Type": OCI[0]},
        MANIFEST,
    )
    assert Upstream().head_manifest(repo, "1", OCI) is None


def test_upstream_5xx_is_a_502_naming_the_upstream(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (500, {}, b"boom")
    with pytest.raises(RegistryError) as caught:
        Upstream().get_manifest(repo, "1", OCI)
    assert caught.value.status == 502
    assert "upstream registry stub answered 500" in caught.value.message


def test_slow_upstream_is_a_504_naming_it(scripted, repo):
    def slow(handler):
        time.sleep(1.0)
        return 200, {"Content-Type": OCI[0]}, MANIFEST

    scripted.routes["GET", "/v2/team/app/manifests/1"] = slow
    with pytest.raises(RegistryError) as caught:
        Upstream(read_timeout=0.2).get_manifest(repo, "1", OCI)
    assert (caught.value.code, caught.value.status) == ("UNAVAILABLE", 504)
    assert "stub timed out" in caught.value.message


def stall_after(data: bytes) -> Callable:
    """A body that sends `data`, then stops sending without closing."""

    def write(wfile) -> None:
        wfile.write(data)
        wfile.flush()
        time.sleep(1.0)

    return write


def test_body_that_stalls_is_a_504(scripted, repo):
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        200,
        {"Content-Type": OCI[0], "Content-Length": str(len(MANIFEST))},
        stall_after(MANIFEST[:5]),
    )
    with pytest.raises(RegistryError) as caught:
        Upstream(read_timeout=0.2).get_manifest(repo, "1", OCI)
    assert caught.value.status == 504
    assert "stub timed out while sending a body" in caught.value.message


def test_blob_copy_that_stalls_leaves_nothing_in_the_bucket(scripted, repo, monkeypatch):
    """A byte-serving upstream that stalls mid-layer: 504, and no blob becomes visible."""
    import boto3
    from moto import mock_aws

    from ociwrap.proxy import ProxyService
    from ociwrap.store import Store, make_s3_client

    for name, value in {"AWS_ACCESS_KEY_ID": "t", "AWS_SECRET_ACCESS_KEY": "t"}.items():
        monkeypatch.setenv(name, value)
    layer = b"x" * 4096
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    scripted.routes["GET", f"/v2/team/app/blobs/{digest}"] = lambda h: (
        200,
        {"Content-Length": str(len(layer))},
        stall_after(layer[:100]),
    )
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="unit-bucket")
        store = Store(make_s3_client(region="us-east-1"), "unit-bucket")
        proxy = ProxyService(store, Upstream(read_timeout=0.2), presign_ttl_seconds=60)
        with pytest.raises(RegistryError) as caught:
            proxy.blob(repo, digest, head=False)
        assert caught.value.status == 504
        assert store.blob_size(digest) is None
        listing = store.s3.list_objects_v2(Bucket="unit-bucket")
        assert listing.get("KeyCount", 0) == 0
