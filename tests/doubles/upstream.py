"""Upstream registries in memory: the `Upstream` interface without sockets.

Repositories (by path, whatever registry name reaches them) hold manifests by tag and
digest, blobs, tag lists and referrers; `calls` counts what the registry asked (so a
test can count upstream requests per pull); `fail` scripts answers an HTTP upstream
would give (a status the fetcher turns into its errors, or any exception to raise, such
as a deadline), `locations` scripts blob redirects, and `before` runs at the start of
every call (to hold one back). Each call counts as one upstream request in the request's
telemetry, failed when it fails with a 5xx or an exception (the HTTP adapter counts every
request it sends, tokens and retries too). What it hands out is verified as the fetcher verifies it:
manifests against the digest asked for and their media type, small blobs against theirs.
Tests whose subject is the HTTP edge itself (redirect rules, bodies, time-outs of sockets)
use the scripted upstream on 127.0.0.1 instead.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ociwrap.names.digest import is_digest
from ociwrap.names.reference import Repository, is_tag
from ociwrap.runtime import errors, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.bodies import over_limit
from ociwrap.upstream.fetch import manifest_media_type
from ociwrap.upstream.interface import Blob, Manifest, Upstream
from ociwrap.upstream.tokens import wants_login

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CHUNK = 64 * 1024


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Call:
    """One request of the registry: the operation, repository path and reference."""

    operation: str
    path: str
    ref: str


def answered(status: int, repo: Repository, what: str, unknown: Callable[..., RegistryError]):
    """The error the fetcher makes of an upstream's `status`."""
    name = repo.registry.name
    if status == 404:
        return unknown(f"{what} not found upstream", detail={"repository": str(repo)})
    if status in (401, 403):
        return wants_login(repo, status)
    if status == 429:
        return errors.too_many_requests(f"upstream registry {name} is rate limiting requests")
    return errors.upstream_unavailable(
        f"upstream registry {name} answered {status} for {what}",
        detail={"repository": str(repo), "status": status},
    )


class MemoryBody:
    """A blob body from bytes; `closed` says whether the registry let go of it. With a
    `cut` (bytes sent, then what to raise) it fails part-way, as a body whose upstream
    stalled past the deadline or hung up does."""

    def __init__(self, data: bytes, cut: tuple[int, BaseException] | None = None) -> None:
        self.data = data
        self.cut = cut
        self.closed = False

    def chunks(self, limit: int, too_large: Callable[[], RegistryError]) -> Iterator[bytes]:
        if len(self.data) > limit:
            raise too_large()
        end = len(self.data) if self.cut is None else self.cut[0]
        for at in range(0, end, CHUNK):
            yield self.data[at : min(at + CHUNK, end)]
        if self.cut is not None:
            raise self.cut[1]

    def close(self) -> None:
        self.closed = True


