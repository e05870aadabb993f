"""Manifests, blobs and tags of upstream registries, checked before anyone sees them.

The fetcher speaks the distribution API over the `Transport` (cf.
go-containerregistry's pkg/v1/remote) and hands back only what it verified:
manifest bytes within their limit, whose digest is computed here (and must equal
the one asked for), whose media type is an image manifest or index (from the
document itself when the upstream's `Content-Type` is generic); redirect
targets that are absolute http(s) URLs safe to put in a header; tag lists of
strings. Blob requests never follow redirects: a client gets the upstream's own
signed `Location`, once it passed the registry's address policy as the client would
read it (see `locations`); every other redirect (manifests, configs, sizes) is followed
here, through the guard. A blob body may be asked for from an offset (`Range`, to
continue a copy); a `206` counts only if its `Content-Range` starts exactly there and
runs to the blob's end, and a `200` is taken as the whole blob. Error bodies of
upstreams are never read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names.digest import is_digest, sha256_of
from ociwrap.names.mediatypes import OCI_INDEX, SCHEMA1_TYPES, SERVABLE_TYPES, detect_media_type
from ociwrap.names.reference import Repository, is_tag
from ociwrap.runtime import errors
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream import connection, locations
from ociwrap.upstream.bodies import declared_length, iter_body, plain_length, range_end, read_body
from ociwrap.upstream.interface import Blob, Manifest, Upstream
from ociwrap.upstream.tokens import refused_login, wants_login
from ociwrap.upstream.transport import Transport, policy_of

MAX_MANIFEST_BYTES = 4 * 1024 * 1024
MAX_TAG_LIST_BYTES = 4 * 1024 * 1024
MAX_LOCATION_LENGTH = 8192
#: Printable ASCII only: what may go into a header we send to a client.
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")
#: `Retry-After` as passed on: delay-seconds or an HTTP-date (RFC 9110 §10.2.3), nothing else.
_RETRY_AFTER = re.compile(r"[A-Za-z0-9 ,:]{1,40}")
IDENTITY = {"Accept-Encoding": "identity"}


class ResponseBody:
    """A blob answer's body, streamed from the open response (a `BlobBody`)."""

    def __init__(self, response: requests.Response, registry: str) -> None:
        self.response = response
        self.registry = registry

    def chunks(self, limit: int, too_large: Callable[[], RegistryError]) -> Iterator[bytes]:
        return iter_body(self.response, limit, "blob", self.registry, too_large)

    def close(self) -> None:
        self.response.close()


def manifest_media_type(body: bytes, content_type: str, registry: str) -> str:
    """The media type of manifest bytes, refusing anything but image manifests and indexes."""
    try:
        document = parse_json(body)
    except DocumentError as exc:
        raise errors.upstream_unavailable(
            f"upstream registry {registry} sent a manifest that is {exc}",
            detail={"registry": registry},
        ) from exc
    media_type = detect_media_type(document if isinstance(document, dict) else {}, content_type)
    if media_type in SERVABLE_TYPES:
        return media_type
    if media_type in SCHEMA1_TYPES:
        raise errors.manifest_invalid(
            "invalid upstream image format",
            detail={"registry": registry, "reason": "Docker schema 1 manifests are not supported"},
        )
    raise errors.upstream_unavailable(
        f"upstream registry {registry} sent a document of media type {media_type[:80]!r} "
        "where an image manifest or index belongs",
        detail={"registry": registry},
    )


def redirect_target(response: requests.Response, registry: str) -> str:
    """The absolute `Location` of a redirect, refused unless it is a header-safe http(s) URL."""
    raw = response.headers.get("Location", "")
    location = urljoin(response.url, raw) if _HEADER_SAFE.fullmatch(raw) else ""
    if len(location) > MAX_LOCATION_LENGTH or urlsplit(location).scheme not in ("http", "https"):
        raise errors.upstream_unavailable(
            f"upstream registry {registry} sent an invalid redirect",
            detail={"registry": registry},
        )
    return location


