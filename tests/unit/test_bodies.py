"""Upstream bodies read within limits, before and after decompression; declared lengths
checked; a body that stops coming named as such. Real `requests` responses over in-memory
bodies: nothing here opens a socket."""

from __future__ import annotations

import gzip
import io
import os
import zlib

import pytest
import requests
import urllib3
from urllib3._collections import HTTPHeaderDict

from ociwrap.runtime import deadline
from ociwrap.runtime.errors import RegistryError
from ociwrap.upstream.bodies import (
    _Inflater,
    broken_off,
    declared_length,
    iter_body,
    over_limit,
    plain_length,
    range_end,
    read_body,
)

REGISTRY = "r.example"


def response(body: bytes = b"", headers: list[tuple[str, str]] | None = None) -> requests.Response:
    """A response as requests builds it, over `body` in memory, with exactly these headers."""
    raw = urllib3.HTTPResponse(body=io.BytesIO(body), preload_content=False)
    raw.headers = HTTPHeaderDict()
    for name, value in headers or []:
        raw.headers.add(name, value)
    built = requests.Response()
    built.raw = raw
    built.status_code = 200
    built.headers = requests.structures.CaseInsensitiveDict(raw.headers)
    return built


def error_of(call, *args, **kwargs) -> RegistryError:
    with pytest.raises(RegistryError) as caught:
        call(*args, **kwargs)
    return caught.value


def body_of(resp: requests.Response, limit: int, **kwargs) -> bytes:
    return b"".join(iter_body(resp, limit, "manifest", REGISTRY, **kwargs))


# -- declared lengths ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "length"),
    [
        ([], None),
        (["0"], 0),
        (["123"], 123),
        ([" 42 "], 42),
        (["5, 5"], 5),
        (["5", "5"], 5),
        (["9" * 18], 10**18 - 1),
    ],
)
def test_declared_lengths(values, length):
    resp = response(headers=[("Content-Length", value) for value in values])
    assert declared_length(resp, REGISTRY) == length


@pytest.mark.parametrize(
    "values",
    [
        ["-1"],
        ["+5"],
        ["1 2"],
        ["0x10"],
        [""],
        ["5, 6"],
        ["5", "6"],
        ["5", ""],
        ["\u0661\u0662"],  # Arabic-Indic digits, which int() would take
        ["\uff11\uff12"],  # fullwidth digits
        ["9" * 19],
        ["1e3"],
    ],
)
def test_invalid_declared_lengths_are_502(values):
    resp = response(headers=[("Content-Length", value) for value in values])
    error = error_of(declared_length, resp, REGISTRY)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == "upstream registry r.example sent an invalid Content-Length"
    assert error.detail == {"registry": "r.example"}


def test_over_limit_names_what_and_the_limit():
    error = over_limit(REGISTRY, "token response", 65536)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == (
        "upstream registry r.example sent a token response larger than the limit of 65536 bytes"
    )
    assert error.detail == {"registry": "r.example", "limit": 65536}


@pytest.mark.parametrize(
    ("headers", "length"),
    [
        ([("Content-Length", "10")], 10),
        ([("Content-Length", "10"), ("Content-Encoding", "identity")], 10),
        ([("Content-Length", "10"), ("Content-Encoding", " ")], 10),
        ([("Content-Length", "10"), ("Content-Encoding", "gzip")], None),
        ([], None),
    ],
)
def test_plain_length_is_the_declared_length_of_an_unencoded_body(headers, length):
    assert plain_length(response(b"x" * 10, headers), REGISTRY) == length


def test_plain_length_checks_what_is_declared():
    error = error_of(plain_length, response(b"", [("Content-Length", "-1")]), REGISTRY)
    assert error.message == "upstream registry r.example sent an invalid Content-Length"


BIG = 10**17  # 18 digits: the most a number in a Content-Range may have


