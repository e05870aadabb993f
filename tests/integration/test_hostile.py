"""The registry against a hostile upstream: every request ends in time with a spec JSON error.

`harness.hostile.HostileRegistry` (the session fixture `hostile`) misbehaves in one way
per scenario; the gateway reaches it through the alias `evil`, so `evil/<scenario>/app:1`
is a proxied image and `wrap/evil/<scenario>/app/1/with/evil/good/wrapper/1` a wrap
whose base reads go through the scenario. Every test uses a fresh scenario name
(`hostile.fresh(...)`): its own content digests, counters and mode, so caches and counts
of one test never leak into another.

The first tests talk to the hostile registry directly (they check the fixture itself);
the rest go through the gateway, black box, over HTTP: most share one gateway for the
module (`evil_gw`), those that need settings of their own (stale-if-error, workers,
mirror limit) start one each. Gateways get `REQUEST_TIMEOUT_SECONDS=3` so slow
scenarios cost seconds, not minutes. No test here times the gateway: one that does not
answer before API Gateway's 30 s cut fails (a later answer reaches no client), one that
gives up on an upstream says so in its spec error (a 504 naming the deadline, a 502
naming the limit), and the hostile registry tells whether the gateway hung up on the
answer it did not want (`assert_let_go`).
"""

from __future__ import annotations

import hashlib
import json
import socket
import subprocess
import time
import uuid
import zlib
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from harness.gateway import LocalGateway
from harness.hostile import (
    BIG_VARIANT,
    CRLF_TAG,
    LONG_VARIANT,
    METADATA,
    METADATA_SPELLINGS,
    HostileRegistry,
)
from harness.netns import isolated
from harness.tools import require

pytestmark = pytest.mark.integration

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ACCEPT = {
    "Accept": ",".join(
        [
            "application/vnd.oci.image.index.v1+json",
            OCI_MANIFEST,
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ]
    )
}
FAST = {"REQUEST_TIMEOUT_SECONDS": "3"}
CLIENT_TIMEOUT = 30.0  # API Gateway's cut: an answer after it would reach no client
LET_GO_SECONDS = 20.0  # a third of the minute a slow answer of the hostile registry lasts
MANIFEST_LIMIT = 4194304
CONFIG_LIMIT = 4194304
TOKEN_LIMIT = 65536
TAGS_LIMIT = 4194304
MIB = 1024 * 1024


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- talking to servers ------------------------------------------------------------------


def raw(
    base_url: str,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    limit: int = MIB,
    timeout: float = CLIENT_TIMEOUT,
) -> tuple[bytes, bytes]:
    """(status line + headers, up to `limit` body bytes) exactly as they came off the wire."""
    url = urlsplit(base_url)
    lines = [f"{method} {path} HTTP/1.1", f"Host: {url.netloc}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    with socket.create_connection((url.hostname, url.port), timeout=timeout) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        while len(body) < limit and method != "HEAD":
            chunk = sock.recv(min(65536, limit - len(body)))
            if not chunk:
                break
            body += chunk
    return head, body[:limit]


def header_lines(head: bytes) -> list[tuple[str, str]]:
    found = []
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        found.append((name.strip().lower(), value.strip()))
    return found


def assert_clean_head(head: bytes) -> None:
    """No header carries CR, LF or NUL, none is folded, none was injected."""
    lines = head.split(b"\r\n")
    for line in lines:
        assert not {0, 10, 13} & set(line), f"control character in response line {line!r}"
    for line in lines[1:]:
        assert not line.startswith((b" ", b"\t")), f"folded header line {line!r}"
        assert not line.lower().startswith(b"x-injected"), f"injected header {line!r}"


def describe(response: requests.Response) -> str:
    return f"{response.status_code} {dict(response.headers)} {response.text[:600]!r}"


def spec_error(response: requests.Response) -> dict:
    """The first error of a distribution-spec JSON error body (asserting it is one)."""
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/json", describe(response)
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError) as exc:
        raise AssertionError(f"not a spec error body: {describe(response)}") from exc
    assert isinstance(errors, list) and errors, describe(response)
    first = errors[0]
    assert isinstance(first.get("code"), str), describe(response)
    assert isinstance(first.get("message"), str), describe(response)
    return first


def assert_error(response: requests.Response, status: int, code: str, *words: str) -> dict:
    assert response.status_code == status, describe(response)
    error = spec_error(response)
    assert error["code"] == code, describe(response)
    for word in words:
        assert word in error["message"], describe(response)
    return error


def wrap_name(base: str, wrapper: str = "good", base_repo: str = "app") -> str:
    return f"wrap/evil/{base}/{base_repo}/1/with/evil/{wrapper}/wrapper/1"


def path_for(hostile: HostileRegistry, how: str, scenario: str, ref: str = "1") -> str:
    """The gateway path that makes the registry do `how` with `scenario`."""
    if how in ("pull", "head"):
        return f"/v2/evil/{scenario}/app/manifests/{ref}"
    if how == "wrap":
        return f"/v2/{wrap_name(scenario)}/manifests/latest"
    if how == "wrapper":
        return f"/v2/{wrap_name('good', scenario)}/manifests/latest"
    if how == "wrap-both":
        return f"/v2/{wrap_name(scenario, scenario)}/manifests/latest"
    if how == "tags":
        return f"/v2/evil/{scenario}/app/tags/list"
    if how == "blob":
        return f"/v2/evil/{scenario}/app/blobs/{hostile.image(scenario).layers[0].digest}"
    raise ValueError(how)


def ask(gw: LocalGateway, path: str, method: str = "GET") -> requests.Response:
    """One request to the gateway; no answer by API Gateway's 30 s cut is a failure."""
    try:
        return requests.request(
            method, gw.url + path, headers=ACCEPT, timeout=CLIENT_TIMEOUT, allow_redirects=False
        )
    except requests.Timeout:
        pytest.fail(f"{method} {path}: no answer within {CLIENT_TIMEOUT:.0f} s")


