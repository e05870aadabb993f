"""Client for upstream registries: token auth, manifests, blob locations, tags.

Knows HTTP and the distribution spec, nothing of S3 (cf. go-containerregistry's
pkg/v1/remote). Anonymous Bearer tokens are fetched from the realm an upstream
names in `WWW-Authenticate` and reused while valid, across requests of a warm
Lambda. Blob requests never follow redirects: the caller hands the upstream's
signed `Location` to the client instead.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urljoin

import requests
import urllib3

from ociwrap import errors
from ociwrap.errors import RegistryError
from ociwrap.guard import make_session, refused_address
from ociwrap.mediatypes import OCI_MANIFEST, detect_media_type
from ociwrap.memcache import BoundedCache
from ociwrap.reference import Repository, is_digest

CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 20.0
MAX_MANIFEST_BYTES = 4 * 1024 * 1024
TOKEN_MARGIN_SECONDS = 10
DEFAULT_TOKEN_SECONDS = 60

_CHALLENGE_PARAM = re.compile(r'(\w+)\s*=\s*(?:"([^"]*)"|([^\s,]*))')


@dataclass(frozen=True)
class Manifest:
    """Manifest bytes exactly as served, with their media type and digest."""

    body: bytes
    media_type: str
    digest: str


@dataclass(frozen=True)
class Descriptor:
    """What a HEAD tells: media type, digest and size."""

    media_type: str
    digest: str
    size: int


class UpstreamBody:
    """An upstream response body as a file object whose failures are RegistryErrors.

    A time-out or reset while reading a body (not just while waiting for headers)
    must still be a 504/502 naming the upstream, also when boto3 is the reader.
    """

    def __init__(self, response: requests.Response, registry: str, decode: bool = False) -> None:
        self._response = response
        self._registry = registry
        self._decode = decode

    def read(self, amount: int | None = -1) -> bytes:
        try:
            return self._response.raw.read(
                None if amount is None or amount < 0 else amount, decode_content=self._decode
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            timeout = isinstance(exc, urllib3.exceptions.TimeoutError | TimeoutError)
            raise errors.upstream_unavailable(
                f"upstream registry {self._registry} "
                + ("timed out" if timeout else f"broke off ({type(exc).__name__})")
                + " while sending a body",
                timeout=timeout,
            ) from exc


@dataclass
class BlobResponse:
    """An upstream blob answer: a redirect target, or a streaming body to copy."""

    location: str | None = None
    response: requests.Response | None = None


def parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    """Split `Bearer realm="...",service="...",scope="..."` into scheme and params."""
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _CHALLENGE_PARAM.finditer(rest)
    }
    return scheme.lower(), params


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Upstream:
    """Talks to upstream registries on behalf of the service."""

    def __init__(
        self, connect_timeout: float = CONNECT_TIMEOUT, read_timeout: float = READ_TIMEOUT
    ) -> None:
        # Below API Gateway's 30 s, so a slow upstream is a clear 504, not a gateway time-out.
        self.timeout = (connect_timeout, read_timeout)
        self._sessions = {True: make_session(guarded=False), False: make_session(guarded=True)}
        # Bearer tokens by "realm|service|scope", kept until shortly before they expire,
        # and the token to try first for a repository, so warm requests skip the 401.
        self.tokens = BoundedCache(max_entries=1024)
        self._scope_tokens = BoundedCache(max_entries=1024)

    # -- transport ---------------------------------------------------------------

    def _session(self, repo: Repository) -> requests.Session:
        return self._sessions[repo.registry.trusted]

    def _send(
        self, repo: Repository, method: str, url: str, headers: dict[str, str], **kwargs: object
    ) -> requests.Response:
        """One HTTP request, with every transport failure turned into a RegistryError."""
        name = repo.registry.name
        try:
            return self._session(repo).request(
                method,
                url,
                headers=headers,
                timeout=self.timeout,
                allow_redirects=False,
                **kwargs,
            )
        except requests.Timeout as exc:
            raise errors.upstream_unavailable(
                f"upstream registry {name} timed out", detail={"url": url}, timeout=True
            ) from exc
        except requests.RequestException as exc:
            refused = refused_address(exc)
            if refused is not None:
                raise RegistryError(
                    "DENIED",
                    f"refusing to contact {refused.host} ({refused.address}) for {name}: not a "
                    "public address; name private registries in REGISTRY_ALIASES",
                    detail={"registry": name},
                ) from exc
            raise errors.upstream_unavailable(
                f"cannot reach upstream registry {name}: {type(exc).__name__}",
                detail={"url": url},
            ) from exc

    def request(
        self,
        repo: Repository,
        method: str,
        path: str,
        headers: dict[str, str] | None = None,
        **kwargs: object,
    ) -> requests.Response:
        """Request `path` of the repository's registry, doing the Bearer flow on a 401."""
        url = f"{repo.registry.url}/v2/{repo.path}/{path}"
        headers = dict(headers or {})
        key = self._scope_tokens.get(str(repo))
        token = self.tokens.get(key) if key else None
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = self._send(repo, method, url, headers, **kwargs)
        if response.status_code != 401:
            return response
        challenge = response.headers.get("WWW-Authenticate", "")
        scheme, params = parse_challenge(challenge)
        if scheme != "bearer" or "realm" not in params:
            return response
        response.close()
        token = self._fetch_token(repo, params)
        headers["Authorization"] = f"Bearer {token}"
        return self._send(repo, method, url, headers, **kwargs)

    def _fetch_token(self, repo: Repository, params: dict[str, str]) -> str:
        scope = params.get("scope") or f"repository:{repo.path}:pull"
        key = f"{params['realm']}|{params.get('service', '')}|{scope}"
        cached = self.tokens.get(key)
        if cached:
            self._scope_tokens.put(str(repo), key)
            return cached
        query = {"scope": scope}
        if params.get("service"):
            query["service"] = params["service"]
        response = self._send(repo, "GET", params["realm"], {}, params=query)
        if response.status_code != 200:
            raise errors.upstream_unavailable(
                f"token service of upstream registry {repo.registry.name} answered "
                f"{response.status_code}",
                detail={"realm": params["realm"]},
            )
        try:
            data = response.json()
            token = data.get("token") or data["access_token"]
            lifetime = float(data.get("expires_in") or DEFAULT_TOKEN_SECONDS)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise errors.upstream_unavailable(
                f"token service of upstream registry {repo.registry.name} sent no token"
            ) from exc
        self.tokens.put(key, token, ttl=max(lifetime - TOKEN_MARGIN_SECONDS, 1))
        self._scope_tokens.put(str(repo), key)
        return token

    def _fail(
        self,
        repo: Repository,
        response: requests.Response,
        what: str,
        unknown: Callable[..., RegistryError] = errors.name_unknown,
    ) -> RegistryError:
        """The RegistryError for an unexpected upstream status; `unknown` makes the 404."""
        status = response.status_code
        name = repo.registry.name
        if status == 404:
            return unknown(f"{what} not found upstream", detail={"repository": str(repo)})
        if status in (401, 403):
            return errors.name_unknown(
                f"upstream registry {name} refused access to {repo.path} (the repository does "
                "not exist or needs credentials)",
                detail={"repository": str(repo), "status": status},
            )
        if status == 429:
            return RegistryError(
                "TOOMANYREQUESTS",
                f"upstream registry {name} is rate limiting requests",
                detail={"repository": str(repo)},
            )
        return errors.upstream_unavailable(
            f"upstream registry {name} answered {status} for {what}",
            detail={"repository": str(repo), "status": status},
        )

    # -- manifests ---------------------------------------------------------------

    def get_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> Manifest:
        """GET a manifest; verify its digest when asked for by digest."""
        headers = {"Accept": ", ".join(accept)}
        response = self.request(repo, "GET", f"manifests/{ref}", headers, stream=True)
        with response:
            if response.status_code != 200:
                raise self._fail(
                    repo, response, f"manifest {ref} of {repo}", errors.manifest_unknown
                )
            body = UpstreamBody(response, repo.registry.name, decode=True).read(
                MAX_MANIFEST_BYTES + 1
            )
        if len(body) > MAX_MANIFEST_BYTES:
            raise errors.manifest_invalid(
                f"manifest {repo}:{ref} is larger than {MAX_MANIFEST_BYTES} bytes"
            )
        digest = sha256_digest(body)
        if is_digest(ref) and digest != ref:
            raise errors.upstream_unavailable(
                f"upstream registry {repo.registry.name} sent a manifest for {ref} whose "
                f"digest is {digest}",
                detail={"repository": str(repo)},
            )
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = {}
        content_type = response.headers.get("Content-Type", "")
        media_type = detect_media_type(parsed, content_type) or OCI_MANIFEST
        return Manifest(body=body, media_type=media_type, digest=digest)

    def head_manifest(self, repo: Repository, ref: str, accept: Iterable[str]) -> Descriptor | None:
        """HEAD a manifest; None when the upstream's answer lacks digest or length.

        Docker Hub does not count HEADs against pull limits, so tags are resolved
        this way and the manifest fetched by digest only when not already stored.
        """
        headers = {"Accept": ", ".join(accept)}
        response = self.request(repo, "HEAD", f"manifests/{ref}", headers)
        response.close()
        if response.status_code != 200:
            raise self._fail(repo, response, f"manifest {ref} of {repo}", errors.manifest_unknown)
        digest = response.headers.get("Docker-Content-Digest", "")
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        try:
            size = int(response.headers.get("Content-Length", ""))
        except ValueError:
            return None
        if not is_digest(digest) or not media_type or size <= 0:
            return None
        return Descriptor(media_type=media_type, digest=digest, size=size)

    # -- blobs -------------------------------------------------------------------

    def get_blob(self, repo: Repository, digest: str) -> BlobResponse:
        """GET a blob without following redirects: a Location, or a body to stream."""
        response = self.request(repo, "GET", f"blobs/{digest}", stream=True)
        if response.is_redirect:
            response.close()
            location = response.headers.get("Location", "")
            return BlobResponse(location=urljoin(response.url, location))
        if response.status_code == 200:
            return BlobResponse(response=response)
        response.close()
        raise self._fail(repo, response, f"blob {digest} of {repo}", errors.blob_unknown)

    def fetch_blob(self, repo: Repository, digest: str, max_bytes: int) -> bytes:
        """Read a small blob (an image config) into memory, following redirects, verified.

        Redirect targets are requested without our token and through the same
        guarded session, so a redirect cannot lead to an address a path could not.
        """
        answer = self.get_blob(repo, digest)
        response = answer.response
        for _hop in range(5):
            if response is not None:
                break
            assert answer.location is not None
            response = self._send(repo, "GET", answer.location, {}, stream=True)
            if response.is_redirect:
                response.close()
                answer = BlobResponse(location=urljoin(response.url, response.headers["Location"]))
                response = None
            elif response.status_code != 200:
                response.close()
                raise self._fail(repo, response, f"blob {digest} of {repo}", errors.blob_unknown)
        if response is None:
            raise errors.upstream_unavailable(f"too many redirects for blob {digest} of {repo}")
        with response:
            data = UpstreamBody(response, repo.registry.name).read(max_bytes + 1)
        if len(data) > max_bytes:
            raise errors.manifest_invalid(
                f"blob {digest} of {repo} is larger than {max_bytes} bytes; not an image config"
            )
        if sha256_digest(data) != digest:
            raise errors.upstream_unavailable(
                f"upstream registry {repo.registry.name} sent blob {digest} with digest "
                f"{sha256_digest(data)}"
            )
        return data

    def blob_size(self, repo: Repository, digest: str) -> int:
        """The size of a blob, from a HEAD (or the headers of its redirect target)."""
        response = self.request(repo, "HEAD", f"blobs/{digest}")
        response.close()
        if response.is_redirect:
            target = urljoin(response.url, response.headers.get("Location", ""))
            # A HEAD on a GET-signed URL is refused (the signature covers the method):
            # open a GET and read only its headers.
            redirected = self._send(repo, "GET", target, {}, stream=True)
            redirected.close()
            response = redirected
        if response.status_code != 200:
            raise self._fail(repo, response, f"blob {digest} of {repo}", errors.blob_unknown)
        try:
            return int(response.headers["Content-Length"])
        except (KeyError, ValueError) as exc:
            raise errors.upstream_unavailable(
                f"upstream registry {repo.registry.name} gave no size for blob {digest}"
            ) from exc

    # -- tags --------------------------------------------------------------------

    def list_tags(self, repo: Repository, query: dict[str, str]) -> tuple[list[str], str | None]:
        """Tags of a repository (one page) and the upstream's next `last`, if any."""
        response = self.request(repo, "GET", "tags/list", params=query)
        with response:
            if response.status_code != 200:
                raise self._fail(repo, response, f"repository {repo}")
            try:
                tags = response.json().get("tags") or []
            except ValueError as exc:
                raise errors.upstream_unavailable(
                    f"upstream registry {repo.registry.name} sent an invalid tag list"
                ) from exc
        next_last = None
        link = response.headers.get("Link", "")
        match = re.search(r"[?&]last=([^&>]+)", link)
        if match:
            next_last = requests.utils.unquote(match.group(1))
        return [str(tag) for tag in tags], next_last