@pytest.mark.parametrize(
    ("content_range", "length", "start", "end"),
    [
        ("bytes 100-999/1000", "900", 100, 1000),
        ("bytes 100-999/*", "900", 100, 1000),
        (" bytes 100-999/1000 ", None, 100, 1000),
        ("bytes 100-100/101", "1", 100, 101),
        ("bytes 5-8/9", "4", 5, 9),
        (f"bytes {BIG}-{BIG}/{BIG + 1}", None, BIG, BIG + 1),
    ],
)
def test_a_range_that_is_the_whole_rest(content_range, length, start, end):
    headers = [("Content-Range", content_range)]
    if length is not None:
        headers.append(("Content-Length", length))
    assert range_end(response(b"", headers), REGISTRY, start) == end


@pytest.mark.parametrize(
    ("content_range", "length"),
    [
        ("bytes 0-999/1000", "1000"),  # from elsewhere than asked
        ("bytes 101-999/1000", "899"),
        ("bytes 100-998/1000", "899"),  # not to the end
        ("bytes 100-999/1001", "900"),
        ("bytes 100-999/1000", "901"),  # the body says otherwise
        ("bytes 100-99/1000", "0"),
        ("bytes 100-99/*", None),  # ends before it starts
        ("bytes 100-999", "900"),
        ("bytes=100-999/1000", "900"),
        ("items 100-999/1000", "900"),
        ("bytes -999/1000", "900"),
        ("bytes 100-/1000", "900"),
        ("bytes 100-999/", "900"),
        ("", "900"),
        ("bytes 100-999/1000", "-1"),  # an invalid Content-Length is refused as such
    ],
)
def test_a_range_that_is_not_the_whole_rest_is_502(content_range, length):
    headers = [("Content-Range", content_range)] if content_range else []
    if length is not None:
        headers.append(("Content-Length", length))
    error = error_of(range_end, response(b"", headers), REGISTRY, 100)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message.startswith("upstream registry r.example ")


def test_a_range_error_says_where_it_was_asked_from():
    error = error_of(range_end, response(b"", []), REGISTRY, 100)
    assert error.message == (
        "upstream registry r.example answered a request for bytes from 100 on "
        "with a Content-Range that does not match"
    )
    assert error.detail == {"registry": "r.example", "start": 100}


@pytest.mark.parametrize(
    "content_range",
    [
        f"bytes {100:019d}-999/1000",
        f"bytes 100-{999:019d}/1000",
        f"bytes 100-999/{1000:019d}",
    ],
    ids=["first", "last", "total"],
)
def test_numbers_of_more_than_18_digits_are_refused(content_range):
    """Even with leading zeros: a number is never read from more than 18 digits."""
    resp = response(b"", [("Content-Range", content_range)])
    assert error_of(range_end, resp, REGISTRY, 100).status == 502


# -- inflating with a cap ------------------------------------------------------------------


def test_inflater_decodes_gzip_and_zlib_and_several_members():
    assert _Inflater().feed(gzip.compress(b"hello"), 100) == b"hello"
    assert _Inflater().feed(zlib.compress(b"hello"), 100) == b"hello"
    two = gzip.compress(b"one ") + gzip.compress(b"two")
    assert _Inflater().feed(two, 100) == b"one two"


def test_inflater_keeps_state_across_pieces():
    data = gzip.compress(b"0123456789" * 100)
    inflater = _Inflater()
    out = b"".join(inflater.feed(data[n : n + 7], 10_000) for n in range(0, len(data), 7))
    assert out == b"0123456789" * 100


@pytest.mark.parametrize("room", [0, 1, 10, 999])
def test_inflater_gives_at_most_one_byte_more_than_room(room):
    out = _Inflater().feed(gzip.compress(b"x" * 1000), room)
    assert out == b"x" * (room + 1)
    assert _Inflater().feed(gzip.compress(b"x" * 1000), 1000) == b"x" * 1000


