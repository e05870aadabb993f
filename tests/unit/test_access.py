"""Who may pull (REGISTRY_AUTH=basic): htpasswd bcrypt lines, Basic logins, the handler's 401."""

from __future__ import annotations

import base64
import json
import logging

import bcrypt
import boto3
import pytest
from moto import mock_aws

import app
from ociwrap.access import Users, basic_login, parse_htpasswd
from ociwrap.errors import RegistryError
from ociwrap.secrets import SecretDocument
from ociwrap_local.events import LocalContext, build_event

PASSWORD = "correct horse battery staple"


def htpasswd_line(user: str, password: str) -> str:
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(5)).decode()
    return f"{user}:{hashed.replace('$2b$', '$2y$', 1)}"  # as htpasswd -B writes it


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


@pytest.fixture
def users_file(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(f"# pullers\n{htpasswd_line('ci', PASSWORD)}\n\n{htpasswd_line('dev', 'x')}\n")
    return path


def users_of(path) -> Users:
    return Users(SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", str(path)))


def test_htpasswd_lines_are_read_and_anything_else_refused():
    users = parse_htpasswd(htpasswd_line("a", "b") + "\n# comment\n", "REGISTRY_AUTH_FILE")
    assert list(users) == ["a"]
    for line in ("plain:password", "md5:$apr1$abc$def", "nouser", ":$2y$05$x"):
        with pytest.raises(RegistryError) as caught:
            parse_htpasswd(line, "REGISTRY_AUTH_FILE")
        assert caught.value.status == 503 and "REGISTRY_AUTH_FILE line 1" in caught.value.message


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic("ci", "p:w"), ("ci", "p:w")),
        ("basic " + base64.b64encode(b"ci:pw").decode(), ("ci", "pw")),
        ("Bearer abc", None),
        ("Basic !!!", None),
        ("Basic " + base64.b64encode(b"no-colon").decode(), None),
        ("Basic " + base64.b64encode(b":pw").decode(), None),
        ("Basic " + base64.b64encode(b"\xff:\xfe").decode(), None),
        ("", None),
    ],
)
def test_basic_logins_are_parsed(header, expected):
    assert basic_login(header) == expected


def test_only_the_right_password_passes(users_file, caplog):
    users = users_of(users_file)
    with caplog.at_level(logging.WARNING, logger="ociwrap"):
        assert users.check(basic("ci", PASSWORD)) == "ci"
        assert users.check(basic("ci", PASSWORD)) == "ci"  # remembered
        assert users.check(basic("ci", PASSWORD + "!")) is None
        assert users.check(basic("nobody", PASSWORD)) is None
        assert users.check(basic("ci", "x" * 73)) is None
        assert users.check(None) is None
    assert "login refused" in caplog.text
    assert PASSWORD not in caplog.text


def test_a_changed_file_is_read_again(users_file):
    users = users_of(users_file)
    assert users.check(basic("dev", "x")) == "dev"
    users_file.write_text(htpasswd_line("ci", PASSWORD) + "\n")
    import os

    os.utime(users_file, (1, 1))
    assert users.check(basic("dev", "x-other")) is None
    assert users.check(basic("ci", PASSWORD)) == "ci"


def test_a_missing_users_file_is_a_503_naming_the_setting(tmp_path):
    with pytest.raises(RegistryError) as caught:
        users_of(tmp_path / "missing").check(basic("ci", PASSWORD))
    assert caught.value.status == 503 and "REGISTRY_AUTH_FILE" in caught.value.message


@pytest.fixture
def handler(monkeypatch, no_network, users_file):
    monkeypatch.setenv("ARTIFACT_BUCKET", "unit-bucket")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("REGISTRY_AUTH", "basic")
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(users_file))
    monkeypatch.delenv("S3_ENDPOINT_URL", raising=False)
    with mock_aws():
        boto3.client("s3").create_bucket(Bucket="unit-bucket")
        app.reset_service()

        def call(method: str, path: str, login: str | None = None) -> dict:
            headers = [("Authorization", login)] if login else []
            event = build_event(method, path, headers, b"")
            return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

        yield call
        app.reset_service()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/"),
        ("HEAD", "/v2/"),
        ("GET", "/v2/library/busybox/manifests/latest"),
        ("GET", "/v2/library/busybox/blobs/sha256:" + "0" * 64),
        ("GET", "/v2/nothing/here"),
        ("PUT", "/v2/library/busybox/manifests/latest"),
        ("OPTIONS", "/v2/"),
        ("POST", "/v1alpha/tokens"),
        ("GET", "/v1alpha/tokens/" + "a" * 26),
        ("DELETE", "/v1alpha/tokens/" + "a" * 26),
        ("GET", "/v1alpha/openapi.json"),
    ],
)
@pytest.mark.parametrize("login", [None, basic("ci", "wrong"), "Bearer x"])
def test_every_route_wants_a_login(handler, method, path, login):
    result = handler(method, path, login)
    assert result["statusCode"] == 401
    assert result["headers"]["WWW-Authenticate"] == 'Basic realm="ociwrap"'
    if method == "HEAD":
        assert result["body"] == ""
    else:
        assert json.loads(result["body"])["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_valid_login_gets_through(handler):
    assert handler("GET", "/v2/", basic("ci", PASSWORD))["statusCode"] == 200
    assert handler("PUT", "/v2/a/manifests/1", basic("ci", PASSWORD))["statusCode"] == 405
