"""The page's routes, its security headers, and its same-origin reads of generated configs.

The real handler's service over an in-memory bucket and upstream (aliased `stub`), with no
network at all. The page in a real browser is tests/integration/test_page.py.
"""

from __future__ import annotations

import base64
import json
import re
from html.parser import HTMLParser

import pytest

import app
import page_routes
import wiring
from doubles.handler import handler_on_memory
from doubles.upstream import MemoryUpstream, digest_of
from harness.cosign import generate_key
from harness.logins import htpasswd_line
from ociwrap_local.events import LocalContext, build_event, decode_result

#: The page's files where the handler serves them from (the project's, in any test tree).
PAGE = page_routes.PAGE_DIR
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
WRAP = "wrap/stub/team/base/1/with/stub/team/wrapper/1"


@pytest.fixture
def upstream() -> MemoryUpstream:
    return MemoryUpstream()


@pytest.fixture
def env(monkeypatch, upstream, on_doubles, no_network):
    """The handler's environment: an in-memory bucket `unit-bucket`, the upstream as `stub`."""
    handler_on_memory(monkeypatch, upstream)
    on_doubles(upstream=upstream)
    return monkeypatch


@pytest.fixture
def call(env):
    """`call(method, path, headers=())` -> (status, headers with lower-case names, body)."""

    def call(method: str, path: str, headers=()) -> tuple[int, dict[str, str], bytes]:
        event = build_event(method, path, [("Host", "registry.example.com"), *headers], b"")
        status, pairs, body = decode_result(app.lambda_handler(event, LocalContext()))
        return status, {name.lower(): value for name, value in pairs}, body

    return call


def policy(header: str) -> dict[str, str]:
    """A Content-Security-Policy as {directive: sources}."""
    directives = (part.strip().split(None, 1) for part in header.split(";") if part.strip())
    return {d[0]: d[1] if len(d) > 1 else "" for d in directives}


class Markup(HTMLParser):
    """What an HTML document loads and runs: script elements, style elements, attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[dict[str, str | None]] = []
        self.script_text = ""
        self.styles = 0
        self.attributes: list[tuple[str, str, str | None]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.attributes.extend((tag, name, value) for name, value in attrs)
        if tag == "script":
            self.scripts.append(dict(attrs))
            self._in_script = True
        if tag == "style":
            self.styles += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text += data


# -- the page ---------------------------------------------------------------------------------


def test_the_page_is_served_under_a_strict_policy(call):
    status, headers, body = call("GET", "/")
    assert status == 200
    assert headers["content-type"] == "text/html; charset=utf-8"
    assert headers["content-length"] == str(len(body))
    csp = policy(headers["content-security-policy"])
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self'"
    assert csp["img-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["require-trusted-types-for"] == "'script'"
    assert "unsafe" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["referrer-policy"] == "no-referrer"
    assert b"<title>ociwrap: wrap an image</title>" in body


def test_the_page_has_no_inline_code_and_loads_nothing_from_elsewhere(call):
    markup = Markup()
    markup.feed(call("GET", "/")[2].decode())
    assert markup.scripts == [{"src": "/page.js", "defer": None}]
    assert markup.script_text.strip() == ""
    assert markup.styles == 0
    assert [(tag, name) for tag, name, _ in markup.attributes if name.startswith("on")] == []
    assert [(tag, name) for tag, name, _ in markup.attributes if name == "style"] == []
    links = [value for _, name, value in markup.attributes if name in ("src", "href")]
    assert links == [
        "/favicon.svg",
        "/page.css",
        "/page.js",
        "/README.md#:~:text=%23%23%20Wrapping%20images",
        "/README.md#:~:text=%23%23%20Container%20tokens",
        "/README.md#:~:text=%23%23%20Signing",
        "/v1alpha/openapi.json",
        "/v1alpha/signing-key",
    ]
    for file in ("index.html", "page.css", "page.js"):
        text = (PAGE / file).read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), file
    css = (PAGE / "page.css").read_text()
    assert "@import" not in css and "url(" not in css and "@font-face" not in css


def test_the_script_never_writes_markup():
    script = (PAGE / "page.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script, sink


@pytest.mark.parametrize(
    ("path", "file", "media_type"),
    [
        ("/page.css", "page.css", "text/css; charset=utf-8"),
        ("/page.js", "page.js", "text/javascript; charset=utf-8"),
        ("/favicon.svg", "favicon.svg", "image/svg+xml"),
        ("/README.md", "README.md", "text/plain; charset=utf-8"),
    ],
)
def test_the_page_files_are_served_as_they_are(call, path, file, media_type):
    status, headers, body = call("GET", path)
    assert (status, headers["content-type"], body) == (200, media_type, (PAGE / file).read_bytes())
    assert headers["content-length"] == str(len(body))
    assert headers["x-content-type-options"] == "nosniff"


def test_head_and_revalidation(call):
    _, got, body = call("GET", "/")
    status, headers, head_body = call("HEAD", "/")
    assert (status, head_body, headers["content-length"]) == (200, b"", str(len(body)))
    assert headers["cache-control"] == "no-cache"
    etag = got["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)
    status, headers, again = call("GET", "/", [("If-None-Match", f'"other", {etag}')])
    assert (status, again, headers["etag"]) == (304, b"", etag)
    assert call("GET", "/", [("If-None-Match", '"other"')])[0] == 200


def test_the_page_names_the_public_hostname(call, env):
    assert b'<meta name="ociwrap-registry-host" content="">' in call("GET", "/")[2]
    env.setenv("PUBLIC_HOSTNAME", "registry.example.org")
    app.reset_service()
    body = call("GET", "/")[2]
    assert b'<meta name="ociwrap-registry-host" content="registry.example.org">' in body


def test_the_manual_is_the_project_s_readme():
    readme = PAGE.parents[2] / "README.md"
    assert (PAGE / "README.md").read_bytes() == readme.read_bytes()


def facts(body: bytes) -> dict[str, str]:
    """The page's `ociwrap-*` meta tags: what it says of this deployment."""
    found = re.findall(rb'<meta name="ociwrap-([a-z-]+)" content="([^"]*)">', body)
    return {name.decode(): value.decode() for name, value in found}