def test_a_bomb_is_cut_at_the_cap():
    bomb = gzip.compress(bytes(50 * 1024 * 1024))
    assert len(_Inflater().feed(bomb, 4096)) == 4097
    second_member = gzip.compress(b"ab") + bomb
    assert len(_Inflater().feed(second_member, 4096)) == 4097


# -- reading bodies ------------------------------------------------------------------------


def test_a_body_within_the_limit_is_read_whole():
    body = os.urandom(200_000)
    assert body_of(response(body), len(body)) == body
    assert body_of(response(body, [("Content-Length", str(len(body)))]), len(body)) == body


@pytest.mark.parametrize("declared", [False, True])
def test_one_byte_over_the_limit_is_502(declared):
    headers = [("Content-Length", "11")] if declared else []
    error = error_of(body_of, response(b"x" * 11, headers), 10)
    assert error.message == (
        "upstream registry r.example sent a manifest larger than the limit of 10 bytes"
    )
    assert error.detail == {"registry": "r.example", "limit": 10}


def test_a_declared_length_over_the_limit_is_refused_before_reading():
    resp = response(b"x" * 5, [("Content-Length", "100")])
    assert error_of(body_of, resp, 10).detail == {"registry": "r.example", "limit": 10}
    assert resp.raw.tell() == 0


def test_the_caller_chooses_the_error_for_too_large():
    denied = RegistryError("DENIED", "too big for the bucket")
    assert error_of(body_of, response(b"x" * 11), 10, too_large=lambda: denied) is denied


@pytest.mark.parametrize("encoding", ["gzip", "x-gzip", " GZIP ", "deflate"])
def test_encoded_bodies_are_decoded_and_limited_after_decoding(encoding):
    plain = b"manifest " * 100
    packed = zlib.compress(plain) if "deflate" in encoding else gzip.compress(plain)
    headers = [("Content-Encoding", encoding), ("Content-Length", str(len(packed)))]
    assert body_of(response(packed, headers), len(plain)) == plain
    error = error_of(body_of, response(packed, headers), len(plain) - 1)
    assert error.detail == {"registry": "r.example", "limit": len(plain) - 1}


def test_the_declared_length_of_an_encoded_body_is_not_its_size():
    packed = gzip.compress(b"tiny")
    headers = [("Content-Encoding", "gzip"), ("Content-Length", str(len(packed)))]
    assert len(packed) > 4
    assert body_of(response(packed, headers), 4) == b"tiny"


@pytest.mark.parametrize("encoding", ["", "identity", " Identity "])
def test_identity_bodies_are_read_as_they_are(encoding):
    packed = gzip.compress(b"abc")
    headers = [("Content-Encoding", encoding)]
    assert body_of(response(packed, headers), 100) == packed


def test_an_empty_decoded_body_yields_nothing():
    resp = response(gzip.compress(b""), [("Content-Encoding", "gzip")])
    assert list(iter_body(resp, 10, "manifest", REGISTRY)) == []


@pytest.mark.parametrize(
    ("encoding", "shown"), [("br", "'br'"), ("compress" + "x" * 60, repr("compress" + "x" * 32))]
)
def test_unsupported_encodings_are_502(encoding, shown):
    error = error_of(body_of, response(b"abc", [("Content-Encoding", encoding)]), 100)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == (
        f"upstream registry r.example sent a manifest with an unsupported Content-Encoding {shown}"
    )
    assert error.detail == {"registry": "r.example"}


def test_a_body_that_does_not_decompress_is_502():
    resp = response(b"\x1f\x8b\x08\x00garbage" * 10, [("Content-Encoding", "gzip")])
    error = error_of(body_of, resp, 1000)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == "upstream registry r.example sent a manifest that does not decompress"
    assert error.detail == {"registry": "r.example"}


class Reset(io.BytesIO):
    """A connection reset after the first bytes."""

    def read(self, size: int = -1) -> bytes:
        if self.tell():
            raise ConnectionResetError("reset by peer")
        return super().read(3)


