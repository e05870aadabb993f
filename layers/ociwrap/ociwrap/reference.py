"""Image names: repositories, registries, digests, tags and wrap paths.

Pure parsing, no I/O (cf. go-containerregistry's pkg/name). A repository name
in a request path is resolved the way docker resolves a reference: the first
component is a registry host when it contains a `.`, is `localhost`, or is a
configured alias; otherwise the image lives on Docker Hub, and single-component
names get `library/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ociwrap.errors import digest_invalid, name_invalid

DOCKER_HUB = "docker.io"
DOCKER_HUB_URL = "https://registry-1.docker.io"
_DOCKER_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

MAX_NAME_LENGTH = 255
_COMPONENT = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$")
_HOST = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"^sha256:[a-f0-9]{64}$")
_PIN = re.compile(r"^sha256-([a-f0-9]{64})$")

WRAP_PREFIX = "wrap/"
WRAP_SEPARATOR = "/with/"


@dataclass(frozen=True)
class Registry:
    """An upstream registry: the name users write, where it is, and whether it is trusted.

    Only aliases from REGISTRY_ALIASES are trusted: they may be plain HTTP and may
    live on private or loopback addresses. Hosts spelled in a path must be public.
    """

    name: str
    url: str
    trusted: bool = False


@dataclass(frozen=True)
class Repository:
    """A repository on a registry, e.g. docker.io + library/busybox."""

    registry: Registry
    path: str

    def __str__(self) -> str:
        return f"{self.registry.name}/{self.path}"


@dataclass(frozen=True)
class ImageRef:
    """A repository plus a tag or a digest (a digest pin wins over any tag)."""

    repository: Repository
    tag: str | None = None
    digest: str | None = None

    @property
    def reference(self) -> str:
        """What to put after /manifests/ upstream."""
        return self.digest or self.tag or "latest"

    def __str__(self) -> str:
        if self.digest:
            return f"{self.repository}@{self.digest}"
        return f"{self.repository}:{self.tag or 'latest'}"


@dataclass(frozen=True)
class WrapName:
    """`wrap/<base>/with/<wrapper>`: the two images a wrapped repository is made of."""

    name: str
    base: ImageRef
    wrapper: ImageRef


def is_digest(ref: str) -> bool:
    return bool(_DIGEST.match(ref))


def check_digest(ref: str) -> str:
    """Return `ref` if it is a sha256 digest, else raise DIGEST_INVALID."""
    if not is_digest(ref):
        raise digest_invalid(
            f"invalid digest {ref!r}: expected sha256:<64 lowercase hex characters>",
            detail={"digest": ref},
        )
    return ref


def check_reference(ref: str) -> str:
    """Return a manifest reference (tag or digest) or raise."""
    if ref.startswith("sha256:") or ":" in ref:
        return check_digest(ref)
    if not _TAG.match(ref):
        raise name_invalid(f"invalid tag {ref!r}", detail={"tag": ref})
    return ref


def _check_components(name: str, components: list[str]) -> None:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise name_invalid(
            f"invalid repository name {name!r}: must be 1 to {MAX_NAME_LENGTH} characters",
            detail={"name": name},
        )
    for component in components:
        if not _COMPONENT.match(component):
            raise name_invalid(
                f"invalid repository name {name!r}: component {component!r} must be lowercase "
                "letters and digits separated by '.', '_', '__' or '-'",
                detail={"name": name},
            )


def resolve_repository(name: str, aliases: dict[str, str]) -> Repository:
    """Resolve a path-style name (`alias/x`, `ghcr.io/a/b`, `busybox`) to a Repository."""
    components = name.split("/")
    first = components[0]
    if len(components) > 1 and first in aliases:
        registry = Registry(name=first, url=aliases[first], trusted=True)
        rest = components[1:]
    elif len(components) > 1 and ("." in first or first == "localhost"):
        if not _HOST.match(first):
            raise name_invalid(
                f"invalid registry host {first!r} in {name!r}", detail={"name": name}
            )
        if first in _DOCKER_HUB_NAMES:
            registry = Registry(name=DOCKER_HUB, url=DOCKER_HUB_URL)
        else:
            registry = Registry(name=first, url=f"https://{first}")
        rest = components[1:]
    else:
        registry = Registry(name=DOCKER_HUB, url=DOCKER_HUB_URL)
        rest = components
    _check_components(name, rest)
    if registry.name == DOCKER_HUB and len(rest) == 1:
        rest = ["library", *rest]
    return Repository(registry=registry, path="/".join(rest))


def parse_image_path(path: str, aliases: dict[str, str]) -> ImageRef:
    """Parse a wrap-path image (`ubuntu/22.04`, `ghcr.io/acme/tool/sha256-<hex>`).

    The last component is the tag, or a digest pin written `sha256-<hex>` because
    `:` and `@` cannot appear in a repository name.
    """
    repo_part, _, last = path.rpartition("/")
    if not repo_part or not last:
        raise name_invalid(
            f"invalid image {path!r} in wrap name: write it as <repository>/<tag>, "
            "e.g. ubuntu/22.04 or ghcr.io/acme/tool/v1",
            detail={"image": path},
        )
    repository = resolve_repository(repo_part, aliases)
    pin = _PIN.match(last)
    if pin:
        return ImageRef(repository=repository, digest=f"sha256:{pin.group(1)}")
    return ImageRef(repository=repository, tag=check_reference(last))


def parse_wrap_name(name: str, aliases: dict[str, str]) -> WrapName | None:
    """Parse `wrap/<base>/with/<wrapper>`; None when `name` is not a wrap name."""
    if not name.startswith(WRAP_PREFIX):
        return None
    rest = name[len(WRAP_PREFIX) :]
    base, sep, wrapper = rest.partition(WRAP_SEPARATOR)
    if not sep:
        raise name_invalid(
            f"invalid wrap name {name!r}: expected wrap/<base-image>/<tag>/with/"
            "<wrapper-image>/<tag>",
            detail={"name": name},
        )
    if len(name) > MAX_NAME_LENGTH:
        raise name_invalid(
            f"wrap name is {len(name)} characters, over the {MAX_NAME_LENGTH} clients allow",
            detail={"name": name},
        )
    return WrapName(
        name=name,
        base=parse_image_path(base, aliases),
        wrapper=parse_image_path(wrapper, aliases),
    )


@dataclass(frozen=True)
class Route:
    """A parsed `/v2/...` request path."""

    kind: str  # "ping", "manifests", "blobs", "tags", "catalog"
    name: str = ""
    ref: str = ""


_ROUTE = re.compile(r"^/v2/(?P<name>.+)/(?P<kind>manifests|blobs)/(?P<ref>[^/]+)$")
_TAGS = re.compile(r"^/v2/(?P<name>.+)/tags/list$")


def parse_route(path: str) -> Route | None:
    """Split a request path into name and reference; None if it is no registry route."""
    if path in ("/v2", "/v2/"):
        return Route("ping")
    if path.rstrip("/") == "/v2/_catalog":
        return Route("catalog")
    match = _ROUTE.match(path)
    if match:
        return Route(match["kind"], match["name"], match["ref"])
    match = _TAGS.match(path)
    if match:
        return Route("tags", match["name"])
    return None
