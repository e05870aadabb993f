"""Untrusted JSON is parsed with bounded work: depth, constants, size of numbers."""

import pytest

from ociwrap.jsondoc import MAX_DEPTH, DocumentError, depth_exceeds, parse_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def test_documents_as_deep_as_allowed_parse():
    assert parse_json(nested(MAX_DEPTH)) is not None
    assert parse_json(b'{"a": {"b": [1, {"c": null}]}}') == {"a": {"b": [1, {"c": None}]}}


@pytest.mark.parametrize(
    "data",
    [
        nested(MAX_DEPTH + 1),
        nested(100_000),  # deeper than Python's own recursion limit
        b'{"a":' * 5000 + b"1" + b"}" * 5000,
        b'{"size": NaN}',
        b'{"size": Infinity}',
        b'{"size": -Infinity}',
        b'{"n": ' + b"9" * 5000 + b"}",
        b"\xff\xfe",
        b"",
        b'{"a": 1',
    ],
    ids=[
        "one-too-deep",
        "very-deep",
        "deep-objects",
        "nan",
        "infinity",
        "minus-infinity",
        "long-int",
        "not-utf8",
        "empty",
        "truncated",
    ],
)
def test_refused_documents(data):
    with pytest.raises(DocumentError):
        parse_json(data)


def test_lenient_documents_keep_constants_as_floats():
    value = parse_json(b'{"expires_in": NaN}', lenient=True)
    assert value["expires_in"] != value["expires_in"]


def test_depth_counts_containers_only():
    assert not depth_exceeds({"a": "b" * 1000}, 1)
    assert depth_exceeds({"a": []}, 1)
    assert not depth_exceeds([[], [], {"x": 1}], 2)
