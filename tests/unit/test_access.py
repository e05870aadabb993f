"""Who may pull (REGISTRY_AUTH=basic): htpasswd bcrypt lines, Basic logins, the handler's 401."""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import bcrypt
import boto3
import pytest
from moto import mock_aws

import app
from harness.logins import htpasswd_line
from ociwrap.registry.access import Users, basic_login, cost_of, nobody_hash, parse_htpasswd
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.secrets import SecretDocument
from ociwrap_local.events import LocalContext, build_event

PASSWORD = "correct horse battery staple"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def write_users(path: Path) -> Path:
    """Two pullers, `ci` and `dev`, at bcrypt's lowest cost, with a comment and a blank line."""
    path.write_text(f"# pullers\n{htpasswd_line('ci', PASSWORD)}\n\n{htpasswd_line('dev', 'x')}\n")
    return path


@pytest.fixture
def users_file(tmp_path: Path) -> Path:
    return write_users(tmp_path / "htpasswd")


def users_of(path) -> Users:
    return Users(SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", str(path)))


def test_htpasswd_lines_are_read_and_anything_else_refused(tmp_path):
    users = parse_htpasswd(htpasswd_line("a", "b") + "\n# comment\n")
    assert list(users) == ["a"]
    bad_hashes = ("$2y$05$short", "$2y$99$" + "a" * 53, "$2y$03$" + "a" * 53, "$2y$5$" + "a" * 53)
    lines = ("plain:password", "md5:$apr1$abc$def", "nouser", ":$2y$05$x")
    for line in (*lines, *(f"ci:{hashed}" for hashed in bad_hashes)):
        (tmp_path / "htpasswd").write_text(f"{htpasswd_line('a', 'b')}\n{line}\n")
        with pytest.raises(RegistryError) as caught:
            users_of(tmp_path / "htpasswd").check(basic("a", "b"))
        assert caught.value.status == 503
        assert "REGISTRY_AUTH_FILE is not an htpasswd file: line 2" in caught.value.message


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
        ("Basic   " + base64.b64encode(b"ci:pw").decode(), ("ci", "pw")),
        ("Basic \u00ff\u00fe", None),
        ("Basic é" + base64.b64encode(b"ci:pw").decode(), None),
        ("Basic \ud800", None),
        ("Basic " + base64.b64encode(b"ci:pw").decode() + "\x00", None),
        ("Basic " + base64.b64encode(b"ci:" + b"p" * 75_000).decode(), None),
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
    os.utime(users_file, (1, 1))
    assert users.check(basic("dev", "x-other")) is None
    assert users.check(basic("ci", PASSWORD)) == "ci"


def test_a_missing_users_file_is_a_503_naming_the_setting(tmp_path):
    with pytest.raises(RegistryError) as caught:
        users_of(tmp_path / "missing").check(basic("ci", PASSWORD))
    assert caught.value.status == 503 and "REGISTRY_AUTH_FILE" in caught.value.message


@pytest.fixture(scope="module")
def locked_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The real handler with REGISTRY_AUTH=basic over moto's in-process S3, built once for
    the module (building the service makes its AWS clients, the slow part): no test changes
    its users file, each asks with a login of its own."""
    users = write_users(tmp_path_factory.mktemp("locked-app") / "htpasswd")
    with pytest.MonkeyPatch.context() as env, mock_aws():
        env.setenv("ARTIFACT_BUCKET", "unit-bucket")
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        env.setenv("REGISTRY_AUTH", "basic")
        env.setenv("REGISTRY_AUTH_FILE", str(users))
        env.delenv("S3_ENDPOINT_URL", raising=False)
        boto3.client("s3").create_bucket(Bucket="unit-bucket")
        app.reset_service()
        yield
        app.reset_service()


@pytest.fixture
def handler(locked_app: None, no_network: object) -> Callable[..., dict]:
    def call(method: str, path: str, login: str | None = None) -> dict:
        headers = [("Authorization", login)] if login else []
        event = build_event(method, path, headers, b"")
        return app.lambda_handler(event, LocalContext(aws_request_id="unit"))

    return call


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


#: Authorization values that are no valid login, each a 401 with the challenge (never a 500).
HOSTILE_AUTHORIZATIONS = {
    "non-ascii characters": "Basic \u00ff\u00fe\u00e9",
    "non-ascii after base64": "Basic " + base64.b64encode(b"ci:pw").decode() + "\u00e9",
    "lone surrogate": "Basic \ud800",
    "not base64": "Basic !!!not*base64",
    "base64 of non-utf-8": "Basic " + base64.b64encode(b"\xff\xfe:\x80").decode(),
    "no colon": "Basic " + base64.b64encode(b"ci").decode(),
    "empty user": "Basic " + base64.b64encode(b":" + PASSWORD.encode()).decode(),
    "empty": "Basic ",
    "scheme alone": "Basic",
    "100 KB": "Basic " + "A" * 100_000,
    "100 KB login": "Basic " + base64.b64encode(b"ci:" + b"p" * 75_000).decode(),
    "several spaces": "Basic    " + base64.b64encode(b"ci:wrong").decode(),
    "tab": "Basic\t" + base64.b64encode(f"ci:{PASSWORD}".encode()).decode(),
    "lower-case scheme, wrong password": "basic " + base64.b64encode(b"ci:wrong").decode(),
    "bearer garbage": "Bearer \x00\u00ff" + "x" * 5000,
    "nul byte": "Basic " + base64.b64encode(f"ci\x00:{PASSWORD}".encode()).decode(),
    "two logins": basic("ci", "wrong") + "," + basic("dev", "x"),
    "password too long": basic("ci", PASSWORD + "x" * 100),
}


@pytest.mark.parametrize("value", HOSTILE_AUTHORIZATIONS.values(), ids=HOSTILE_AUTHORIZATIONS)
def test_any_authorization_value_is_a_401_with_the_challenge(handler, value):
    for method, path in (("GET", "/v2/"), ("HEAD", "/v2/a/manifests/1"), ("PUT", "/v2/a/x")):
        result = handler(method, path, value)
        assert result["statusCode"] == 401, (method, result)
        assert result["headers"]["WWW-Authenticate"] == 'Basic realm="ociwrap"'
        if method != "HEAD":
            assert json.loads(result["body"])["errors"][0]["code"] == "UNAUTHORIZED"


def test_a_lower_case_scheme_with_the_right_password_gets_through(handler):
    login = "basic " + base64.b64encode(f"ci:{PASSWORD}".encode()).decode()
    assert handler("GET", "/v2/", login)["statusCode"] == 200


# -- an unknown user costs what the strongest user's wrong password costs -----------------


@pytest.fixture
def checked_costs(monkeypatch) -> list[int]:
    """The cost of every hash bcrypt checks a password against, in order (read at the
    library's boundary: the `$2b$NN$` of the hash it is handed)."""
    costs: list[int] = []
    real = bcrypt.checkpw

    def checkpw(password: bytes, hashed: bytes) -> bool:
        costs.append(cost_of(hashed))
        return real(password, hashed)

    monkeypatch.setattr(bcrypt, "checkpw", checkpw)
    return costs


def test_an_unknown_user_costs_the_strongest_cost_among_the_users(tmp_path, checked_costs):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("weak", "w", cost=4) + "\n" + htpasswd_line("ci", "c", cost=6))
    users = users_of(path)
    assert users.check(basic("ci", "wrong")) is None
    assert users.check(basic("weak", "wrong")) is None
    assert users.check(basic("nobody", "wrong")) is None
    assert users.check(basic("somebody-else", "x" * 80)) is None  # too long: no user looked at
    assert checked_costs == [6, 4, 6, 6]


def test_the_unknown_user_hash_is_made_once_per_users_file(tmp_path, monkeypatch):
    seen: list[bytes] = []
    real = bcrypt.checkpw
    monkeypatch.setattr(
        bcrypt, "checkpw", lambda pw, hashed: seen.append(hashed) or real(pw, hashed)
    )
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("ci", "c", cost=4) + "\n")
    users = users_of(path)
    users.check(basic("nobody", "a"))
    users.check(basic("other", "b"))
    assert seen[0] == seen[1] and cost_of(seen[0]) == 4
    path.write_text(htpasswd_line("ci", "c", cost=4) + "\n" + htpasswd_line("ops", "o", cost=6))
    os.utime(path, (2, 2))
    users.check(basic("nobody", "a"))
    assert cost_of(seen[2]) == 6