def drive(
    gw: LocalGateway, hostile: HostileRegistry, how: str, scenario: str, method: str = "GET"
) -> requests.Response:
    return ask(gw, path_for(hostile, how, scenario), "HEAD" if how == "head" else method)


def assert_let_go(hostile: HostileRegistry, scenario: str, *, hung_up: bool = True) -> None:
    """The gateway leaves the upstream alone once it has answered: every request it made
    in `scenario` ends, and (`hung_up`) one of them because the gateway hung up on it.

    A stalled or dripping answer of the hostile registry lasts a minute, an endless one a
    GiB: one that ends within `LET_GO_SECONDS` (generous: the gateway lets go at its
    deadline or its limit) ended because the gateway went away.
    """
    assert hostile.wait_until_served(scenario, LET_GO_SECONDS), (
        f"the gateway still reads {scenario} {LET_GO_SECONDS:.0f} s after its answer"
    )
    if hung_up:
        assert "hung up" in hostile.ends(scenario), hostile.ends(scenario)


# -- gateways ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def evil_gw(tmp_path_factory, moto_s3, upstream_aliases, hostile):
    """One gateway for the tests below that need no special settings (fresh scenario names
    keep them apart): aliases local/tok/redir/evil, REQUEST_TIMEOUT_SECONDS=3."""
    bucket = moto_s3.create_bucket(f"ociwrap-hostile-{uuid.uuid4().hex[:10]}")
    gw = LocalGateway(
        tmp_path_factory.mktemp("hostile-gateway"),
        s3_endpoint_url=moto_s3.endpoint_url,
        bucket=bucket,
        aliases={**upstream_aliases, "evil": hostile.url},
        extra_env=FAST,
    )
    gw.start()
    yield gw
    gw.stop()
    assert not gw.misdeeds(), gw.misdeeds()


@pytest.fixture
def evil_gateway(gateway, upstream_aliases, hostile):
    """`evil_gateway(**env)`: a gateway of its own (own bucket) with `evil` and FAST + env."""

    def start(**env: str) -> LocalGateway:
        return gateway(aliases={**upstream_aliases, "evil": hostile.url}, env={**FAST, **env})

    return start


# == the fixture itself (direct, no gateway) ==============================================


def test_fixture_serves_consistent_good_images(hostile):
    scenario = hostile.fresh("good")
    base, wrapper = hostile.image(scenario), hostile.image(scenario, "wrapper")
    url = f"{hostile.url}/v2/{scenario}"
    assert requests.get(f"{hostile.url}/v2/", timeout=5).status_code == 200

    get = requests.get(f"{url}/app/manifests/1", timeout=5)
    assert get.status_code == 200
    assert get.headers["Content-Type"] == OCI_MANIFEST
    assert sha256(get.content) == get.headers["Docker-Content-Digest"] == base.digest
    assert hostile.top(scenario).digest == base.digest
    head = requests.head(f"{url}/app/manifests/1", timeout=5)
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["Docker-Content-Digest"] == base.digest
    by_digest = requests.get(f"{url}/app/manifests/{base.digest}", timeout=5)
    assert by_digest.content == get.content

    config_digest = get.json()["config"]["digest"]
    config = requests.get(f"{url}/app/blobs/{config_digest}", timeout=5)
    assert sha256(config.content) == config_digest
    assert config.json()["rootfs"]["diff_ids"] == [layer.diff_id for layer in base.layers]
    layer = base.layers[0]
    assert sha256(requests.get(f"{url}/app/blobs/{layer.digest}", timeout=5).content) == (
        layer.digest
    )
    assert len(base.layers) == len(wrapper.layers) == 1
    wrapper_manifest = requests.get(f"{url}/wrapper/manifests/1", timeout=5).json()
    wrapper_config = requests.get(
        f"{url}/wrapper/blobs/{wrapper_manifest['config']['digest']}", timeout=5
    ).json()
    assert wrapper_config["config"]["Labels"]["org.goci.wrapper"] == "/wrapper/run.sh"

    big = requests.get(f"{url}/app/blobs/{hostile.big_digest}", timeout=5)
    assert big.headers["Content-Length"] == "5000" and sha256(big.content) == hostile.big_digest
    assert hostile.top(hostile.fresh("good")).digest != base.digest  # content per scenario

    tags = requests.get(f"{url}/app/tags/list", timeout=5).json()
    assert tags == {"name": f"{scenario}/app", "tags": ["1", "2", "latest"]}
    page = requests.get(f"{url}/app/tags/list?n=1", timeout=5)
    assert page.json()["tags"] == ["1"]
    assert page.headers["Link"] == f'</v2/{scenario}/app/tags/list?n=1&last=1>; rel="next"'
    assert requests.get(f"{hostile.url}/v2/nosuch/app/manifests/1", timeout=5).status_code == 404

    assert hostile.count("GET", "manifest", scenario) == 3
    assert hostile.count("HEAD", "manifest", scenario, ref="1") == 1
    assert hostile.counts()["GET", "config", scenario] == 2
    assert hostile.requests("GET", "tags", scenario)[-1].query == "n=1"
    assert hostile.requests("GET", "manifest", scenario)[0].header("accept") is not None


