"""What a wrapped image is made of: a base, wrappers in order, and overrides (pure).

A wrap path names one wrapper and nothing else. A container token (see
`registry.token_requests`) can ask for more: a digest-pinned base, several wrappers,
an entrypoint, command, env, labels, working directory, user, a subset of
platforms. Both become a `Recipe`, and one composition path makes either; a
wrap path's recipe composes to exactly the bytes it always did.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ociwrap.names.reference import ImageRef, WrapName


@dataclass(frozen=True)
class Overrides:
    """What a token sets on the composed config, after the wrappers are applied."""

    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[tuple[str, str], ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    working_dir: str | None = None
    user: str | None = None
    platforms: tuple[str, ...] | None = None

    @property
    def empty(self) -> bool:
        return self == Overrides()


@dataclass(frozen=True)
class Recipe:
    """A wrapped image: served as `name`, its source records kept under `scope`."""

    name: str
    scope: str
    base: ImageRef
    wrappers: tuple[ImageRef, ...]
    overrides: Overrides = field(default_factory=Overrides)
    tag: str = "latest"

    @property
    def simple(self) -> bool:
        """One wrapper and nothing else: what a wrap path can say."""
        return len(self.wrappers) == 1 and self.overrides.empty

    @property
    def wrap_path(self) -> bool:
        """A wrap path's recipe (its records are the wrap's), not a container token's, even
        when the token asks for what a wrap path says."""
        return self.simple and self.scope == _scope(self.base, self.wrappers[0])


def from_wrap(wrap: WrapName) -> Recipe:
    return Recipe(wrap.name, wrap_scope(wrap), wrap.base, (wrap.wrapper,))


def _scope(base: ImageRef, wrapper: ImageRef) -> str:
    return hashlib.sha256(f"{base}|{wrapper}".encode()).hexdigest()[:40]


def wrap_scope(wrap: WrapName) -> str:
    """Identity of a wrap independent of how its names were spelled: the scope its
    source records are kept under."""
    return _scope(wrap.base, wrap.wrapper)