class MemoryUpstream(Upstream):
    """Repositories in dicts; see the module docstring."""

    def __init__(self) -> None:
        #: (path, tag or digest) -> (manifest bytes, the Content-Type it is served with)
        self.manifests: dict[tuple[str, str], tuple[bytes, str]] = {}
        #: (path, tag) -> the digest a HEAD claims (None: the HEAD tells nothing)
        self.heads: dict[tuple[str, str], str | None] = {}
        self.blobs: dict[tuple[str, str], bytes] = {}
        self.locations: dict[tuple[str, str], str] = {}
        self.tag_lists: dict[str, list[str]] = {}
        self.referrer_indexes: dict[tuple[str, str], Any] = {}
        #: (operation or "*", path or "*") -> a status or an exception
        self.failures: dict[tuple[str, str], int | BaseException] = {}
        self.ranges = True  # blob bodies honour a start offset
        #: blob bodies send this many bytes, then raise this (see MemoryBody)
        self.cut: tuple[int, BaseException] | None = None
        self.declares_size = True
        self.calls: list[Call] = []
        self.before: Callable[[Call], None] | None = None
        self.bodies: list[MemoryBody] = []
        self._lock = threading.Lock()

    # -- content -------------------------------------------------------------------

    def push(self, path: str, body: bytes, *tags: str, media_type: str = OCI_MANIFEST) -> str:
        """A manifest under its digest and `tags`; its digest."""
        digest = digest_of(body)
        for ref in (digest, *tags):
            self.manifests[path, ref] = (body, media_type)
        return digest

    def serve_paths(self, routes: dict[str, bytes]) -> None:
        """Content given as the scripted upstream's paths (`/v2/<path>/manifests/<ref>`,
        `/v2/<path>/blobs/<digest>`), e.g. `scripted_upstream.one_layer_image`."""
        for route, body in routes.items():
            path, kind, ref = route.removeprefix("/v2/").rsplit("/", 2)
            if kind == "manifests":
                self.manifests[path, ref] = (body, OCI_MANIFEST)
            else:
                self.blobs[path, ref] = body

    def fail(self, failure: int | BaseException, operation: str = "*", path: str = "*") -> None:
        """Answer `operation` (a method name, or every one) on `path` with `failure`."""
        self.failures[operation, path] = failure

    def recover(self) -> None:
        self.failures.clear()

    def count(self, operation: str, ref: str | None = None) -> int:
        return sum(
            1
            for call in self.calls
            if call.operation == operation and (ref is None or call.ref == ref)
        )

    def _call(self, operation: str, repo: Repository, ref: str) -> Call:
        call = Call(operation, repo.path, ref)
        with self._lock:
            self.calls.append(call)
        if self.before is not None:
            self.before(call)
        failure = next(
            (
                self.failures[key]
                for key in ((operation, repo.path), (operation, "*"), ("*", repo.path), ("*", "*"))
                if key in self.failures
            ),
            None,
        )
        failed = isinstance(failure, BaseException) or (failure or 0) >= 500
        telemetry.upstream_call(repo.registry.name, time.perf_counter(), failed=failed)
        if isinstance(failure, BaseException):
            raise failure
        if failure is not None and failure != 200:
            self._raise(failure, operation, repo, ref)
        return call

    def _raise(self, status: int, operation: str, repo: Repository, ref: str) -> Call:
        unknown = {
            "head_manifest": errors.manifest_unknown,
            "get_manifest": errors.manifest_unknown,
            "blob": errors.blob_unknown,
            "blob_size": errors.blob_unknown,
            "small_blob": errors.blob_unknown,
        }.get(operation, errors.name_unknown)
        what = f"manifest {ref} of {repo}" if "manifest" in operation else f"{ref} of {repo}"
        raise answered(status, repo, what, unknown)

    # -- the interface -------------------------------------------------------------

    def head_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> str | None:
        self._call("head_manifest", repo, ref)
        if (repo.path, ref) in self.heads:
            return self.heads[repo.path, ref]
        found = self.manifests.get((repo.path, ref))
        if found is None:
            raise answered(404, repo, f"manifest {ref} of {repo}", errors.manifest_unknown)
        return digest_of(found[0])

    def get_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> Manifest:
        self._call("get_manifest", repo, ref)
        found = self.manifests.get((repo.path, ref))
        if found is None:
            raise answered(404, repo, f"manifest {ref} of {repo}", errors.manifest_unknown)
        body, content_type = found
        name = repo.registry.name
        digest = digest_of(body)
        if is_digest(ref) and digest != ref:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent a manifest for {ref} whose digest is {digest}",
                detail={"repository": str(repo)},
            )
        return Manifest(body, manifest_media_type(body, content_type, name), digest)

    def blob(self, repo: Repository, digest: str, start: int = 0) -> Blob:
        self._call("blob", repo, digest)
        location = self.locations.get((repo.path, digest))
        if location is not None:
            return Blob(location=location)
        data = self._blob(repo, digest)
        size = len(data) if self.declares_size else None
        if start and self.ranges:
            body = MemoryBody(data[start:], self.cut)
            self.bodies.append(body)
            return Blob(body=body, start=start, size=size)
        body = MemoryBody(data, self.cut)
        self.bodies.append(body)
        return Blob(body=body, size=size)

    def _blob(self, repo: Repository, digest: str) -> bytes:
        data = self.blobs.get((repo.path, digest))
        if data is None:
            raise answered(404, repo, f"blob {digest} of {repo}", errors.blob_unknown)
        return data

    def blob_size(self, repo: Repository, digest: str) -> int:
        self._call("blob_size", repo, digest)
        return len(self._blob(repo, digest))

    def small_blob(self, repo: Repository, digest: str, limit: int, what: str) -> bytes:
        self._call("small_blob", repo, digest)
        data = self._blob(repo, digest)
        name = repo.registry.name
        if len(data) > limit:
            raise over_limit(name, what, limit)
        if digest_of(data) != digest:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent {what} {digest} with digest {digest_of(data)}"
            )
        return data

    def referrers(self, repo: Repository, digest: str) -> Any | None:
        self._call("referrers", repo, digest)
        found = self.referrer_indexes.get((repo.path, digest))
        return None if found is None else json.loads(json.dumps(found))

    def tags(
        self, repo: Repository, n: int | None, last: str | None
    ) -> tuple[list[str], str | None]:
        self._call("tags", repo, last or "")
        listed = self.tag_lists.get(repo.path)
        if listed is None:
            raise answered(404, repo, f"repository {repo}", errors.name_unknown)
        after = listed[listed.index(last) + 1 :] if last in listed else listed
        page = after if n is None else after[:n]
        following = page[-1] if n is not None and len(after) > n else None
        return [tag for tag in page if is_tag(tag)], following