def test_a_body_that_stops_coming_broke_off():
    resp = response()
    resp.raw = urllib3.HTTPResponse(body=Reset(b"abcdef"), preload_content=False)
    error = error_of(body_of, resp, 100)
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == (
        "upstream registry r.example broke off while sending a manifest (ProtocolError)"
    )
    assert error.detail == {"registry": "r.example"}


def test_read_body_reads_and_closes():
    body = os.urandom(300_000)
    resp = response(body)
    assert read_body(resp, len(body), "config", REGISTRY) == body
    assert resp.raw.closed
    error = error_of(read_body, response(body), len(body) - 1, "config", REGISTRY)
    assert error.message == (
        f"upstream registry r.example sent a config larger than the limit of {len(body) - 1} bytes"
    )


def test_an_invalid_length_is_refused_before_reading():
    resp = response(b"abc", [("Content-Length", "-3")])
    assert error_of(body_of, resp, 100).message == (
        "upstream registry r.example sent an invalid Content-Length"
    )


class Stream(io.RawIOBase):
    """`size` bytes of zeros, handed out only in bounded reads."""

    def __init__(self, size: int) -> None:
        self.left = size
        self.reads: list[int] = []

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        assert size is not None and 0 <= size <= 1024 * 1024, f"unbounded read ({size})"
        self.reads.append(size)
        size = min(size, self.left)
        self.left -= size
        return bytes(size)


def test_a_long_body_is_read_in_bounded_chunks_and_cut_at_the_limit():
    resp = response()
    stream = Stream(8 * 1024 * 1024)
    resp.raw = urllib3.HTTPResponse(body=stream, preload_content=False)
    error = error_of(body_of, resp, 1024 * 1024)
    assert error.detail == {"registry": "r.example", "limit": 1024 * 1024}
    assert stream.left > 6 * 1024 * 1024
    assert max(stream.reads) <= 64 * 1024


def test_no_more_than_the_limit_is_ever_inflated(monkeypatch):
    inflated: list[int] = []
    feed = _Inflater.feed

    def counting(self, data: bytes, room: int) -> bytes:
        out = feed(self, data, room)
        inflated.append(len(out))
        return out

    monkeypatch.setattr(_Inflater, "feed", counting)
    packed = gzip.compress(os.urandom(400_000))
    limit = 250_000
    resp = response(packed, [("Content-Encoding", "gzip")])
    assert error_of(body_of, resp, limit).detail == {"registry": "r.example", "limit": limit}
    assert len(inflated) > 1
    assert sum(inflated) <= limit + 1


# -- bodies that stop coming ---------------------------------------------------------------


@pytest.mark.parametrize("exc", [OSError("reset"), urllib3.exceptions.ProtocolError("cut")])
def test_broken_off_is_502(exc):
    error = broken_off(exc, REGISTRY, "config")
    assert (error.code, error.status) == ("UNAVAILABLE", 502)
    assert error.message == (
        f"upstream registry r.example broke off while sending a config ({type(exc).__name__})"
    )
    assert error.detail == {"registry": "r.example"}


@pytest.mark.parametrize(
    "exc", [TimeoutError("slow"), urllib3.exceptions.ReadTimeoutError(None, "/", "slow")]
)
def test_a_slow_body_is_504(exc):
    error = broken_off(exc, REGISTRY, "config")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == "upstream registry r.example timed out while sending a config"
    with deadline.within(deadline.Deadline(60)):
        assert broken_off(exc, REGISTRY, "config").message == error.message


def test_a_body_that_outlasts_the_deadline_says_so():
    with deadline.within(deadline.Deadline(-1)) as passed:
        passed.budget = 5
        error = broken_off(TimeoutError("slow"), REGISTRY, "config")
    assert (error.code, error.status) == ("UNAVAILABLE", 504)
    assert error.message == (
        "the request's deadline (5 s) ran out while waiting for "
        "upstream registry r.example to send a config"
    )