def test_without_users_an_unknown_user_still_costs_a_round(tmp_path, checked_costs):
    path = tmp_path / "htpasswd"
    path.write_text("# nobody may pull yet\n")
    assert users_of(path).check(basic("ci", "x")) is None
    assert checked_costs == [5]


# -- limits, exactly at them and one past -------------------------------------------------


def test_bcrypt_costs_from_4_to_31_are_read_and_others_refused():
    salted = "a" * 53
    for cost in ("04", "31"):
        assert parse_htpasswd(f"ci:$2y${cost}${salted}") == {"ci": f"$2y${cost}${salted}".encode()}
    for cost in ("03", "32"):
        with pytest.raises(ValueError, match="line 1 is not a bcrypt htpasswd line"):
            parse_htpasswd(f"ci:$2y${cost}${salted}")


def test_an_authorization_value_of_4096_characters_is_read_and_one_more_is_not():
    encoded = base64.b64encode(b"ci:" + b"p" * 3063).decode()  # 4088 characters
    at_limit = "Basic" + " " * 3 + encoded
    assert len(at_limit) == 4096
    assert basic_login(at_limit) == ("ci", "p" * 3063)
    assert basic_login("Basic" + " " * 4 + encoded) is None


def test_base64_with_characters_outside_its_alphabet_is_no_login():
    encoded = base64.b64encode(b"ci:pw").decode()
    assert basic_login(f"Basic {encoded[:4]}!{encoded[4:]}") is None