def test_the_page_says_the_token_lifetime_limit_and_whether_it_signs(call, env, tmp_path):
    assert facts(call("GET", "/")[2]) == {
        "registry-host": "",
        "token-max-ttl": "2592000",
        "signing": "",
    }
    key = tmp_path / "signing.pem"
    key.write_bytes(generate_key()[0])
    env.setenv("SIGNING_KEY_FILE", str(key))
    env.setenv("PUBLIC_HOSTNAME", "registry.example.org")
    env.setenv("TOKEN_MAX_TTL_SECONDS", "3600")
    app.reset_service()
    assert facts(call("GET", "/")[2]) == {
        "registry-host": "registry.example.org",
        "token-max-ttl": "3600",
        "signing": "on",
    }


def test_with_logins_the_page_asks_for_one(call, env, tmp_path):
    users = tmp_path / "htpasswd"
    users.write_text(htpasswd_line("ci", "page-password") + "\n")
    env.setenv("REGISTRY_AUTH", "basic")
    env.setenv("REGISTRY_AUTH_FILE", str(users))
    app.reset_service()
    for path in ("/", "/page.js"):
        status, headers, body = call("GET", path)
        assert status == 401
        assert headers["www-authenticate"] == 'Basic realm="ociwrap"'
        assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    login = "Basic " + base64.b64encode(b"ci:page-password").decode()
    assert call("GET", "/", [("Authorization", login)])[0] == 200


# -- generated configs, read by the page ------------------------------------------------------


def composed(call) -> dict:
    status, _, body = call("GET", f"/v2/{WRAP}/manifests/latest", [("Accept", OCI_MANIFEST)])
    assert status == 200, body
    return json.loads(body)


SAME_ORIGIN = [("Sec-Fetch-Site", "same-origin"), ("Sec-Fetch-Mode", "cors")]


def test_a_same_origin_read_of_a_generated_config_gets_its_bytes(call):
    config = composed(call)["config"]["digest"]
    status, headers, body = call("GET", f"/v2/{WRAP}/blobs/{config}", SAME_ORIGIN)
    assert status == 200
    assert digest_of(body) == config
    assert headers["content-type"] == "application/octet-stream"
    assert headers["content-length"] == str(len(body))
    assert headers["docker-content-digest"] == config
    assert headers["vary"] == "Sec-Fetch-Site"
    assert headers["x-content-type-options"] == "nosniff"
    assert json.loads(body)["config"]["Entrypoint"] == ["/w/run"]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [("Sec-Fetch-Site", "cross-site")],
        [("Sec-Fetch-Site", "same-site")],
        [("Sec-Fetch-Site", "none")],
    ],
    ids=["no header", "cross-site", "same-site", "typed URL"],
)
def test_every_other_read_of_a_config_is_redirected(call, headers):
    config = composed(call)["config"]["digest"]
    status, answer, body = call("GET", f"/v2/{WRAP}/blobs/{config}", headers)
    assert (status, body, answer["content-length"]) == (307, b"", "0")
    assert "unit-bucket" in answer["location"]


def asked_for(upstream: MemoryUpstream, digest: str) -> int:
    """How many requests the upstream got about `digest`."""
    return sum(1 for request in upstream.calls if request.ref == digest)


