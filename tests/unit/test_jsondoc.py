"""Untrusted JSON is parsed with bounded work: depth, constants, size of numbers."""

import pytest

from ociwrap.image.jsondoc import DocumentError, copy_json, depth_exceeds, parse_json


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def objects(depth: int) -> bytes:
    return b'{"a":' * (depth - 1) + b"{}" + b"}" * (depth - 1)


def message_of(data: bytes, **kwargs) -> str:
    with pytest.raises(DocumentError) as caught:
        parse_json(data, **kwargs)
    return str(caught.value)


def test_documents_as_deep_as_allowed_parse():
    value = parse_json(nested(32))
    for _ in range(31):
        assert isinstance(value, list) and len(value) == 1
        value = value[0]
    assert value == []
    assert parse_json(objects(32)) is not None
    assert parse_json(b'{"a": {"b": [1, {"c": null}]}}') == {"a": {"b": [1, {"c": None}]}}


@pytest.mark.parametrize("data", [nested(33), objects(33), b"[" * 32 + b"{}" + b"]" * 32])
def test_one_level_deeper_is_refused(data):
    assert message_of(data) == "nested deeper than 32 levels"


def test_the_depth_limit_can_be_given():
    assert parse_json(nested(2), max_depth=2) == [[]]
    assert message_of(nested(3), max_depth=2) == "nested deeper than 2 levels"


def test_deeper_than_the_parser_can_go_is_the_same_refusal():
    assert message_of(nested(100_000)) == "nested deeper than 32 levels"
    assert message_of(b'{"a":' * 5000 + b"1" + b"}" * 5000) == "nested deeper than 32 levels"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"size": NaN}', "NaN is not JSON"),
        (b'{"size": Infinity}', "Infinity is not JSON"),
        (b'{"size": -Infinity}', "-Infinity is not JSON"),
        (b'{"n": ' + b"9" * 5000 + b"}", "not valid JSON (ValueError)"),
        (b'{"a": "\xff"}', "not valid JSON (UnicodeDecodeError)"),
        (b"\xff\xfe", "not valid JSON (JSONDecodeError)"),
        (b"", "not valid JSON (JSONDecodeError)"),
        (b'{"a": 1', "not valid JSON (JSONDecodeError)"),
    ],
)
def test_refused_documents(data, message):
    assert message_of(data) == message


def test_lenient_documents_keep_constants_as_floats():
    value = parse_json(b'{"expires_in": NaN, "n": Infinity}', lenient=True)
    assert value["expires_in"] != value["expires_in"]
    assert value["n"] == float("inf")


def test_scalars_have_no_depth():
    assert parse_json(b"7") == 7
    assert not depth_exceeds("x", 0)


def test_depth_counts_containers_only():
    assert not depth_exceeds({"a": "b" * 1000}, 1)
    assert depth_exceeds({"a": []}, 1)
    assert not depth_exceeds([[], [], {"x": 1}], 2)
    assert depth_exceeds([1, "x", [[]]], 2)
    assert depth_exceeds([[[]], 1], 2)


def test_a_copy_is_equal_and_shares_no_container():
    original = {
        "Env": ["A=1", "B=2"],
        "Labels": {"org.goci.wrapper": "/run.sh", "n": None},
        "history": [{"created_by": "x", "empty_layer": True, "size": 1.5}],
        "nested": [[1, [2, {"deep": ["z"]}]]],
        "count": 3,
    }
    copy = copy_json(original)
    assert copy == original
    copy["Env"].append("C=3")
    copy["Labels"]["org.goci.wrapper"] = "/other.sh"
    copy["history"][0]["created_by"] = "y"
    copy["nested"][0][1][1]["deep"].append("w")
    assert original == {
        "Env": ["A=1", "B=2"],
        "Labels": {"org.goci.wrapper": "/run.sh", "n": None},
        "history": [{"created_by": "x", "empty_layer": True, "size": 1.5}],
        "nested": [[1, [2, {"deep": ["z"]}]]],
        "count": 3,
    }


def test_tuples_and_other_mappings_are_copied_as_json_lists_and_objects():
    from types import MappingProxyType

    copy = copy_json({"t": (1, {"a": [2]}), "m": MappingProxyType({"k": [3], "s": "v"})})
    assert copy == {"t": [1, {"a": [2]}], "m": {"k": [3], "s": "v"}}
    assert type(copy["t"]) is list and type(copy["m"]) is dict
    assert copy_json("text") == "text" and copy_json(None) is None
