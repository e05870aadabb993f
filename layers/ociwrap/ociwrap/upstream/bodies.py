"""Reading upstream bodies with bounds before and after decompression.

Nothing an upstream sends is read whole without a limit: the declared
`Content-Length` is checked first (it must be a plain non-negative integer),
compressed bodies are inflated step by step with a cap on the output, so a
gzip bomb is cut at the limit instead of filling memory, and every chunk read
is bounded in time by the request's deadline (see `connection`). A ranged
answer counts only as the whole rest of what was asked for. Failures are
RegistryErrors naming the upstream: 502 for bad or oversized data, 504 for time.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator

import requests
import urllib3

from ociwrap.runtime import deadline, errors
from ociwrap.runtime.errors import RegistryError

CHUNK = 64 * 1024
_LENGTH = re.compile(r"[0-9]{1,18}")
_CONTENT_RANGE = re.compile(r"bytes ([0-9]{1,18})-([0-9]{1,18})/([0-9]{1,18}|\*)")
_DECODED = {"gzip", "x-gzip", "deflate"}


def declared_length(response: requests.Response, registry: str) -> int | None:
    """The body length the upstream declares; None when it declares none.

    Several differing values, signs, blanks inside, or anything but ASCII digits
    are refused: they are how request smuggling and length confusion start.
    """
    values = response.raw.headers.getlist("Content-Length")
    if not values:
        return None
    distinct = {part.strip() for value in values for part in value.split(",")}
    if len(distinct) != 1 or not _LENGTH.fullmatch(next(iter(distinct))):
        raise errors.upstream_unavailable(
            f"upstream registry {registry} sent an invalid Content-Length",
            detail={"registry": registry},
        )
    return int(next(iter(distinct)))


def plain_length(response: requests.Response, registry: str) -> int | None:
    """The body's length as declared, if it comes as is (not compressed)."""
    if response.headers.get("Content-Encoding", "").strip().lower() not in ("", "identity"):
        return None
    return declared_length(response, registry)


def range_end(response: requests.Response, registry: str, start: int) -> int:
    """The whole size of what a `206` sends the bytes of from `start` on.

    Its `Content-Range` must start there, agree with the body's length and run to the
    end (as far as it says), so the body is the whole rest: else a 502.
    """
    match = _CONTENT_RANGE.fullmatch(response.headers.get("Content-Range", "").strip())
    if match is not None:
        first, end, total = int(match[1]), int(match[2]) + 1, match[3]
        length = plain_length(response, registry)
        if (
            first == start < end
            and length in (None, end - start)
            and (total == "*" or int(total) == end)
        ):
            return end
    raise errors.upstream_unavailable(
        f"upstream registry {registry} answered a request for bytes from {start} on "
        "with a Content-Range that does not match",
        detail={"registry": registry, "start": start},
    )


def over_limit(registry: str, what: str, limit: int) -> RegistryError:
    return errors.upstream_unavailable(
        f"upstream registry {registry} sent a {what} larger than the limit of {limit} bytes",
        detail={"registry": registry, "limit": limit},
    )


class _Inflater:
    """zlib/gzip decoding with a cap on how much output one call may produce."""

    def __init__(self) -> None:
        self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)  # gzip or zlib header

    def feed(self, data: bytes, room: int) -> bytes:
        """Inflate `data`; at most `room + 1` bytes come out, so the caller can see "too much"."""
        out = bytearray()
        while data and len(out) <= room:
            out += self._decoder.decompress(data, room + 1 - len(out))
            data = self._decoder.unconsumed_tail
            if self._decoder.eof:  # a further gzip member follows
                data = self._decoder.unused_data + data
                self._decoder = zlib.decompressobj(32 + zlib.MAX_WBITS)
        return bytes(out)


def _encoding(response: requests.Response, registry: str, what: str) -> str:
    encoding = response.headers.get("Content-Encoding", "").strip().lower() or "identity"
    if encoding != "identity" and encoding not in _DECODED:
        raise errors.upstream_unavailable(
            f"upstream registry {registry} sent a {what} with an unsupported "
            f"Content-Encoding {encoding[:40]!r}",
            detail={"registry": registry},
        )
    return encoding


def iter_body(
    response: requests.Response,
    limit: int,
    what: str,
    registry: str,
    too_large: Callable[[], RegistryError] | None = None,
) -> Iterator[bytes]:
    """The decoded body in chunks; a RegistryError once it passes `limit` bytes or time runs out.

    `too_large` makes the error for a body over the limit (default: a 502 naming it).
    """
    too_large = too_large or (lambda: over_limit(registry, what, limit))
    length = declared_length(response, registry)
    encoding = _encoding(response, registry, what)
    if encoding == "identity" and length is not None and length > limit:
        raise too_large()
    inflater = _Inflater() if encoding in _DECODED else None
    total = 0
    try:
        while True:
            chunk = response.raw.read(CHUNK, decode_content=False)
            if not chunk:
                return
            if inflater is not None:
                chunk = inflater.feed(chunk, limit - total)
            total += len(chunk)
            if total > limit:
                raise too_large()
            if chunk:
                yield chunk
    except zlib.error as exc:
        raise errors.upstream_unavailable(
            f"upstream registry {registry} sent a {what} that does not decompress",
            detail={"registry": registry},
        ) from exc
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise broken_off(exc, registry, what) from exc


def broken_off(exc: BaseException, registry: str, what: str) -> RegistryError:
    """The error for a body that stopped coming: 504 on time, 502 otherwise."""
    if isinstance(exc, TimeoutError | urllib3.exceptions.TimeoutError):
        current = deadline.current()
        if current is not None and current.expired():
            return errors.deadline_exceeded(
                f"upstream registry {registry} to send a {what}", current.budget
            )
        return errors.upstream_unavailable(
            f"upstream registry {registry} timed out while sending a {what}", timeout=True
        )
    return errors.upstream_unavailable(
        f"upstream registry {registry} broke off while sending a {what} ({type(exc).__name__})",
        detail={"registry": registry},
    )


def read_body(response: requests.Response, limit: int, what: str, registry: str) -> bytes:
    """The whole decoded body, at most `limit` bytes of it (else a 502 naming the limit)."""
    with response:
        return b"".join(iter_body(response, limit, what, registry))