def test_layers_proxied_configs_and_heads_are_answered_as_ever(call, upstream):
    manifest = composed(call)
    layer = manifest["layers"][0]["digest"]
    status, headers, _ = call("GET", f"/v2/{WRAP}/blobs/{layer}", SAME_ORIGIN)
    assert status == 307 and headers["location"].startswith("http")
    asked = asked_for(upstream, layer)
    status, headers, body = call("HEAD", f"/v2/{WRAP}/blobs/{layer}", SAME_ORIGIN)
    assert (status, body, headers["docker-content-digest"]) == (200, b"", layer)
    assert headers["content-length"] == str(manifest["layers"][0]["size"])
    assert asked_for(upstream, layer) == asked  # the size is known: nobody asked
    config = manifest["config"]["digest"]
    status, headers, body = call("HEAD", f"/v2/{WRAP}/blobs/{config}", SAME_ORIGIN)
    assert (status, body) == (200, b"")
    assert headers["content-length"] == str(manifest["config"]["size"])


def proxied_config(call, path: str) -> str:
    return json.loads(call("GET", f"/v2/{path}/manifests/1")[2])["config"]["digest"]


def test_a_base_or_wrapper_config_a_composition_read_is_given_to_the_page(call):
    base, wrapper = (
        proxied_config(call, "stub/team/base"),
        proxied_config(call, "stub/team/wrapper"),
    )
    # Before a composition read it, the page gets the redirect like any client.
    assert call("GET", f"/v2/stub/team/base/blobs/{base}", SAME_ORIGIN)[0] == 307
    composed(call)
    for path, digest, label in (
        ("stub/team/base", base, None),
        ("stub/team/wrapper", wrapper, "/w/run"),
    ):
        status, headers, body = call("GET", f"/v2/{path}/blobs/{digest}", SAME_ORIGIN)
        assert (status, digest_of(body), headers["vary"]) == (200, digest, "Sec-Fetch-Site")
        assert (json.loads(body)["config"].get("Labels") or {}).get("org.goci.wrapper") == label
        # Any other client, or the same URL typed, still gets the redirect.
        assert call("GET", f"/v2/{path}/blobs/{digest}")[0] == 307
    # Held for one repository is not served under another: that one's upstream is asked.
    status, _, body = call("GET", f"/v2/stub/team/wrapper/blobs/{base}", SAME_ORIGIN)
    assert (status, json.loads(body)["errors"][0]["code"]) == (404, "BLOB_UNKNOWN")


def test_only_json_objects_a_repository_gave_are_held_configs(call):
    registry = wiring.service()
    repo = registry.repository("stub/team/base")
    held = registry.proxy.held_config
    composed(call)
    config = proxied_config(call, "stub/team/base")
    size = len(held(repo, config, 1024 * 1024))
    assert held(repo, config, size) is not None  # exactly at the limit
    assert held(repo, config, size - 1) is None

    store, links = registry.proxy.images.store, registry.proxy.images.links
    for body in (b"\x1f\x8b a gzip layer", b"[1, 2]", b'"text"'):
        digest = digest_of(body)
        store.put_blob(digest, body)
        links.add(repo, digest, len(body))
        assert held(repo, digest, 1024) is None, body
    body = b'{"config": {}}'
    unsized, lying, missing = digest_of(body + b" "), digest_of(body + b"  "), digest_of(body)
    store.put_blob(unsized, body + b" ")
    links.add(repo, unsized)  # a link that does not say the size
    store.put_blob(lying, body + b"  ")
    links.add(repo, lying, 2)  # a link whose size is smaller than the bytes
    links.add(repo, missing, len(body))  # linked, but the bucket lost the bytes
    assert [held(repo, d, 1024) for d in (unsized, missing)] == [None, None]
    assert held(repo, lying, len(body)) is None  # the bytes, not the link, meet the limit
    store.put_blob(missing, body)
    assert held(repo, missing, len(body)) == body


def test_a_config_over_the_limit_keeps_its_redirect(call, env):
    config = composed(call)["config"]
    env.setattr(page_routes, "CONFIG_INLINE_MAX_BYTES", config["size"] - 1)
    assert call("GET", f"/v2/{WRAP}/blobs/{config['digest']}", SAME_ORIGIN)[0] == 307
    env.setattr(page_routes, "CONFIG_INLINE_MAX_BYTES", config["size"])
    assert call("GET", f"/v2/{WRAP}/blobs/{config['digest']}", SAME_ORIGIN)[0] == 200


def test_the_page_knows_the_limit():
    script = (PAGE / "page.js").read_text()
    found = re.search(r"const CONFIG_MAX_BYTES = (\d+);", script)
    assert found and int(found[1]) == page_routes.CONFIG_INLINE_MAX_BYTES == 1024 * 1024


@pytest.mark.parametrize(
    ("digest", "status", "code"),
    [
        ("sha256:" + "0" * 64, 404, "BLOB_UNKNOWN"),
        ("sha256:zz", 400, "DIGEST_INVALID"),
    ],
)
def test_same_origin_reads_of_other_digests_are_spec_errors(call, digest, status, code):
    composed(call)
    answer, _, body = call("GET", f"/v2/{WRAP}/blobs/{digest}", SAME_ORIGIN)
    assert answer == status
    assert json.loads(body)["errors"][0]["code"] == code
