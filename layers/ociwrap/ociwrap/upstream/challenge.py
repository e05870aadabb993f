"""`WWW-Authenticate` challenges (RFC 7235), parsed in one linear pass.

An upstream may send several challenges, in one header value separated by
commas or in several header lines (`Basic realm="r", Bearer realm="..."`); each
line is parsed on its own and a Bearer challenge with a realm is preferred,
since that is the flow anonymous pulls can complete.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SEPARATORS = re.compile(r"[\s,]*")
_PARAM = re.compile(rf'({_TOKEN})[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^\s,]*)')
_SCHEME = re.compile(_TOKEN)
_ESCAPE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Challenge:
    """One challenge: its scheme (lower case) and parameters (names lower case)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(value: str) -> list[Challenge]:
    """Every challenge in one header value; unparseable rest is ignored."""
    found: list[Challenge] = []
    position, end = 0, len(value)
    while True:
        position = _SEPARATORS.match(value, position).end()
        if position >= end:
            return found
        param = _PARAM.match(value, position) if found else None
        if param is not None:
            raw = param[2]
            if raw.startswith('"'):
                raw = _ESCAPE.sub(r"\1", raw[1:-1])
            found[-1].params.setdefault(param[1].lower(), raw)
            position = param.end()
            continue
        scheme = _SCHEME.match(value, position)
        if scheme is None:
            return found
        found.append(Challenge(scheme[0].lower()))
        position = scheme.end()


def choose(values: Iterable[str]) -> Challenge | None:
    """The challenge to answer among all header lines: Bearer with a realm, else Basic."""
    challenges = [challenge for value in values for challenge in parse_challenges(value)]
    for challenge in challenges:
        if challenge.scheme == "bearer" and challenge.params.get("realm"):
            return challenge
    for challenge in challenges:
        if challenge.scheme == "basic":
            return challenge
    return None
