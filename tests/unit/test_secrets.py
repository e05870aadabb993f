"""Secret documents: a file read again when it changes, a Secrets Manager secret through
Powertools (moto's, in process, or one scripted on loopback for answers moto does not
give), and the parsed value kept until the text changes."""

from __future__ import annotations

import json
import locale
import os
from collections.abc import Iterator
from datetime import datetime, timedelta

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters import base as powertools_base

from doubles.aws_endpoint import AwsEndpoint
from ociwrap.runtime import deadline
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


class Clock:
    """The time Powertools' cache reads its entries' age by, moved only by the test."""

    def __init__(self) -> None:
        self.now_value = datetime(2024, 1, 1, 12, 0, 0)

    def advance(self, seconds: float) -> None:
        self.now_value += timedelta(seconds=seconds)


@pytest.fixture
def powertools_clock(monkeypatch) -> Clock:
    clock = Clock()

    class ClockDatetime(datetime):
        @classmethod
        def now(cls, tz=None):
            return clock.now_value

    monkeypatch.setattr(powertools_base, "datetime", ClockDatetime)
    return clock


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


def test_a_secret_is_cached_for_exactly_five_minutes_by_default(secrets, powertools_clock):
    arn = secrets.create_secret(Name="ociwrap/five-minutes", SecretString="one")["ARN"]
    source = SecretDocument("AUTH_SECRET", arn, "AUTH_FILE", None)
    assert source.text() == "one"
    secrets.put_secret_value(SecretId=arn, SecretString="two")
    powertools_clock.advance(seconds=300)
    assert source.text() == "one"  # 300 seconds old: still fresh
    powertools_clock.advance(seconds=1)
    assert source.text() == "two"


def test_a_secret_read_after_the_deadline_is_a_504_naming_the_secrets_service(secrets):
    arn = secrets.create_secret(Name="ociwrap/late", SecretString="never read")["ARN"]
    passed = deadline.Deadline(20, clock=lambda: 100.0)
    passed.expires = 99.0
    with deadline.within(passed), pytest.raises(RegistryError) as caught:
        document(arn).text()
    assert (caught.value.status, caught.value.code) == (504, "UNAVAILABLE")
    assert caught.value.message == (
        "the request's deadline (20 s) ran out while waiting for the secrets service"
    )


# -- answers moto does not give: a Secrets Manager on loopback that says what a test wants --


@pytest.fixture
def service(monkeypatch) -> Iterator[AwsEndpoint]:
    """Secrets Manager on 127.0.0.1, answering as each test says."""
    endpoint = AwsEndpoint().start()
    for name, value in {
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint.url,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    yield endpoint
    endpoint.stop()


def test_a_secret_the_function_may_not_read_names_the_aws_error_code(service):
    service.answer_json(
        400, {"__type": "AccessDeniedException", "message": "not authorized to GetSecretValue"}
    )
    message = unreadable(document("ociwrap/forbidden").text)
    assert message == "AUTH_SECRET cannot be read: AccessDeniedException"
    assert [(r.operation, r.json()["SecretId"]) for r in service.requests] == [
        ("GetSecretValue", "ociwrap/forbidden")
    ]


def test_an_answer_without_an_error_code_names_what_went_wrong(service):
    service.answer_json(200, {"Name": "ociwrap/empty"})  # neither kind of value
    assert unreadable(document("ociwrap/empty").text) == "AUTH_SECRET cannot be read: KeyError"


def test_a_secret_value_that_is_no_text_is_a_503(service):
    service.answer_json(200, {"Name": "ociwrap/number", "SecretString": 42})
    message = unreadable(document("ociwrap/number").text)
    assert message == "AUTH_SECRET cannot be read: the secret holds no text"


def test_a_file_is_read_as_utf_8_whatever_the_locale(tmp_path):
    path = tmp_path / "users"
    path.write_bytes("café:$2b$12$hash\n".encode())
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")  # ASCII: a file opened by the locale's rule fails
    try:
        assert document(path=path).text() == "café:$2b$12$hash\n"
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