@pytest.mark.parametrize(
    "body",
    [
        "huge",
        "endless",
        "overdeclared",
        "bomb",
        "cut",
        "badlen-neg",
        "badlen-abc",
        "badlen-plus",
        "badlen-underscore",
        "badlen-two",
    ],
)
def test_fixture_bad_bodies(hostile, body):
    scenario = hostile.fresh(f"{body}-manifest")
    good = hostile.top(scenario).body
    head, data = raw(hostile.url, f"/v2/{scenario}/app/manifests/1", limit=4 * MIB + 1)
    assert head.startswith(b"HTTP/1.1 200")
    headers = header_lines(head)
    lengths = [value for name, value in headers if name == "content-length"]
    if body == "huge":
        assert lengths == [str(1024**3)] and data == b" " * (4 * MIB + 1)
    elif body == "endless":
        assert lengths == [] and ("transfer-encoding", "chunked") in headers
        assert data.startswith(b"10000\r\n    ") and len(data) == 4 * MIB + 1
    elif body == "overdeclared":
        assert lengths == [str(1024**3)] and data == good
    elif body == "bomb":
        assert ("content-encoding", "gzip") in headers and lengths == [str(len(data))]
        assert len(data) * 900 < 256 * MIB  # ~1000:1
        assert zlib.decompressobj(31).decompress(data, 8 * MIB) == b" " * (8 * MIB)
    elif body == "cut":
        assert lengths == [str(len(good))] and data == good[: len(good) // 2]
    else:
        expected = {
            "badlen-neg": ["-1"],
            "badlen-abc": ["abc"],
            "badlen-plus": ["+5"],
            "badlen-underscore": ["1_0"],
            "badlen-two": [str(len(good)), f"1{len(good)}"],
        }[body]
        assert lengths == expected and data == good


def test_fixture_each_read_can_misbehave(hostile):
    """`overdeclared-<read>` promises 1 GiB on that read only; the rest stays polite."""
    gib = str(1024**3)

    def length_of(path: str, method: str = "GET") -> tuple[bytes, str]:
        head, _ = raw(hostile.url, path, method)
        lengths = [value for name, value in header_lines(head) if name == "content-length"]
        return head.split(b"\r\n")[0], lengths[0]

    for read in ("manifest", "config", "blob", "tags", "error", "notfound"):
        scenario = hostile.fresh(f"overdeclared-{read}")
        base = hostile.image(scenario)
        paths = {
            "manifest": f"/v2/{scenario}/app/manifests/1",
            "config": f"/v2/{scenario}/app/blobs/{sha256(base.config_bytes())}",
            "blob": f"/v2/{scenario}/app/blobs/{base.layers[0].digest}",
            "tags": f"/v2/{scenario}/app/tags/list",
            "error": f"/v2/{scenario}/app/manifests/1",
            "notfound": f"/v2/{scenario}/app/manifests/1",
        }
        status, length = length_of(paths[read])
        assert length == gib, (read, status)
        expected_status = {"error": b"500", "notfound": b"404"}.get(read, b"200")
        assert status.split()[1] == expected_status
        _, head_length = length_of(paths["manifest"], "HEAD")
        assert head_length == str(len(base.manifest_bytes()))
        if read != "config":
            assert length_of(paths["config"])[1] == str(len(base.config_bytes()))

    scenario = hostile.fresh("overdeclared-token")
    challenge = requests.get(f"{hostile.url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert challenge.status_code == 401
    assert f'realm="{hostile.url}/token"' in challenge.headers["WWW-Authenticate"]
    status, length = length_of(f"/token?service=evil&scope=repository:{scenario}/app:pull")
    assert status.split()[1] == b"200" and length == gib


def test_fixture_slow_bodies(hostile):
    scenario = hostile.fresh("drip-manifest")
    with socket.create_connection(("127.0.0.1", hostile.port), timeout=5) as sock:
        started = time.monotonic()
        sock.sendall(f"GET /v2/{scenario}/app/manifests/1 HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(4096)
        body = data.partition(b"\r\n\r\n")[2]
        while len(body) < 3:
            body += sock.recv(1)
        # 1 byte per 0.5 s: the third leaves a second after the request came, at the
        # earliest (a lower bound a slow machine only makes longer)
        assert time.monotonic() - started >= 0.99
        assert body == hostile.top(scenario).body[: len(body)]
    for behaviour in ("stall-manifest", "stall-token"):
        scenario = hostile.fresh(behaviour)
        path = f"/v2/{scenario}/app/manifests/1"
        if behaviour == "stall-token":
            path = f"/token?service=evil&scope=repository:{scenario}/app:pull"
        with pytest.raises(TimeoutError):
            raw(hostile.url, path, timeout=1.0)


def test_fixture_documents(hostile):
    def get(scenario: str, repo: str = "app", what: str = "manifests/1") -> requests.Response:
        response = requests.get(f"{hostile.url}/v2/{scenario}/{repo}/{what}", timeout=10)
        assert response.status_code == 200, describe(response)
        return response

    deep = get(hostile.fresh("deep-manifest"))
    assert deep.content.count(b'{"a":') == 100_000 and deep.headers["Content-Type"] == OCI_MANIFEST
    scenario = hostile.fresh("deep-config")
    for repo in ("app", "wrapper"):
        descriptor = json.loads(get(scenario, repo).content)["config"]
        config = get(scenario, repo, f"blobs/{descriptor['digest']}").content
        assert config.count(b'{"a":') == 100_000 and len(config) == descriptor["size"]

    assert len(get(hostile.fresh("index-5000")).json()["manifests"]) == 5000
    for behaviour, variant in (("variant-long", LONG_VARIANT), ("variant-big", BIG_VARIANT)):
        scenario = hostile.fresh(behaviour)
        for repo in ("app", "wrapper"):
            entries = get(scenario, repo).json()["manifests"]
            assert [e["platform"].get("variant") for e in entries] == [None, variant]
            arm = get(scenario, repo, f"manifests/{entries[1]['digest']}").json()
            arm_config = get(scenario, repo, f"blobs/{arm['config']['digest']}").json()
            assert arm_config["variant"] == variant and arm_config["architecture"] == "arm64"
    assert len(LONG_VARIANT) == 100_001

    scenario = hostile.fresh("layers-200")
    manifest = get(scenario).json()
    config = get(scenario, what=f"blobs/{manifest['config']['digest']}").json()
    assert len(manifest["layers"]) == len(config["rootfs"]["diff_ids"]) == 200

    html = get(hostile.fresh("html-manifest"))
    assert html.headers["Content-Type"] == "text/html" and html.json()["mediaType"] == "text/html"
    scenario = hostile.fresh("nomediatype")
    bare = get(scenario)
    assert bare.headers["Content-Type"] == "application/json"
    assert "mediaType" not in bare.json()
    assert bare.json()["layers"] == hostile.image(scenario).manifest_json()["layers"]

    assert None in get(hostile.fresh("tags-nonstring"), what="tags/list").json()["tags"]
    assert len(get(hostile.fresh("tags-many"), what="tags/list").json()["tags"]) == 100_000
    scenario = hostile.fresh("tags-crlf")
    head, body = raw(hostile.url, f"/v2/{scenario}/app/tags/list?n=1")
    assert_clean_head(head)
    assert json.loads(body)["tags"] == [CRLF_TAG]
    assert "last=v1%0D%0AX-Injected%3A%201" in dict(header_lines(head))["link"]


def test_fixture_protocol_misbehaviours(hostile):
    url = hostile.url

    scenario = hostile.fresh("lying-head")
    honest, lie = hostile.top(scenario), hostile.lie(scenario)
    assert lie != honest.digest
    head = requests.head(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert head.headers["Docker-Content-Digest"] == lie
    get = requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert get.headers["Docker-Content-Digest"] == lie and sha256(get.content) == honest.digest
    by_lie = requests.get(f"{url}/v2/{scenario}/app/manifests/{lie}", timeout=5)
    assert by_lie.status_code == 200 and sha256(by_lie.content) != lie
    hostile.set_mode(scenario, "honest")
    head = requests.head(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert head.headers["Docker-Content-Digest"] == honest.digest

    for status in (405, 500):
        scenario = hostile.fresh(f"head-{status}")
        assert requests.head(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == (
            status
        )
        assert requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == 200

    scenario = hostile.fresh("redirect-manifest")
    moved = requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5, allow_redirects=False)
    assert moved.status_code == 302 and moved.headers["Location"].endswith("?moved=1")
    followed = requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert sha256(followed.content) == hostile.top(scenario).digest

    for target, location in METADATA.items():
        scenario = hostile.fresh(f"meta-{target}-manifest")
        answer = requests.get(
            f"{url}/v2/{scenario}/app/manifests/1", timeout=5, allow_redirects=False
        )
        assert answer.status_code == 302 and answer.headers["Location"] == location
        scenario = hostile.fresh(f"meta-{target}-config")
        config = json.loads(hostile.top(scenario).body)["config"]["digest"]
        answer = requests.get(
            f"{url}/v2/{scenario}/app/blobs/{config}", timeout=5, allow_redirects=False
        )
        assert answer.status_code == 302 and answer.headers["Location"] == location
        scenario = hostile.fresh(f"meta-{target}-realm")
        answer = requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
        assert f'realm="{location}"' in answer.headers["WWW-Authenticate"]
        scenario = hostile.fresh(f"meta-{target}-token")
        answer = requests.get(
            f"{url}/token?service=evil&scope=repository:{scenario}/app:pull",
            timeout=5,
            allow_redirects=False,
        )
        assert answer.status_code == 302 and answer.headers["Location"] == location

    for target, location in {**METADATA, **METADATA_SPELLINGS}.items():
        scenario = hostile.fresh(f"meta-{target}-blob")
        layer = f"{url}/v2/{scenario}/app/blobs/{hostile.image(scenario).layers[0].digest}"
        for method in ("GET", "HEAD"):
            answer = requests.request(method, layer, timeout=5, allow_redirects=False)
            assert answer.status_code == 307 and answer.headers["Location"] == location
        config = json.loads(hostile.top(scenario).body)["config"]["digest"]
        answer = requests.get(f"{url}/v2/{scenario}/app/blobs/{config}", timeout=5)
        assert answer.status_code == 200  # configs and manifests stay polite

    for behaviour, marker in (("location-nul", b"blob\x00evil"), ("location-fold", b"\r\n fold")):
        scenario = hostile.fresh(behaviour)
        head, _ = raw(url, f"/v2/{scenario}/app/blobs/{hostile.image(scenario).layers[0].digest}")
        assert head.startswith(b"HTTP/1.1 307") and marker in head

    limited = requests.get(f"{url}/v2/{hostile.fresh('ratelimit')}/app/manifests/1", timeout=5)
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "120"

    scenario = hostile.fresh("unavailable-once")
    assert requests.head(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == 200
    assert requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == 503
    assert requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == 200

    scenario = hostile.fresh("chunked-blob")
    for digest in (hostile.image(scenario).layers[0].digest, hostile.big_digest):
        path = f"/v2/{scenario}/app/blobs/{digest}"
        head, _ = raw(url, path)
        names = [name for name, _ in header_lines(head)]
        assert "content-length" not in names and "transfer-encoding" in names
        assert sha256(requests.get(url + path, timeout=5).content) == digest
        head, _ = raw(url, path, "HEAD")
        assert "content-length" not in [name for name, _ in header_lines(head)]

    scenario = hostile.fresh("lagging")
    started = time.monotonic()
    assert requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5).status_code == 200
    assert time.monotonic() - started >= 0.45  # 0.5 s late (a lower bound: never flaky)
    assert requests.get(
        f"{url}/v2/{hostile.fresh('down')}/app/tags/list", timeout=5
    ).status_code == (500)


def test_fixture_bearer_flows(hostile):
    url = hostile.url

    def token(scenario: str) -> requests.Response:
        return requests.get(
            f"{url}/token", params={"service": "evil", "scope": f"repository:{scenario}/app:pull"}
        )

    def pull(scenario: str, value: str | None) -> int:
        headers = {"Authorization": f"Bearer {value}"} if value else {}
        return requests.get(
            f"{url}/v2/{scenario}/app/manifests/1", headers=headers, timeout=5
        ).status_code

    scenario = hostile.fresh("bearer")
    challenge = requests.get(f"{url}/v2/{scenario}/app/manifests/1", timeout=5)
    assert challenge.status_code == 401
    assert challenge.headers["WWW-Authenticate"] == (
        f'Bearer realm="{url}/token",service="evil",scope="repository:{scenario}/app:pull"'
    )
    value = token(scenario).json()["token"]
    assert pull(scenario, value) == pull(scenario, value) == 200
    assert pull(scenario, "forged") == 401

    scenario = hostile.fresh("rotate")
    first = token(scenario).json()["token"]
    assert pull(scenario, first) == 200
    assert pull(scenario, first) == 401
    second = token(scenario).json()["token"]
    assert second != first
    assert pull(scenario, second) == pull(scenario, second) == 200
    assert hostile.count("GET", "token", scenario) == 2

    scenario = hostile.fresh("two-challenges")
    head, _ = raw(url, f"/v2/{scenario}/app/manifests/1")
    challenges = [value for name, value in header_lines(head) if name == "www-authenticate"]
    assert len(challenges) == 2
    assert challenges[0].startswith("Basic ") and challenges[1].startswith("Bearer ")
    assert pull(scenario, token(scenario).json()["token"]) == 200

    for behaviour, literal in (
        ("expires-nan", '"NaN"'),
        ("expires-nanliteral", "NaN"),
        ("expires-negative", "-5"),
        ("expires-huge", "1e309"),
        ("expires-text", '"abc"'),
        ("expires-null", "null"),
    ):
        scenario = hostile.fresh(behaviour)
        answer = token(scenario)
        assert f'"expires_in": {literal},' in answer.text
        assert pull(scenario, json.loads(answer.text)["token"]) == 200


def test_fixture_modes_switch_at_run_time(hostile):
    scenario = hostile.fresh("good")
    url = f"{hostile.url}/v2/{scenario}/app/manifests/1"
    assert requests.get(url, timeout=5).status_code == 200
    hostile.set_mode(scenario, "down")
    assert requests.get(url, timeout=5).status_code == 500
    hostile.set_mode(scenario, "429")
    answer = requests.get(url, timeout=5)
    assert answer.status_code == 429 and answer.headers["Retry-After"] == "120"
    hostile.set_mode(scenario, "slow")
    with pytest.raises(requests.Timeout):
        requests.get(url, timeout=1)
    hostile.set_mode(scenario, "ok")
    assert hostile.mode(scenario) == "good"
    assert requests.get(url, timeout=5).status_code == 200
    assert hostile.counts()["GET", "manifest", scenario] == 5
    with pytest.raises(KeyError):
        hostile.set_mode(scenario, "no-such-mode")


# == through the gateway ==================================================================


def test_polite_scenario_pulls_and_wraps(evil_gw, hostile):
    """The baseline every other test bends: a polite upstream works through the alias."""
    scenario = hostile.fresh("good")
    pulled = drive(evil_gw, hostile, "pull", scenario)
    assert pulled.status_code == 200, describe(pulled)
    assert pulled.headers["Docker-Content-Digest"] == hostile.top(scenario).digest
    wrapped = drive(evil_gw, hostile, "wrap", scenario)
    assert wrapped.status_code == 200, describe(wrapped)
    layers = [layer["digest"] for layer in wrapped.json()["layers"]]
    assert layers[0] == hostile.image(scenario).layers[0].digest


# -- deadline -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("behaviour", "how"),
    [
        ("stall-manifest", "pull"),  # headers a minute late
        ("drip-manifest", "pull"),
        ("drip-config", "wrap"),
        ("drip-token", "pull"),
        ("stall-token", "pull"),  # a slow token realm
        ("drip-tags", "tags"),
        ("slowish", "wrap-both"),  # each call 1.5 s: fine alone, too slow together
    ],
)
def test_slow_upstreams_end_at_the_deadline(evil_gw, hostile, behaviour, how):
    scenario = hostile.fresh(behaviour)
    response = drive(evil_gw, hostile, how, scenario)
    assert_error(response, 504, "UNAVAILABLE", "evil", "deadline (3 s)")
    # `slowish` answers every call in 1.5 s: the deadline may fall between two calls.
    assert_let_go(hostile, scenario, hung_up=behaviour != "slowish")


# -- bounded reads ------------------------------------------------------------------------

# (read, how the gateway is made to do it, the limit its error names)
READS = [
    ("manifest", "pull", MANIFEST_LIMIT),
    ("config", "wrap", CONFIG_LIMIT),
    ("token", "pull", TOKEN_LIMIT),
    ("tags", "tags", TAGS_LIMIT),
]
BIG_BODIES = ["huge", "endless", "overdeclared", "bomb"]
BOUNDED = [(f"{body}-{read}", how, limit) for read, how, limit in READS for body in BIG_BODIES]
BOUNDED += [("huge-manifest", "wrap", MANIFEST_LIMIT), ("bomb-manifest", "wrapper", MANIFEST_LIMIT)]
ERROR_BODIES = [
    "huge-error",
    "endless-error",
    "overdeclared-error",
    "bomb-error",
    "huge-notfound",
    "bomb-notfound",
]


@pytest.mark.parametrize(("behaviour", "how", "limit"), BOUNDED)
def test_big_bodies_are_cut_at_their_limit(evil_gw, hostile, behaviour, how, limit):
    scenario = hostile.fresh(behaviour)
    response = drive(evil_gw, hostile, how, scenario)
    assert_error(response, 502, "UNAVAILABLE", "evil", str(limit))
    assert_let_go(hostile, scenario, hung_up=behaviour.startswith(("huge", "endless")))


@pytest.mark.parametrize("behaviour", ERROR_BODIES)
def test_big_error_bodies_still_give_a_spec_error(evil_gw, hostile, behaviour):
    scenario = hostile.fresh(behaviour)
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code != 500, describe(response)
    spec_error(response)
    assert_let_go(hostile, scenario, hung_up=behaviour.startswith(("huge", "endless")))


@pytest.mark.parametrize("variant", ["neg", "abc", "plus", "underscore", "two"])
def test_invalid_content_length_is_refused(evil_gw, hostile, variant):
    response = drive(evil_gw, hostile, "pull", hostile.fresh(f"badlen-{variant}-manifest"))
    assert_error(response, 502, "UNAVAILABLE", "evil")


@pytest.mark.parametrize(
    ("behaviour", "how"),
    [("cut-manifest", "pull"), ("cut-config", "wrap"), ("cut-token", "pull"), ("cut-tags", "tags")],
)
def test_connection_closed_mid_body_is_a_502(evil_gw, hostile, behaviour, how):
    response = drive(evil_gw, hostile, how, hostile.fresh(behaviour))
    assert_error(response, 502, "UNAVAILABLE", "evil")


def test_hostile_bodies_do_not_grow_memory(evil_gateway, hostile):
    gw = evil_gateway(GATEWAY_WORKERS="1")
    gw.reset_peak_rss()
    for behaviour, how, _limit in BOUNDED:
        response = drive(gw, hostile, how, hostile.fresh(behaviour))
        assert response.status_code in (502, 504), describe(response)
    for behaviour in ERROR_BODIES:
        response = drive(gw, hostile, "pull", hostile.fresh(behaviour))
        assert response.status_code != 500, describe(response)
    peak = gw.peak_rss_mb()
    assert peak < 200, f"peak RSS {peak} MB"


# -- bounded work -------------------------------------------------------------------------


def test_deep_json_manifest_is_refused(evil_gw, hostile):
    response = drive(evil_gw, hostile, "pull", hostile.fresh("deep-manifest"))
    assert response.status_code == 502, describe(response)
    spec_error(response)


@pytest.mark.parametrize(
    ("behaviour", "how"),
    [
        ("deep-manifest", "wrap"),
        ("deep-manifest", "wrapper"),
        ("deep-config", "wrap"),
        ("deep-config", "wrapper"),
    ],
)
def test_deep_json_in_a_wrap_is_refused(evil_gw, hostile, behaviour, how):
    response = drive(evil_gw, hostile, how, hostile.fresh(behaviour))
    assert response.status_code in (400, 502), describe(response)  # not a 504: no long work
    spec_error(response)


def test_wrap_over_127_layers_is_refused(evil_gw, hostile):
    response = drive(evil_gw, hostile, "wrap", hostile.fresh("layers-200"))
    assert_error(response, 400, "MANIFEST_INVALID", "127")


def test_index_with_5000_entries_is_refused(evil_gw, hostile):
    response = drive(evil_gw, hostile, "wrap", hostile.fresh("index-5000"))
    assert response.status_code in (400, 502), describe(response)  # not a 504: no long work
    spec_error(response)


@pytest.mark.parametrize("how", ["pull", "wrap", "wrapper", "wrap-both"])
@pytest.mark.parametrize("behaviour", ["variant-long", "variant-big"])
def test_absurd_platform_variants_are_harmless(evil_gw, hostile, behaviour, how):
    response = drive(evil_gw, hostile, how, hostile.fresh(behaviour))
    assert response.status_code in (200, 404), describe(response)  # not a 504: no long work
    if response.status_code == 404:
        spec_error(response)


def test_tag_list_with_non_strings_is_refused(evil_gw, hostile):
    response = drive(evil_gw, hostile, "tags", hostile.fresh("tags-nonstring"))
    assert response.status_code == 502, describe(response)
    spec_error(response)


def test_huge_valid_tag_list_is_answered(evil_gw, hostile):
    scenario = hostile.fresh("tags-many")
    response = ask(evil_gw, path_for(hostile, "tags", scenario) + "?n=10")
    assert response.status_code != 500, describe(response)
    if response.status_code == 200:
        assert len(response.json()["tags"]) <= 10
    else:
        spec_error(response)


def test_non_ascii_page_size_is_refused(evil_gw, hostile):
    path = path_for(hostile, "tags", hostile.fresh("good")) + "?n=%D9%A1%D9%A2"  # ١٢
    response = ask(evil_gw, path)
    assert_error(response, 400, "PAGINATION_NUMBER_INVALID")


def test_crlf_in_a_tag_never_reaches_a_header(evil_gw, hostile):
    path = path_for(hostile, "tags", hostile.fresh("tags-crlf"))
    pages = [path, path + "?n=1", path + "?n=2"]
    seen = 0
    while pages and seen < 6:
        page = pages.pop(0)
        seen += 1
        head, _ = raw(evil_gw.url, page)
        assert_clean_head(head)
        assert head.split(b" ")[1] != b"500", head
        link = dict(header_lines(head)).get("link", "")
        if link.startswith("<") and ">" in link:
            pages.append(link[1 : link.index(">")])
    response = ask(evil_gw, path + "?n=1")
    assert "X-Injected" not in response.headers


@pytest.mark.parametrize(
    "behaviour",
    [
        "expires-nan",
        "expires-nanliteral",
        "expires-negative",
        "expires-huge",
        "expires-text",
        "expires-null",
    ],
)
def test_odd_token_lifetimes_still_pull(evil_gw, hostile, behaviour):
    scenario = hostile.fresh(behaviour)
    for how in ("pull", "tags"):
        response = drive(evil_gw, hostile, how, scenario)
        assert response.status_code == 200, describe(response)


# -- only verified data -------------------------------------------------------------------


def test_lying_head_is_not_believed_nor_remembered(evil_gw, hostile):
    scenario = hostile.fresh("lying-head")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert_error(response, 502, "UNAVAILABLE", "evil")
    hostile.set_mode(scenario, "honest")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code == 200, describe(response)
    honest = hostile.top(scenario).digest
    assert response.headers["Docker-Content-Digest"] == honest
    assert sha256(response.content) == honest


def test_html_manifest_is_never_served(evil_gw, hostile):
    response = drive(evil_gw, hostile, "pull", hostile.fresh("html-manifest"))
    assert response.status_code == 502, describe(response)
    assert "text/html" not in response.headers.get("Content-Type", "")
    spec_error(response)


def test_manifest_served_as_plain_json_gets_its_real_type(evil_gw, hostile):
    scenario = hostile.fresh("nomediatype")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code == 200, describe(response)
    assert response.headers["Content-Type"] == OCI_MANIFEST
    assert sha256(response.content) == hostile.top(scenario).digest
    wrapped = drive(evil_gw, hostile, "wrap", scenario)
    assert wrapped.status_code == 200, describe(wrapped)


@pytest.mark.parametrize("behaviour", ["location-nul", "location-fold"])
def test_blob_redirect_with_a_broken_location_is_refused(evil_gw, hostile, behaviour):
    scenario = hostile.fresh(behaviour)
    head, _ = raw(evil_gw.url, path_for(hostile, "blob", scenario))
    assert_clean_head(head)
    response = drive(evil_gw, hostile, "blob", scenario)
    assert_error(response, 502, "UNAVAILABLE", "evil")


# -- auth and protocol --------------------------------------------------------------------


def test_rotated_token_is_fetched_again(evil_gw, hostile):
    scenario = hostile.fresh("rotate")
    for path in (
        path_for(hostile, "pull", scenario),
        path_for(hostile, "tags", scenario),
        path_for(hostile, "pull", scenario, ref="2"),
    ):
        response = ask(evil_gw, path)
        assert response.status_code == 200, describe(response)
    assert hostile.count("GET", "token", scenario) == 2


def test_bearer_challenge_is_found_after_a_basic_one(evil_gw, hostile):
    scenario = hostile.fresh("two-challenges")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code == 200, describe(response)
    assert hostile.count("GET", "token", scenario) >= 1


def test_blob_reads_ask_for_identity_encoding(evil_gw, hostile):
    scenario = hostile.fresh("good")
    wrapped = drive(evil_gw, hostile, "wrap", scenario)  # reads the base config
    assert wrapped.status_code == 200, describe(wrapped)
    blob = drive(evil_gw, hostile, "blob", scenario)  # copies the base layer
    assert blob.status_code == 307, describe(blob)
    reads = hostile.requests("GET", "config", scenario) + hostile.requests("GET", "blob", scenario)
    assert {seen.kind for seen in reads} == {"config", "blob"}
    assert [seen.header("Accept-Encoding") for seen in reads] == ["identity"] * len(reads)


def test_rate_limit_is_passed_on_with_retry_after(evil_gw, hostile):
    response = drive(evil_gw, hostile, "pull", hostile.fresh("ratelimit"))
    assert_error(response, 429, "TOOMANYREQUESTS")
    assert response.headers["Retry-After"] == "120"


@pytest.mark.parametrize("behaviour", ["head-405", "head-500"])
def test_refused_head_falls_back_to_get(evil_gw, hostile, behaviour):
    scenario = hostile.fresh(behaviour)
    head = drive(evil_gw, hostile, "head", scenario)
    assert head.status_code == 200, describe(head)
    assert head.headers["Docker-Content-Digest"] == hostile.top(scenario).digest
    wrapped = drive(evil_gw, hostile, "wrap-both", scenario)
    assert wrapped.status_code == 200, describe(wrapped)


def test_manifest_redirect_is_followed(evil_gw, hostile):
    scenario = hostile.fresh("redirect-manifest")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code == 200, describe(response)
    assert sha256(response.content) == hostile.top(scenario).digest


def test_transient_503_is_retried(evil_gw, hostile):
    scenario = hostile.fresh("unavailable-once")
    response = drive(evil_gw, hostile, "pull", scenario)
    assert response.status_code == 200, describe(response)
    assert hostile.count("GET", "manifest", scenario) >= 2


# -- where an alias may send us -----------------------------------------------------------


@pytest.mark.parametrize("target", sorted(METADATA))
@pytest.mark.parametrize(
    ("read", "how"),
    [("manifest", "pull"), ("config", "wrap"), ("realm", "pull"), ("token", "pull")],
)
def test_redirects_to_link_local_and_metadata_are_denied(evil_gw, hostile, target, read, how):
    response = drive(evil_gw, hostile, how, hostile.fresh(f"meta-{target}-{read}"))
    assert_error(response, 403, "DENIED")
    assert "/latest/meta-data" not in response.text
    assert list(evil_gw.connect_attempts()) == []


# -- where a client may be sent -----------------------------------------------------------


def assert_not_sent_on(response: requests.Response) -> None:
    """A 403 DENIED that hands out no `Location` and names the link-local address."""
    assert_error(response, 403, "DENIED", "evil", "link-local")
    assert "Location" not in response.headers
    assert "/latest/meta-data" not in response.text


@pytest.mark.parametrize("target", sorted({**METADATA, **METADATA_SPELLINGS}))
def test_a_layer_redirect_to_link_local_is_not_handed_to_the_client(evil_gw, hostile, target):
    scenario = hostile.fresh(f"meta-{target}-blob")
    assert_not_sent_on(drive(evil_gw, hostile, "blob", scenario))
    base = hostile.fresh("good")
    wrapped = wrap_name(scenario, base)  # the hostile one as base, a polite wrapper
    wrapping = wrap_name(base, scenario)  # a polite base, the hostile one as wrapper
    for name, layer in (
        (wrapped, hostile.image(scenario).layers[0].digest),
        (wrapping, hostile.image(scenario, "wrapper").layers[0].digest),
    ):
        composed = ask(evil_gw, f"/v2/{name}/manifests/latest")
        assert composed.status_code == 200, describe(composed)
        assert layer in composed.text
        assert_not_sent_on(ask(evil_gw, f"/v2/{name}/blobs/{layer}"))
    assert list(evil_gw.connect_attempts()) == []


def skopeo_in_namespace(
    gw: LocalGateway, moto_s3, name: str, workdir
) -> subprocess.CompletedProcess[str]:
    """`skopeo copy` of `name` from the gateway, run where only loopback exists (and only
    the gateway's and S3's ports of this machine are reachable)."""
    argv = [require("skopeo"), "copy", "--src-tls-verify=false"]
    argv += [f"docker://{gw.host}/{name}", f"oci:{workdir / 'copy'}:x"]
    s3_port = urlsplit(moto_s3.endpoint_url).port
    return isolated(argv, [gw.port, s3_port], workdir / "relays")


@pytest.mark.parametrize("target", ["aws", "decimal"])
def test_skopeo_is_never_sent_to_the_metadata_address(evil_gw, hostile, moto_s3, tmp_path, target):
    """A real client behind the registry: it gets the refusal and connects nowhere else.

    skopeo runs in a network namespace of its own, so even a `Location` of the metadata
    address handed to it could send nothing off this machine ("network is unreachable"
    would say it tried); the polite copy first shows the namespace reaches the gateway.
    """
    require("unshare")
    polite = skopeo_in_namespace(
        evil_gw, moto_s3, f"evil/{hostile.fresh('good')}/app:1", tmp_path / "good"
    )
    assert polite.returncode == 0, polite.stderr
    scenario = hostile.fresh(f"meta-{target}-blob")
    copied = skopeo_in_namespace(evil_gw, moto_s3, f"evil/{scenario}/app:1", tmp_path / "meta")
    assert copied.returncode != 0
    assert "registry 403 (Forbidden)" in copied.stderr, copied.stderr  # skopeo 1.9's words
    assert "169.254" not in copied.stderr and "unreachable" not in copied.stderr
    assert hostile.count("GET", "blob", scenario) >= 1
    assert list(evil_gw.connect_attempts()) == []


# -- stale-if-error -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["down", "429", "slow"])
def test_failing_upstream_is_answered_from_stale_tags(evil_gateway, hostile, mode):
    gw = evil_gateway(TAG_TTL_SECONDS="1", STALE_IF_ERROR_SECONDS="60")
    scenario = hostile.fresh("good")
    pulled = drive(gw, hostile, "pull", scenario)
    wrapped = drive(gw, hostile, "wrap", scenario)
    assert pulled.status_code == wrapped.status_code == 200, describe(pulled) + describe(wrapped)
    hostile.set_mode(scenario, mode)
    time.sleep(1.5)
    for how, before in (("pull", pulled), ("wrap", wrapped)):
        again = drive(gw, hostile, how, scenario)  # in time: a 504 once the deadline passed
        assert again.status_code == 200, describe(again)
        assert again.headers["Docker-Content-Digest"] == before.headers["Docker-Content-Digest"]
    assert "stale" in gw.log()


@pytest.mark.parametrize(("mode", "status"), [("down", 502), ("429", 429), ("slow", 504)])
def test_stale_tags_expire(evil_gateway, hostile, mode, status):
    gw = evil_gateway(TAG_TTL_SECONDS="1", STALE_IF_ERROR_SECONDS="1")
    scenario = hostile.fresh("good")
    pulled = drive(gw, hostile, "pull", scenario)
    assert pulled.status_code == 200, describe(pulled)
    hostile.set_mode(scenario, mode)
    time.sleep(2.5)
    again = drive(gw, hostile, "pull", scenario)
    assert again.status_code == status, describe(again)
    spec_error(again)


# -- coalescing ---------------------------------------------------------------------------


def test_parallel_first_pulls_resolve_a_tag_once_per_worker(evil_gateway, hostile):
    gw = evil_gateway(GATEWAY_WORKERS="2")
    scenario = hostile.fresh("lagging")  # every manifest answer takes 0.5 s
    path = path_for(hostile, "pull", scenario)
    with ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(lambda _: ask(gw, path), range(50)))
    assert [a.status_code for a in answers] == [200] * 50, describe(answers[0])
    assert {a.headers["Docker-Content-Digest"] for a in answers} == {hostile.top(scenario).digest}
    by_tag = hostile.requests(kind="manifest", scenario=scenario, ref="1")
    assert len(by_tag) <= 2, [(s.method, s.ref) for s in by_tag]


# -- mirroring ----------------------------------------------------------------------------


@pytest.mark.parametrize("behaviour", ["good", "chunked-blob"])
def test_mirror_refuses_blobs_over_its_limit(evil_gateway, hostile, moto_s3, behaviour):
    gw = evil_gateway(MIRROR_MAX_BYTES="1000")
    scenario = hostile.fresh(behaviour)
    response = ask(gw, f"/v2/evil/{scenario}/app/blobs/{hostile.big_digest}")
    assert_error(response, 403, "DENIED", "MIRROR_MAX_BYTES")
    assert moto_s3.keys(gw.bucket, "blobs/") == []


def test_slow_blob_copy_ends_at_the_deadline(evil_gateway, hostile, moto_s3):
    gw = evil_gateway()
    scenario = hostile.fresh("drip-blob")
    response = drive(gw, hostile, "blob", scenario)
    assert response.status_code == 504, describe(response)
    assert "deadline" in spec_error(response)["message"]
    assert_let_go(hostile, scenario)
    assert moto_s3.keys(gw.bucket, "blobs/") == []


def test_polite_blob_is_copied_once(evil_gateway, hostile, moto_s3):
    gw = evil_gateway()
    scenario = hostile.fresh("good")
    layer = hostile.image(scenario).layers[0]
    for _ in range(2):
        response = drive(gw, hostile, "blob", scenario)
        assert response.status_code == 307, describe(response)
        location = urlsplit(response.headers["Location"])
        assert f"{location.scheme}://{location.netloc}" == moto_s3.endpoint_url
        assert location.path == f"/{gw.bucket}/blobs/sha256/{layer.digest[7:]}"
        assert dict(parse_qsl(location.query))  # presigned
    assert sha256(requests.get(response.headers["Location"], timeout=30).content) == layer.digest
    assert hostile.count("GET", "blob", scenario, ref=layer.digest) == 1