def test_a_password_of_72_bytes_passes_and_73_never_reach_bcrypt(tmp_path, checked_costs):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("long", "p" * 72) + "\n")
    users = users_of(path)
    assert users.check(basic("long", "p" * 72)) == "long"
    assert users.check(basic("long", "p" * 73)) is None
    assert users.check(basic("long", "é" * 37)) is None  # 74 bytes in UTF-8
    assert len(checked_costs) == 3  # the long ones cost a round against the unknown user


def test_neither_setting_is_a_503_naming_both(tmp_path):
    users = Users(SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", None))
    with pytest.raises(RegistryError) as caught:
        users.check(basic("ci", PASSWORD))
    assert caught.value.status == 503
    assert caught.value.message == (
        "REGISTRY_AUTH=basic needs REGISTRY_AUTH_SECRET or REGISTRY_AUTH_FILE"
    )


def test_a_refused_login_is_logged_with_its_user_cut_to_64_characters(tmp_path, caplog):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("ci", PASSWORD) + "\n")
    name = "u" * 100
    with caplog.at_level(logging.WARNING, logger="ociwrap"):
        assert users_of(path).check(basic(name, PASSWORD)) is None
    [record] = [r for r in caplog.records if r.name == "ociwrap.registry.access"]
    assert record.getMessage() == "login refused" and record.levelno == logging.WARNING
    assert record.user == name[:64]


# -- a verified login is remembered for exactly VERIFIED_SECONDS ---------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_verified_login_is_remembered_for_exactly_five_minutes(tmp_path, checked_costs):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("ci", PASSWORD) + "\n")
    clock = Clock()
    users = Users(
        SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", str(path)), clock
    )
    assert users.check(basic("ci", PASSWORD)) == "ci"
    assert len(checked_costs) == 1
    clock.now += 299
    assert users.check(basic("ci", PASSWORD)) == "ci"
    assert len(checked_costs) == 1  # remembered: no bcrypt round
    clock.now += 1
    assert users.check(basic("ci", PASSWORD)) == "ci"
    assert len(checked_costs) == 2  # five minutes on: checked again


def test_a_user_removed_from_the_file_is_refused_once_the_login_is_forgotten(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("ci", PASSWORD) + "\n" + htpasswd_line("ops", "o") + "\n")
    clock = Clock()
    users = Users(
        SecretDocument("REGISTRY_AUTH_SECRET", None, "REGISTRY_AUTH_FILE", str(path)), clock
    )
    assert users.check(basic("ci", PASSWORD)) == "ci"
    path.write_text(htpasswd_line("ops", "o") + "\n")
    os.utime(path, (5, 5))
    clock.now += 300
    assert users.check(basic("ci", PASSWORD)) is None


def test_a_remembered_login_is_only_its_own_user_and_password(tmp_path):
    path = tmp_path / "htpasswd"
    path.write_text(htpasswd_line("ci", PASSWORD) + "\n" + htpasswd_line("dev", "x") + "\n")
    users = users_of(path)
    assert users.check(basic("ci", PASSWORD)) == "ci"
    assert users.check(basic("dev", PASSWORD)) is None
    assert users.check(basic("ci", "x")) is None
    assert users.check(basic("dev", "x")) == "dev"


def test_every_bcrypt_variant_and_salt_character_is_read():
    salted = "./" + "AZaz09" * 8 + "abc"
    assert len(salted) == 53
    for variant in ("2a", "2b", "2y"):
        line = f"ci:${variant}$04${salted}"
        assert parse_htpasswd(line) == {"ci": line[3:].encode()}
    for line in (f"ci:$2x$04${salted}", f"ci:$2y$04${salted[:-1]}", f"ci:$2y$04${salted}a"):
        with pytest.raises(ValueError, match="line 1"):
            parse_htpasswd(line)


def test_a_line_needs_a_user_and_one_colon():
    hashed = "$2y$04$" + "a" * 53
    for line in (f":{hashed}", f"a:b:{hashed}"):
        with pytest.raises(ValueError, match="line 1"):
            parse_htpasswd(line)


def test_the_unknown_user_hash_is_a_bcrypt_hash_at_the_highest_cost():
    users = parse_htpasswd(f"a:$2y$04${'a' * 53}\nb:$2y$12${'a' * 53}\nc:$2y$10${'a' * 53}")
    nobody = nobody_hash(users).decode()
    assert nobody.startswith("$2b$12$") and cost_of(nobody.encode()) == 12
    assert parse_htpasswd(f"nobody:{nobody}") == {"nobody": nobody.encode()}


def test_a_two_digit_cost_is_read_whole(tmp_path, monkeypatch):
    seen: list[bytes] = []
    real = bcrypt.checkpw
    monkeypatch.setattr(
        bcrypt, "checkpw", lambda pw, hashed: seen.append(hashed) or real(pw, hashed)
    )
    path = tmp_path / "htpasswd"
    path.write_text(f"ci:$2y$10${'a' * 53}\n")
    assert users_of(path).check(basic("nobody", "x")) is None
    assert [hashed[:7] for hashed in seen] == [b"$2b$10$"]
