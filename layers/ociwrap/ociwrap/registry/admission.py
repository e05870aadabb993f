"""Which upstream repositories a name may reach, decided once it is resolved.

Every name a client sends (a proxied repository, a wrap path's base and wrapper, a
container token's images) is resolved to upstream repositories in `service` and
`container_tokens`, and each of them passes here before anything is read, stored
or served for it: a repository on this registry's own public host is a request
loop, and with UPSTREAM_ALLOW only repositories its patterns match are allowed.
Both are `403 DENIED`, naming why.
"""

from __future__ import annotations

from collections.abc import Iterable

from ociwrap.image.recipes import Recipe
from ociwrap.names.allowlist import SETTING, allows
from ociwrap.names.reference import ImageRef, Repository
from ociwrap.runtime import errors, hops


class Admission:
    """The upstream repositories this deployment may read from."""

    def __init__(
        self, allow: tuple[str, ...] | None = None, public_hostname: str | None = None
    ) -> None:
        self.allow = allow  # None: any upstream
        self.public_hostname = public_hostname

    def repository(self, repo: Repository, what: str = "upstream repository") -> Repository:
        """`repo`, or `403 DENIED` when it is this registry itself or not allowed."""
        name = str(repo)
        if not repo.registry.trusted and hops.host_is_here(
            repo.registry.name, self.public_hostname
        ):
            raise errors.denied(
                f"request loop: {what} {name} is on this registry's own host "
                f"({self.public_hostname}, PUBLIC_HOSTNAME); name the image where it lives",
                detail={"repository": name},
            )
        if self.allow is not None and not allows(self.allow, name):
            raise errors.denied(
                f"{what} {name} is not allowed here: {SETTING} lists the upstream "
                "repositories this registry may pull from",
                detail={"repository": name},
            )
        return repo

    def images(self, base: ImageRef, wrappers: Iterable[ImageRef]) -> None:
        """Admit a wrapped image's base and wrappers (the first refusal is raised)."""
        self.repository(base.repository, "base image")
        for wrapper in wrappers:
            self.repository(wrapper.repository, "wrapper image")

    def recipe(self, recipe: Recipe) -> Recipe:
        self.images(recipe.base, recipe.wrappers)
        return recipe