def handed_out(location: str, repo: Repository, digest: str) -> str:
    """A blob's redirect target, refused (403) unless a client may be sent there: it goes
    to the client unfollowed, so no connection guard would ever see it."""
    name = repo.registry.name
    refused = locations.refusal(location, policy_of(repo.registry), connection.resolve)
    if refused is not None:
        raise errors.denied(
            f"upstream registry {name} redirected blob {digest} to {refused}; "
            "the redirect is not passed on",
            detail={"registry": name, "digest": digest},
        )
    return location


def failure(
    repo: Repository,
    response: requests.Response,
    what: str,
    unknown: Callable[..., RegistryError] = errors.name_unknown,
) -> RegistryError:
    """The RegistryError for an unexpected upstream status; `unknown` makes the 404."""
    response.close()
    status = response.status_code
    name = repo.registry.name
    if status == 404:
        return unknown(f"{what} not found upstream", detail={"repository": str(repo)})
    if status in (401, 403):
        if response.request.headers.get("Authorization", "").startswith("Basic "):
            return refused_login(name, status)
        return wants_login(repo, status)
    if status == 429:
        retry_after = response.headers.get("Retry-After", "").strip()
        return errors.too_many_requests(
            f"upstream registry {name} is rate limiting requests",
            retry_after if _RETRY_AFTER.fullmatch(retry_after) else None,
        )
    return errors.upstream_unavailable(
        f"upstream registry {name} answered {status} for {what}",
        detail={"repository": str(repo), "status": status},
    )


