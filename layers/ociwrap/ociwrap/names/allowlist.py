"""UPSTREAM_ALLOW: the upstream repositories this registry may read (pure).

Patterns are matched against a name after it was resolved, as ociwrap names an
upstream repository: `docker.io/library/busybox`, `ghcr.io/acme/tool`, and for an
alias its name as registry, `local/team/app`. `*` and `?` stay within one path
component (`docker.io/library/*` matches `docker.io/library/busybox`, not
`docker.io/library/a/b`); `**` matches across components (`ghcr.io/acme/**` is
everything below `ghcr.io/acme/`). A pattern without `/` names a whole registry
(`local` is `local/**`). Docker Hub is spelled `docker.io`, and a one-component
Hub repository gets `library/` as names do (`docker.io/busybox` is
`docker.io/library/busybox`).

Names come from clients and patterns from the operator, so matching runs the
pattern as a set of states over the name, once per character: time linear in the
name for a given pattern, whatever either contains (no backtracking).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

SETTING = "UPSTREAM_ALLOW"
MAX_PATTERN = 512
_PATTERN = re.compile(r"[a-z0-9._\-/*?]+")
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")
_STAR, _GLOBSTAR, _ONE = "*", "**", "?"


def _tokens(pattern: str) -> list[str]:
    """The pattern as tokens: `**`, `*`, `?` or one literal character."""
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern.startswith(_GLOBSTAR, i):
            tokens.append(_GLOBSTAR)
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return tokens


def _closure(states: set[int], tokens: list[str]) -> set[int]:
    """States reachable without reading a character: a star may match nothing."""
    todo = list(states)
    while todo:
        state = todo.pop()
        if state < len(tokens) and tokens[state] in (_STAR, _GLOBSTAR) and state + 1 not in states:
            states.add(state + 1)
            todo.append(state + 1)
    return states


def glob_match(pattern: str, name: str) -> bool:
    """Whether `name` matches `pattern` in whole (see the module's notes on the syntax)."""
    tokens = _tokens(pattern)
    states = _closure({0}, tokens)
    for char in name:
        following: set[int] = set()
        for state in states:
            token = tokens[state] if state < len(tokens) else None  # None: the end
            if token == _GLOBSTAR or (token == _STAR and char != "/"):
                following.add(state)
            elif token == char or (token == _ONE and char != "/"):
                following.add(state + 1)
        if not following:
            return False
        states = _closure(following, tokens)
    return len(tokens) in states


def allows(patterns: Iterable[str], name: str) -> bool:
    """Whether any pattern matches the upstream repository `name`."""
    return any(glob_match(pattern, name) for pattern in patterns)


def _normalised(pattern: str, aliases: Mapping[str, str]) -> str:
    """The pattern as names are spelled, or ValueError saying what is wrong with it."""
    why = None
    components = pattern.split("/")
    registry = components[0]
    if len(pattern) > MAX_PATTERN:
        why = f"is longer than {MAX_PATTERN} characters"
    elif not _PATTERN.fullmatch(pattern):
        why = "may hold only lowercase letters, digits, '.', '_', '-', '/', '*' and '?'"
    elif "" in components:
        why = "has an empty path component"
    elif "***" in pattern:
        why = "has '***': write '*' (one component) or '**' (any number)"
    elif not (
        "." in registry
        or registry == "localhost"
        or registry in aliases
        or "*" in registry
        or "?" in registry
    ):
        why = (
            "must start with a registry: a host such as docker.io or ghcr.io, or an alias "
            "of REGISTRY_ALIASES (Docker Hub images are docker.io/library/<name>)"
        )
    if why is not None:
        raise ValueError(f"{SETTING} pattern {pattern[:80]!r} {why}")
    if len(components) == 1:
        return f"{registry}/**"
    if registry in _HUB_NAMES:
        rest = components[1:]
        if len(rest) == 1 and _GLOBSTAR not in rest[0]:
            rest = ["library", *rest]
        return "/".join(["docker.io", *rest])
    return pattern


def parse_upstream_allow(text: str, aliases: Mapping[str, str]) -> tuple[str, ...] | None:
    """The patterns of `UPSTREAM_ALLOW` (comma-separated), or None when it is unset.

    A malformed pattern is a start-up error naming the setting: an allowlist that
    does not say what the operator meant must not be guessed around.
    """
    patterns = [item.strip() for item in text.split(",") if item.strip()]
    if not patterns:
        if text.strip():
            raise ValueError(f"{SETTING} holds no pattern")
        return None
    return tuple(dict.fromkeys(_normalised(pattern, aliases) for pattern in patterns))
