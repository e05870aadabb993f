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

from ociwrap.names import digest
from ociwrap.runtime.errors import manifest_unknown, name_invalid

DOCKER_HUB = "docker.io"
DOCKER_HUB_URL = "https://registry-1.docker.io"
_DOCKER_HUB_NAMES = {"docker.io", "index.docker.io", "registry-1.docker.io"}

MAX_NAME_LENGTH = 255
_COMPONENT = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")

#: Wrapped names: `wrap/<base>/with/<wrapper>` and container token images,
#: `wt/<token>/<base repository>`.
WRAP_PREFIX = "wrap/"
WRAP_SEPARATOR = "/with/"
TOKEN_PREFIX = "wt/"
#: How a wrap path is written, for messages that say so.
WRAP_FORM = f"{WRAP_PREFIX}<base-image>/<tag>{WRAP_SEPARATOR}<wrapper-image>/<tag>"


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


def is_tag(ref: str) -> bool:
    return bool(_TAG.fullmatch(ref))


def check_reference(ref: str) -> str:
    """Return a manifest reference (tag or digest), or raise.

    Something with a `:` is meant as a digest, so a malformed one is 400
    DIGEST_INVALID; anything else that is no valid tag cannot name a manifest,
    which the distribution spec (and its conformance suite) answers with 404.
    """
    if ":" in ref:
        return digest.check_digest(ref)
    if not is_tag(ref):
        raise manifest_unknown(
            f"manifest reference {ref!r} is neither a valid tag nor a digest",
            detail={"reference": ref},
        )
    return ref


def _check_components(name: str, components: list[str]) -> None:
    if not name or len(name) > MAX_NAME_LENGTH:
        raise name_invalid(
            f"invalid repository name {name!r}: must be 1 to {MAX_NAME_LENGTH} characters",
            detail={"name": name},
        )
    for component in components:
        if not _COMPONENT.fullmatch(component):
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
        if not _HOST.fullmatch(first):
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
    pinned = digest.from_pin(last)
    if pinned:
        return ImageRef(repository=repository, digest=pinned)
    if not is_tag(last):
        raise name_invalid(
            f"invalid tag {last!r} in wrap name: the last component of an image is its tag "
            "or a sha256-<hex> pin",
            detail={"image": path},
        )
    return ImageRef(repository=repository, tag=last)


def token_image_name(token: str, repository: str) -> str:
    """The name a container token's image is pulled under."""
    return f"{TOKEN_PREFIX}{token}/{repository}"


def parse_token_name(name: str) -> tuple[str, str] | None:
    """(token, base repository) of `wt/<token>/<repository>`; None for other names."""
    if not name.startswith(TOKEN_PREFIX):
        return None
    token, _, repository = name[len(TOKEN_PREFIX) :].partition("/")
    return token, repository


def is_wrap_path(name: str) -> bool:
    return name.startswith(WRAP_PREFIX)


def parse_wrap_name(name: str, aliases: dict[str, str]) -> WrapName | None:
    """Parse `wrap/<base>/with/<wrapper>`; None when `name` is not a wrap name."""
    if not name.startswith(WRAP_PREFIX):
        return None
    rest = name[len(WRAP_PREFIX) :]
    base, sep, wrapper = rest.partition(WRAP_SEPARATOR)
    if not sep:
        raise name_invalid(
            f"invalid wrap name {name!r}: expected {WRAP_FORM}",
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


def parse_docker_reference(text: str, aliases: dict[str, str]) -> ImageRef:
    """Parse a reference as docker writes it: `ubuntu:22.04`, `ghcr.io/a/b@sha256:<hex>`,
    `alias/repo:tag` (the tag defaults to `latest`; a digest wins over a tag).

    The repository part is resolved like any name here (hosts, aliases, Docker Hub);
    a registry port cannot be written (repository names have no `:`): use an alias.
    """
    if not isinstance(text, str) or not text or len(text) > 2 * MAX_NAME_LENGTH:
        raise name_invalid("expected an image reference such as ubuntu:22.04")
    name, at, pinned = text.partition("@")
    if at:
        digest.check_digest(pinned)
    repository, colon, tag = name.rpartition(":") if ":" in name else (name, "", "")
    if colon and "/" in tag:  # `host:port/repo`: the colon is a port, not a tag
        raise name_invalid(
            f"invalid image {text!r}: registry ports cannot be named; configure an alias in "
            "REGISTRY_ALIASES",
            detail={"image": text},
        )
    if colon and not is_tag(tag):
        raise name_invalid(f"invalid tag {tag!r} in {text!r}", detail={"image": text})
    resolved = resolve_repository(repository, aliases)
    if at:
        return ImageRef(repository=resolved, digest=pinned)
    return ImageRef(repository=resolved, tag=tag or "latest")


def repository_of(text: str) -> str:
    """The repository part of a docker reference as written (no tag, no digest)."""
    name = text.partition("@")[0]
    head, colon, tail = name.rpartition(":")
    return head if colon and "/" not in tail else name
