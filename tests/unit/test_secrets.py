"""Secret documents: a file read again when it changes, a Secrets Manager secret through
Powertools (moto's, in process), and the parsed value kept until the text changes."""

from __future__ import annotations

import json
import os

import boto3
import pytest

from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.secrets import ParsedDocument, SecretDocument


def document(secret: str | None = None, path: object = None) -> SecretDocument:
    return SecretDocument("AUTH_SECRET", secret, "AUTH_FILE", None if path is None else str(path))


def unreadable(read) -> str:
    with pytest.raises(RegistryError) as caught:
        read()
    assert (caught.value.status, caught.value.code) == (503, "UNAVAILABLE")
    return caught.value.message


def test_neither_setting_is_no_document():
    assert document().text() is None
    assert document().setting == "AUTH_FILE"
    assert ParsedDocument(document(), json.loads, "JSON").value() is None


def test_a_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "users"
    path.write_text("first")
    os.utime(path, (10, 10))
    source = document(path=path)
    assert source.text() == "first"
    path.write_text("second")
    os.utime(path, (10, 10))  # the same time: the text read before is kept
    assert source.text() == "first"
    os.utime(path, (11, 11))
    assert source.text() == "second"


@pytest.mark.parametrize(
    ("content", "why"), [(None, "FileNotFoundError"), (b"\xff\xfe", "UnicodeDecodeError")]
)
def test_an_unreadable_file_is_a_503_naming_its_setting(tmp_path, content, why):
    path = tmp_path / "users"
    if content is not None:
        path.write_bytes(content)
    assert unreadable(document(path=path).text) == f"AUTH_FILE cannot be read: {why}"


def test_a_parsed_document_is_parsed_once_per_text(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text('{"a": 1}')
    parsed_texts: list[str] = []

    def parse(text: str) -> dict:
        parsed_texts.append(text)
        return json.loads(text)

    parsed = ParsedDocument(document(path=path), parse, "JSON")
    assert parsed.value() == {"a": 1}
    assert parsed.value() == {"a": 1}
    assert parsed_texts == ['{"a": 1}']
    path.write_text('{"a": 2}')
    os.utime(path, (20, 20))
    assert parsed.value() == {"a": 2}
    assert len(parsed_texts) == 2


def test_a_document_that_does_not_parse_is_a_503_saying_what_it_is_not(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text("{not json")
    message = unreadable(ParsedDocument(document(path=path), json.loads, "a JSON document").value)
    assert message.startswith("AUTH_FILE is not a JSON document: Expecting property name")


# -- Secrets Manager ----------------------------------------------------------------------


@pytest.fixture
def secrets(s3):
    """moto's Secrets Manager, in the module's mock."""
    return boto3.client("secretsmanager", region_name="us-east-1")


def test_the_secret_wins_when_both_are_set(secrets, tmp_path):
    arn = secrets.create_secret(Name="ociwrap/both", SecretString="from the secret")["ARN"]
    (tmp_path / "file").write_text("from the file")
    source = document(arn, tmp_path / "file")
    assert source.text() == "from the secret"
    assert source.setting == "AUTH_SECRET"


def test_a_binary_secret_is_read_as_text(secrets):
    arn = secrets.create_secret(Name="ociwrap/binary", SecretBinary="bytes é".encode())["ARN"]
    assert document(arn).text() == "bytes é"
    broken = secrets.create_secret(Name="ociwrap/latin-1", SecretBinary=b"caf\xe9")["ARN"]
    assert document(broken).text() == "caf\ufffd"


def test_a_missing_secret_is_a_503_naming_the_setting_and_the_code(secrets):
    message = unreadable(document("ociwrap/none").text)
    assert message == "AUTH_SECRET cannot be read: ResourceNotFoundException"


def test_a_secret_is_read_again_after_its_max_age(secrets):
    arn = secrets.create_secret(Name="ociwrap/rotated", SecretString="one")["ARN"]
    cached = SecretDocument("AUTH_SECRET", arn, "AUTH_FILE", None)
    fresh = SecretDocument("AUTH_SECRET", arn, "AUTH_FILE", None, max_age=0)
    assert cached.text() == fresh.text() == "one"
    secrets.put_secret_value(SecretId=arn, SecretString="two")
    assert cached.text() == "one"  # within the default five minutes
    assert fresh.text() == "two"
