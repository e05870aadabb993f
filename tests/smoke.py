"""Smoke test of a running registry: the checks clients depend on, printed as a table.

Run it against a deployment (`make smoke URL=https://registry.example.com`) to prove on
the real API Gateway what the local gateway cannot: that HEAD answers keep their real
`Content-Length`, that redirects arrive as 307 with an absolute `Location` and no body,
that errors are the spec's JSON, and that a `Via` header reaches the function and comes
back (a request carrying the registry's own hop marker is refused as a loop). Exit status
1 when any check fails.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

ACCEPT = ",".join(
    [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TIMEOUT = 60


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Report:
    rows: list[tuple[str, bool, str]] = field(default_factory=list)

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.rows.append((name, bool(ok), detail))
        return bool(ok)

    def run(self, name: str, step: Callable[[], str]) -> None:
        try:
            self.check(name, True, step())
        except Exception as exc:  # a smoke test reports every failure, then moves on
            self.check(name, False, f"{type(exc).__name__}: {exc}")

    def print(self) -> bool:
        print("| check | result | detail |")
        print("| --- | --- | --- |")
        for name, ok, detail in self.rows:
            print(f"| {name} | {'ok' if ok else 'FAIL'} | {detail} |")
        return all(ok for _name, ok, _detail in self.rows)


def split(image: str) -> tuple[str, str]:
    repo, _, tag = image.rpartition(":")
    return (repo, tag) if repo and "/" not in tag else (image, "latest")


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def check_manifest(base: str, repo: str, tag: str) -> tuple[dict, str]:
    """GET and HEAD of one manifest agree; returns the manifest and its digest."""
    url = f"{base}/v2/{repo}/manifests/{tag}"
    get = requests.get(url, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
    expect(get.status_code == 200, f"GET {get.status_code}: {get.text[:200]}")
    digest = get.headers.get("Docker-Content-Digest", "")
    expect(digest == sha256(get.content), f"digest header {digest} != body {sha256(get.content)}")
    expect(get.headers.get("Content-Length") == str(len(get.content)), "GET Content-Length")
    head = requests.head(url, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
    expect(head.status_code == 200, f"HEAD {head.status_code}")
    expect(
        head.headers.get("Content-Length") == str(len(get.content)),
        f"HEAD Content-Length {head.headers.get('Content-Length')!r} != {len(get.content)}",
    )
    expect(head.headers.get("Docker-Content-Digest") == digest, "HEAD digest differs")
    expect(head.headers.get("Content-Type") == get.headers.get("Content-Type"), "HEAD type")
    return get.json(), digest


def single_manifest(base: str, repo: str, manifest: dict) -> dict:
    """The first image manifest: the manifest itself, or an index's first image entry."""
    if "manifests" not in manifest:
        return manifest
    entry = next(m for m in manifest["manifests"] if m.get("platform", {}).get("os") != "unknown")
    url = f"{base}/v2/{repo}/manifests/{entry['digest']}"
    response = requests.get(url, headers={"Accept": ACCEPT}, timeout=TIMEOUT)
    expect(response.status_code == 200, f"platform manifest {response.status_code}")
    return response.json()


def check_blob(base: str, repo: str, digest: str, size: int) -> str:
    url = f"{base}/v2/{repo}/blobs/{digest}"
    redirect = requests.get(url, allow_redirects=False, timeout=TIMEOUT)
    expect(redirect.status_code == 307, f"GET {redirect.status_code}, wanted 307")
    location = redirect.headers.get("Location", "")
    expect(location.startswith(("https://", "http://")), f"Location not absolute: {location!r}")
    expect(redirect.content == b"", "redirect has a body")
    expect(redirect.headers.get("Content-Length", "0") == "0", "redirect Content-Length")
    fetched = requests.get(location, timeout=TIMEOUT)
    expect(fetched.status_code == 200, f"Location answered {fetched.status_code}")
    expect(sha256(fetched.content) == digest, "bytes at Location do not match the digest")
    head = requests.head(url, allow_redirects=False, timeout=TIMEOUT)
    expect(head.status_code == 200, f"HEAD {head.status_code}, wanted 200")
    expect(head.headers.get("Content-Length") == str(size), "HEAD Content-Length")
    return location.split("?")[0]


def check_loop(base: str, repo: str, tag: str, hop: str) -> str:
    """A request carrying the registry's own `Via` entry is refused, and the refusal's
    `Via` names it: API Gateway passes the header to the function and back."""
    marker = f"1.1 {hop} (ociwrap)"
    url = f"{base}/v2/{repo}/manifests/{tag}"
    response = requests.get(url, headers={"Via": marker}, timeout=TIMEOUT)
    expect(
        response.status_code == 403,
        f"status {response.status_code}; is {hop} the registry's PUBLIC_HOSTNAME? (--hop)",
    )
    message = response.json()["errors"][0]["message"]
    expect(message.startswith("request loop"), f"message {message[:120]!r}")
    expect(marker in response.headers.get("Via", ""), "the refusal's Via does not name the hop")
    return "403 request loop, Via passed both ways"


def smoke(base: str, image: str, wrapper: str | None, hop: str | None = None) -> Report:
    report = Report()
    base = base.rstrip("/")

    def ping() -> str:
        response = requests.get(f"{base}/v2/", timeout=TIMEOUT)
        expect(response.status_code == 200, f"status {response.status_code}")
        version = response.headers.get("Docker-Distribution-API-Version")
        expect(version == "registry/2.0", f"API version header {version!r}")
        return "200, registry/2.0"

    report.run("GET /v2/", ping)
    repos = [split(image)]
    if wrapper:
        base_repo, base_tag = split(image)
        repos.append((f"wrap/{base_repo}/{base_tag}/with/{wrapper}", "latest"))
    for repo, tag in repos:
        found: dict = {}

        def manifests(repo: str = repo, tag: str = tag, found: dict = found) -> str:
            manifest, digest = check_manifest(base, repo, tag)
            found["manifest"] = single_manifest(base, repo, manifest)
            return f"{digest[:19]}…, HEAD length = GET length"

        report.run(f"manifest GET/HEAD {repo}:{tag}", manifests)
        if "manifest" in found:
            config = found["manifest"]["config"]
            report.run(
                f"config blob {repo}",
                lambda repo=repo, config=config: check_blob(
                    base, repo, config["digest"], config["size"]
                ),
            )

    def refuse_push() -> str:
        repo, _tag = split(image)
        response = requests.put(f"{base}/v2/{repo}/manifests/smoke", timeout=TIMEOUT)
        expect(response.status_code == 405, f"status {response.status_code}")
        expect(response.json()["errors"][0]["code"] == "UNSUPPORTED", "error code")
        return "405 UNSUPPORTED"

    report.run("PUT refused", refuse_push)
    loop_hop = hop or urlsplit(base).netloc
    report.run("loop refused", lambda: check_loop(base, *split(image), loop_hop))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the registry, e.g. https://registry.example.com")
    parser.add_argument("--image", default="library/busybox:latest", help="image to proxy")
    parser.add_argument(
        "--wrapper", help="also pull the image wrapped with this wrapper (path/tag form)"
    )
    parser.add_argument(
        "--hop",
        help="the registry's name in Via: its PUBLIC_HOSTNAME (the default is the URL's host)",
    )
    args = parser.parse_args(argv)
    report = smoke(args.url, args.image, args.wrapper, args.hop)
    return 0 if report.print() else 1


if __name__ == "__main__":
    sys.exit(main())
