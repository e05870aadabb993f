"""Parsing untrusted JSON with bounded work: size, nesting depth, no NaN; and copying it.

Upstream documents are read under a byte limit before they get here. Python's
parser recurses per nesting level, so a few kilobytes of `[[[[...` would end in
a RecursionError (a 500), and deep values would make every later walk over them
(copying, serialising) recurse as well. Documents of the image and distribution
specs nest a handful of levels; anything deeper than `MAX_DEPTH` is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

MAX_DEPTH = 32


class DocumentError(ValueError):
    """The bytes are not a JSON document this registry will work on; says why."""


def _refuse_constant(name: str) -> Any:
    raise DocumentError(f"{name} is not JSON")


def parse_json(data: bytes, max_depth: int = MAX_DEPTH, lenient: bool = False) -> Any:
    """The JSON value of `data` (UTF-8), or DocumentError.

    Refused: invalid UTF-8 or JSON, NaN/Infinity (unless `lenient`, for documents
    whose numbers are only read, and checked, by this registry), integers too
    long to convert, and nesting deeper than `max_depth`. The depth check walks
    the parsed value once without recursion, so its cost is linear in the document.
    """
    try:
        value = json.loads(data, parse_constant=float if lenient else _refuse_constant)
    except RecursionError as exc:
        raise DocumentError(f"nested deeper than {max_depth} levels") from exc
    except DocumentError:
        raise
    except (UnicodeDecodeError, ValueError) as exc:
        raise DocumentError(f"not valid JSON ({type(exc).__name__})") from exc
    if depth_exceeds(value, max_depth):
        raise DocumentError(f"nested deeper than {max_depth} levels")
    return value


def depth_exceeds(value: Any, max_depth: int) -> bool:
    """True when containers in `value` nest deeper than `max_depth` levels."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        if depth > max_depth:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def copy_json(value: Any) -> Any:
    """A copy of a JSON value that shares no container with it (strings and numbers are
    immutable, so they are shared). Several times faster than `copy.deepcopy`, which keeps
    a memo of every object for cycles that parsed JSON cannot have; composing configs of
    tens of thousands of entries copies every one of them. Recursion is as deep as the
    value, which `parse_json` bounds."""
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else copy_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [v if type(v) in _SCALARS else copy_json(v) for v in value]
    if isinstance(value, Mapping):
        return {k: copy_json(v) for k, v in value.items()}
    return value


_SCALARS = frozenset({str, int, float, bool, type(None)})