class Fetcher(Upstream):
    """Reads manifests, blobs and tags from upstream registries (the `Upstream`)."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    # -- manifests ---------------------------------------------------------------

    def head_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> str | None:
        """The digest `ref` points to, from a HEAD; None when the HEAD does not tell.

        Docker Hub does not count HEADs against pull limits. An upstream that
        refuses HEAD (405), fails it (5xx), redirects it or answers without a
        digest gets a GET instead. The digest is a claim: callers must fetch
        and verify the bytes before remembering it.
        """
        headers = {"Accept": ", ".join(accept)}
        response = self.transport.request(repo, "HEAD", f"manifests/{ref}", headers)
        response.close()
        status = response.status_code
        if status == 200:
            digest = response.headers.get("Docker-Content-Digest", "")
            return digest if is_digest(digest) else None
        if status == 405 or status >= 500 or response.is_redirect:
            return None
        raise failure(repo, response, f"manifest {ref} of {repo}", errors.manifest_unknown)

    def get_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> Manifest:
        """GET a manifest (redirects followed through the guard) and verify it."""
        headers = {"Accept": ", ".join(accept)}
        response = self.transport.request(
            repo, "GET", f"manifests/{ref}", headers, allow_redirects=True
        )
        if response.status_code != 200:
            raise failure(repo, response, f"manifest {ref} of {repo}", errors.manifest_unknown)
        name = repo.registry.name
        body = read_body(response, MAX_MANIFEST_BYTES, "manifest", name)
        digest = sha256_of(body)
        if is_digest(ref) and digest != ref:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent a manifest for {ref} whose digest is {digest}",
                detail={"repository": str(repo)},
            )
        media_type = manifest_media_type(body, response.headers.get("Content-Type", ""), name)
        return Manifest(body=body, media_type=media_type, digest=digest)

    # -- blobs -------------------------------------------------------------------

    def blob(self, repo: Repository, digest: str, start: int = 0) -> Blob:
        """GET a blob without following redirects: a Location, or a body to stream.

        With `start`, its bytes from there on are asked for (`Range`); an upstream that
        ignores ranges answers `200` with all of them, which the caller must expect.
        """
        headers = {**IDENTITY, "Range": f"bytes={start}-"} if start else IDENTITY
        response = self.transport.request(repo, "GET", f"blobs/{digest}", headers)
        name = repo.registry.name
        if response.is_redirect:
            return Blob(location=handed_out(redirect_target(response, name), repo, digest))
        try:
            if response.status_code == 200:
                size = plain_length(response, name)
                return Blob(body=ResponseBody(response, name), size=size)
            if response.status_code == 206 and start:
                size = range_end(response, name, start)
                return Blob(body=ResponseBody(response, name), start=start, size=size)
        except RegistryError:
            response.close()
            raise
        raise failure(repo, response, f"blob {digest} of {repo}", errors.blob_unknown)

    def blob_size(self, repo: Repository, digest: str) -> int:
        """The size of a blob, from a HEAD (or the headers of its redirect target)."""
        name = repo.registry.name
        response = self.transport.request(repo, "HEAD", f"blobs/{digest}", IDENTITY)
        response.close()
        if response.is_redirect:
            # A HEAD on a GET-signed URL is refused (the signature covers the method):
            # open a GET and read only its headers.
            target = redirect_target(response, name)
            response = self.transport.send(repo.registry, "GET", target, headers=IDENTITY)
            response.close()
        if response.status_code != 200:
            raise failure(repo, response, f"blob {digest} of {repo}", errors.blob_unknown)
        size = declared_length(response, name)
        if size is None:
            raise errors.upstream_unavailable(
                f"upstream registry {name} gave no size for blob {digest}"
            )
        return size

    def small_blob(self, repo: Repository, digest: str, limit: int, what: str) -> bytes:
        """A small blob (an image config) in memory, redirects followed, digest verified."""
        response = self.transport.request(
            repo, "GET", f"blobs/{digest}", IDENTITY, allow_redirects=True
        )
        if response.status_code != 200:
            raise failure(repo, response, f"{what} {digest} of {repo}", errors.blob_unknown)
        name = repo.registry.name
        data = read_body(response, limit, what, name)
        if sha256_of(data) != digest:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent {what} {digest} with digest {sha256_of(data)}"
            )
        return data

    # -- referrers ---------------------------------------------------------------

    def referrers(self, repo: Repository, digest: str) -> Any | None:
        """The upstream's referrers index of `digest` (parsed, bounded), or None when it
        has no referrers API (404), as registries before distribution-spec 1.1."""
        response = self.transport.request(
            repo,
            "GET",
            f"referrers/{digest}",
            {"Accept": OCI_INDEX},
            allow_redirects=True,
        )
        if response.status_code == 404:
            response.close()
            return None
        if response.status_code != 200:
            raise failure(repo, response, f"referrers of {digest} in {repo}")
        name = repo.registry.name
        body = read_body(response, MAX_MANIFEST_BYTES, "referrers index", name)
        try:
            return parse_json(body)
        except DocumentError as exc:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent a referrers index that is {exc}"
            ) from exc

    # -- tags --------------------------------------------------------------------

    def tags(
        self, repo: Repository, n: int | None, last: str | None
    ) -> tuple[list[str], str | None]:
        """One page of tags and the upstream's next `last`, if it paginates.

        Entries must be strings; strings that are no valid tag (and so could not
        be pulled, or could smuggle characters into a `Link`) are left out.
        """
        name = repo.registry.name
        params = {"n": str(n)} if n is not None else {}
        if last:
            params["last"] = last
        response = self.transport.request(
            repo, "GET", "tags/list", params=params, allow_redirects=True
        )
        if response.status_code != 200:
            raise failure(repo, response, f"repository {repo}")
        body = read_body(response, MAX_TAG_LIST_BYTES, "tag list", name)
        try:
            document = parse_json(body)
        except DocumentError as exc:
            raise errors.upstream_unavailable(
                f"upstream registry {name} sent a tag list that is {exc}"
            ) from exc
        tags = document.get("tags") if isinstance(document, dict) else None
        if tags is None and isinstance(document, dict):
            tags = []
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise errors.upstream_unavailable(f"upstream registry {name} sent an invalid tag list")
        following = response.links.get("next", {}).get("url", "")
        next_last = parse_qs(urlsplit(following).query).get("last", [None])[0]
        return [tag for tag in tags if is_tag(tag)], next_last
