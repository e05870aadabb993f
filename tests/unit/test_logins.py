"""Upstream logins: Docker's config.json format, which registry a login is for, how the
transport uses it (Basic, Bearer with a password or an identity token, ECR from the role),
and that it never goes where it should not."""

from __future__ import annotations

import base64
import json
import socket
from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from ociwrap.names.reference import Registry, Repository, resolve_repository
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.secrets import SecretDocument
from ociwrap.upstream.challenge import choose
from ociwrap.upstream.credentials import Credential, CredentialsError, find, keys_for, parse_auths
from ociwrap.upstream.ecr import EcrLogins, ecr_registry
from ociwrap.upstream.logins import UpstreamLogins
from ociwrap.upstream.tokens import Tokens
from ociwrap.upstream.transport import Transport


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


AUTHS = {
    "auths": {
        "https://index.docker.io/v1/": {"auth": b64("hubuser:hubpass")},
        "ghcr.io": {"username": "octo", "password": "ghp_secret"},
        "registry.corp.example:5443": {"auth": b64("corp:pa:ss")},
        "local": {"identitytoken": "refresh-me"},
    }
}


# -- config.json --------------------------------------------------------------------------


def test_config_json_entries_are_parsed():
    auths = parse_auths(AUTHS)
    assert auths["index.docker.io"] == Credential("hubuser", "hubpass")
    assert auths["ghcr.io"] == Credential("octo", "ghp_secret")
    assert auths["registry.corp.example:5443"] == Credential("corp", "pa:ss")
    assert auths["local"] == Credential(identity_token="refresh-me")


@pytest.mark.parametrize(
    "document",
    [
        {},
        {"auths": []},
        {"auths": {"x": "string"}},
        {"auths": {"x": {"auth": "not base64!"}}},
        {"auths": {"x": {}}},
        {"auths": {"x": {"username": "only"}}},
        {"auths": {"x": {"username": 1, "password": 2}}},
    ],
)
def test_unusable_documents_are_refused_without_echoing_secrets(document):
    with pytest.raises(CredentialsError) as caught:
        parse_auths(document)
    assert "not base64!" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "aliases", "login"),
    [
        ("busybox", {}, "hubuser"),
        ("docker.io/library/busybox", {}, "hubuser"),
        ("ghcr.io/acme/tool", {}, "octo"),
        ("quay.io/acme/tool", {}, None),
        ("local/team/app", {"local": "http://127.0.0.1:5001"}, ""),
        ("corp/app", {"corp": "https://registry.corp.example:5443"}, "corp"),
    ],
)
def test_logins_are_found_as_docker_files_them(name, aliases, login):
    repo = resolve_repository(name, aliases)
    found = find(parse_auths(AUTHS), repo.registry)
    assert (found.username if found else None) == login


def test_keys_of_docker_hub_and_aliases():
    hub = resolve_repository("busybox", {}).registry
    assert "https://index.docker.io/v1/".rstrip("/") not in keys_for(hub)  # normalised
    assert "index.docker.io" in keys_for(hub) and "docker.io" in keys_for(hub)
    alias = Registry("corp", "https://r.corp.example:5443", trusted=True)
    assert keys_for(alias) == ["corp", "r.corp.example:5443"]


def test_a_login_never_shows_its_secret():
    login = Credential("user", "hunter2", "tok")
    assert "hunter2" not in repr(login) and "tok" not in repr(login)
    assert len(login.fingerprint) == 16 and "hunter2" not in login.fingerprint


# -- the logins in effect -----------------------------------------------------------------


def logins_from(tmp_path, document: object) -> UpstreamLogins:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return UpstreamLogins(file_source(str(path)), None)


def file_source(path: str | None) -> SecretDocument:
    return SecretDocument("UPSTREAM_CREDENTIALS_SECRET", None, "UPSTREAM_CREDENTIALS_FILE", path)


@pytest.mark.parametrize("text", ["{not json", '{"auths": {"x": {}}}'])
def test_an_unusable_credentials_file_is_a_503_naming_it(tmp_path, text):
    logins = logins_from(tmp_path, text)
    with pytest.raises(RegistryError) as caught:
        logins.for_registry(resolve_repository("busybox", {}).registry)
    assert caught.value.status == 503
    assert "UPSTREAM_CREDENTIALS_FILE" in caught.value.message


def test_a_missing_credentials_file_is_a_503_naming_it(tmp_path):
    with pytest.raises(RegistryError) as caught:
        UpstreamLogins(file_source(str(tmp_path / "none")), None).private(
            resolve_repository("busybox", {}).registry
        )
    assert caught.value.status == 503 and "UPSTREAM_CREDENTIALS_FILE" in caught.value.message


def test_registries_with_a_login_are_private(tmp_path):
    logins = logins_from(tmp_path, AUTHS)
    assert logins.private(resolve_repository("ghcr.io/a/b", {}).registry)
    assert not logins.private(resolve_repository("quay.io/a/b", {}).registry)


# -- the transport with logins ------------------------------------------------------------


@pytest.fixture
def repo(scripted) -> Repository:
    return Repository(Registry("stub", scripted.url, trusted=True), "team/app")


class Fixed:
    """Logins as `UpstreamLogins` hands them out, here one per test."""

    def __init__(self, login: Credential | None) -> None:
        self.login = login
        self.rejections = 0

    def for_registry(self, registry: Registry) -> Credential | None:
        return self.login

    def rejected(self, registry: Registry) -> None:
        self.rejections += 1


def test_basic_upstreams_get_the_login_and_keep_getting_it(scripted, repo):
    login = Credential("u", "p")

    def manifest(handler):
        if handler.headers.get("Authorization") == login.basic():
            return 200, {}, b"{}"
        return 401, {"WWW-Authenticate": 'Basic realm="stub"'}, b""

    scripted.routes["GET", "/v2/team/app/manifests/1"] = manifest
    transport = Transport(Fixed(login))
    for _ in range(3):
        assert transport.request(repo, "GET", "manifests/1").status_code == 200
    auths = [h.get("Authorization", "") for _m, _p, h in scripted.seen]
    assert auths == ["", login.basic(), login.basic(), login.basic()]


def test_a_rejected_basic_login_is_renewed_once(scripted, repo):
    logins = Fixed(Credential("u", "old"))
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": 'Basic realm="stub"'},
        b"",
    )
    transport = Transport(logins)
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    assert transport.request(repo, "GET", "manifests/1").status_code == 401
    assert logins.rejections >= 1
    assert len(scripted.seen) <= 4


def test_bearer_realms_get_the_login_as_basic(scripted, repo):
    login = Credential("u", "p")
    challenge = (
        f'Bearer realm="{scripted.url}/token",service="stub",scope="repository:team/app:pull"'
    )
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == "Bearer t-u"
        else (401, {"WWW-Authenticate": challenge}, b"")
    )
    scripted.routes["GET", "/token"] = lambda h: (
        (200, {}, b'{"token": "t-u"}')
        if h.headers.get("Authorization") == login.basic()
        else (401, {}, b"")
    )
    assert Transport(Fixed(login)).request(repo, "GET", "manifests/1").status_code == 200
    manifest_auths = [h.get("Authorization") for _m, p, h in scripted.seen if "/manifests/" in p]
    assert login.basic() not in manifest_auths  # the password went to the realm only


def test_identity_tokens_are_exchanged_at_the_realm(scripted, repo):
    login = Credential(identity_token="refresh-me")
    forms: list[str] = []
    challenge = f'Bearer realm="{scripted.url}/token",service="stub"'

    def token(handler):
        body = handler.rfile.read(int(handler.headers["Content-Length"])).decode()
        forms.append(body)
        return 200, {}, b'{"access_token": "t-id"}'

    scripted.routes["POST", "/token"] = token
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == "Bearer t-id"
        else (401, {"WWW-Authenticate": challenge}, b"")
    )
    assert Transport(Fixed(login)).request(repo, "GET", "manifests/1").status_code == 200
    assert "grant_type=refresh_token" in forms[0] and "refresh_token=refresh-me" in forms[0]


def test_a_refused_login_at_the_realm_names_the_setting(scripted, repo):
    challenge = f'Bearer realm="{scripted.url}/token",service="stub"'
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": challenge},
        b"",
    )
    scripted.routes["GET", "/token"] = lambda h: (401, {}, b"")
    logins = Fixed(Credential("u", "p"))
    with pytest.raises(RegistryError) as caught:
        Transport(logins).request(repo, "GET", "manifests/1")
    assert (caught.value.code, caught.value.status) == ("UNAUTHORIZED", 401)
    assert "UPSTREAM_CREDENTIALS_SECRET" in caught.value.message
    assert logins.rejections == 1


def test_a_login_is_never_sent_to_a_plain_http_realm_of_a_public_registry(scripted):
    """Only aliases may use plain HTTP; a path-named registry's realm must be HTTPS."""
    public = Repository(Registry("registry.example.com", scripted.url, trusted=False), "a/b")
    challenge = f'Bearer realm="{scripted.url}/token",service="stub"'
    scripted.routes["GET", "/v2/a/b/manifests/1"] = lambda h: (
        401,
        {"WWW-Authenticate": challenge},
        b"",
    )
    transport = Transport(Fixed(Credential("u", "p")))

    with pytest.raises(RegistryError) as caught:
        Tokens().fetch(public, choose([challenge]), transport.send, Credential("u", "p"))
    assert "not HTTPS" in caught.value.message
    assert scripted.requests_to("/token") == []


# -- ECR ----------------------------------------------------------------------------------


def test_ecr_hosts_are_recognised():
    assert ecr_registry("123456789012.dkr.ecr.eu-west-1.amazonaws.com") == (
        "123456789012",
        "eu-west-1",
    )
    assert ecr_registry("123456789012.dkr.ecr-fips.us-east-1.amazonaws.com")
    assert ecr_registry("public.ecr.aws") is None
    assert ecr_registry("12345.dkr.ecr.us-east-1.amazonaws.com") is None
    assert ecr_registry("123456789012.dkr.ecr.us-east-1.amazonaws.com.evil.example") is None


class Clock:
    """moto's ECR says its logins expire on 2015-01-01; this clock starts before that."""

    def __init__(self) -> None:
        self.now = 1_400_000_000.0  # 2014-05

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ecr(s3, clock):  # the module's moto mock serves ECR too
    from ociwrap.runtime.aws import make_client

    return EcrLogins(lambda region: make_client("ecr", "Amazon ECR", region), clock)


def test_ecr_logins_come_from_the_role_and_are_cached(ecr, clock):
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    login = ecr.for_host(host)
    assert login is not None and login.username == "AWS" and login.password
    assert ecr.for_host(host) is login
    ecr.forget(host)  # the registry rejected it
    renewed = ecr.for_host(host)
    assert renewed is not login
    clock.now = 1_420_070_400.0 - 100  # within five minutes of the expiry
    assert ecr.for_host(host) is not renewed
    assert ecr.for_host("quay.io") is None


def test_an_ecr_upstream_is_pulled_with_the_roles_login(ecr, scripted, monkeypatch):
    """An alias whose host is an ECR name (resolved to the scripted upstream on 127.0.0.1)."""
    host = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
    port = scripted.url.rsplit(":", 1)[1]
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda name, *rest, **kw: real("127.0.0.1" if name == host else name, *rest, **kw),
    )
    expected = ecr.for_host(host)
    scripted.routes["GET", "/v2/team/app/manifests/1"] = lambda h: (
        (200, {}, b"{}")
        if h.headers.get("Authorization") == expected.basic()
        else (
            401,
            {"WWW-Authenticate": f'Basic realm="https://{host}/",service="ecr.amazonaws.com"'},
            b"",
        )
    )
    source = SecretDocument("UPSTREAM_CREDENTIALS_SECRET", None, "UPSTREAM_CREDENTIALS_FILE", None)
    transport = Transport(UpstreamLogins(source, ecr))
    repo = Repository(Registry("ecr", f"http://{host}:{port}", trusted=True), "team/app")
    assert transport.request(repo, "GET", "manifests/1").status_code == 200


# -- secrets ------------------------------------------------------------------------------


def test_logins_come_from_secrets_manager_and_rotation_is_picked_up(s3):
    import time

    import boto3

    client = boto3.client("secretsmanager", region_name="us-east-1")
    arn = client.create_secret(Name="ociwrap/upstreams", SecretString=json.dumps(AUTHS))["ARN"]
    source = SecretDocument(
        "UPSTREAM_CREDENTIALS_SECRET", arn, "UPSTREAM_CREDENTIALS_FILE", None, 1
    )
    logins = UpstreamLogins(source, None)
    ghcr = resolve_repository("ghcr.io/a/b", {}).registry
    assert logins.for_registry(ghcr).password == "ghp_secret"
    rotated = {"auths": {"ghcr.io": {"username": "octo", "password": "ghp_rotated"}}}
    client.put_secret_value(SecretId=arn, SecretString=json.dumps(rotated))
    assert logins.for_registry(ghcr).password == "ghp_secret"  # cached for max_age
    time.sleep(1.1)
    assert logins.for_registry(ghcr).password == "ghp_rotated"


def test_a_missing_secret_is_a_503_naming_the_setting(s3):
    source = SecretDocument(
        "UPSTREAM_CREDENTIALS_SECRET", "no-such-secret", "UPSTREAM_CREDENTIALS_FILE", None
    )
    with pytest.raises(RegistryError) as caught:
        UpstreamLogins(source, None).for_registry(resolve_repository("busybox", {}).registry)
    assert caught.value.status == 503
    assert "UPSTREAM_CREDENTIALS_SECRET" in caught.value.message
    assert "ResourceNotFoundException" in caught.value.message


# -- exactly which key, which message, which moment ---------------------------------------


@pytest.mark.parametrize(
    "key", ["https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"]
)
def test_a_docker_hub_login_is_found_under_every_key_docker_writes(key):
    auths = parse_auths({"auths": {key: {"auth": b64("hubuser:hubpass")}}})
    assert find(auths, resolve_repository("busybox", {}).registry) == Credential(
        "hubuser", "hubpass"
    )


def test_registry_keys_are_normalised_as_docker_writes_them():
    auths = parse_auths(
        {
            "auths": {
                " HTTPS://GHCR.IO/v2/ ": {"username": "octo", "password": "p"},
                "Quay.io/": {"identitytoken": "t", "username": "robot"},
            }
        }
    )
    assert auths == {
        "ghcr.io": Credential("octo", "p"),
        "quay.io": Credential("robot", "", "t"),
    }


def test_an_alias_login_wins_over_one_for_its_host():
    auths = parse_auths(
        {
            "auths": {
                "r.corp.example:5443": {"auth": b64("by-host:p")},
                "corp": {"auth": b64("by-alias:p")},
            }
        }
    )
    alias = Registry("corp", "https://r.corp.example:5443", trusted=True)
    assert find(auths, alias).username == "by-alias"
    assert keys_for(Registry("ghcr.io", "https://ghcr.io")) == ["ghcr.io"]


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ("string", "the entry for 'x' is not an object"),
        ({"auth": "not base64!"}, "the 'auth' of 'x' is not base64 of user:password"),
        (
            {"auth": "/w=="},
            "the 'auth' of 'x' is not base64 of user:password",
        ),
        ({"auth": 5}, "the 'auth' of 'x' is not base64 of user:password"),
        ({"auth": "dT!pw"}, "the 'auth' of 'x' is not base64 of user:password"),
        ({"username": "u", "password": 2}, "the entry for 'x' has values that are not strings"),
        ({"identitytoken": ["t"]}, "the entry for 'x' has values that are not strings"),
        ({"password": "p"}, "the entry for 'x' has no auth, username/password or token"),
        ({"auth": b64("user")}, "the entry for 'x' has no auth, username/password or token"),
    ],
)
def test_unusable_entries_say_why(entry, message):
    with pytest.raises(CredentialsError) as caught:
        parse_auths({"auths": {"x": entry}})
    assert str(caught.value) == message


def test_a_document_without_auths_says_what_is_expected():
    with pytest.raises(CredentialsError) as caught:
        parse_auths([])
    assert str(caught.value) == 'expected {"auths": {"<registry>": {...}}}, as docker writes it'


def test_an_auth_entry_wins_over_username_and_password():
    entry = {"auth": b64("from-auth:pw:with:colons"), "username": "u", "password": "p"}
    assert parse_auths({"auths": {"x": entry}})["x"] == Credential("from-auth", "pw:with:colons")


def test_fingerprints_tell_every_part_of_a_login_apart():
    logins = [
        Credential("ab", "c"),
        Credential("a", "bc"),
        Credential("a", "b", "c"),
        Credential("a", "", "bc"),
        Credential("a", "b"),
    ]
    assert len({login.fingerprint for login in logins}) == len(logins)
    assert Credential("a", "b").fingerprint == Credential("a", "b").fingerprint
    assert Credential("u", "p").basic() == "Basic " + b64("u:p")


def test_an_unreadable_credentials_document_says_it_is_not_json(tmp_path):
    logins = logins_from(tmp_path, "{not json")
    with pytest.raises(RegistryError) as caught:
        logins.private(resolve_repository("busybox", {}).registry)
    assert caught.value.message == "UPSTREAM_CREDENTIALS_FILE is not usable: not JSON"


# -- ECR, with a stand-in for the AWS client ----------------------------------------------

ECR_HOST = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
EXPIRES = 1_420_070_400.0


class EcrClient:
    """What `get_authorization_token` answers; each call recorded (or `failure` raised)."""

    def __init__(self, failure: Exception | None = None, data: object = None) -> None:
        self.failure = failure
        self.data = data
        self.calls: list[list[str]] = []

    def get_authorization_token(self, registryIds: list[str]):
        self.calls.append(registryIds)
        if self.failure is not None:
            raise self.failure
        if self.data is not None:
            return {"authorizationData": self.data}
        token = b64(f"AWS:pw:{len(self.calls)}")
        expires = datetime.fromtimestamp(EXPIRES, UTC)
        return {"authorizationData": [{"authorizationToken": token, "expiresAt": expires}]}


def ecr_with(client: EcrClient, clock: Clock) -> tuple[EcrLogins, list[str]]:
    regions: list[str] = []

    def make(region: str) -> EcrClient:
        regions.append(region)
        return client

    return EcrLogins(make, clock), regions


def test_an_ecr_login_is_kept_until_five_minutes_before_it_expires(clock):
    client = EcrClient()
    ecr, regions = ecr_with(client, clock)
    assert ecr.for_host(ECR_HOST) == Credential("AWS", "pw:1")
    assert client.calls == [["123456789012"]] and regions == ["eu-west-1"]
    clock.now = EXPIRES - 300.5
    assert ecr.for_host(ECR_HOST.upper()).password == "pw:2"  # another key: another login
    assert ecr.for_host(ECR_HOST).password == "pw:1"
    clock.now = EXPIRES - 300
    assert ecr.for_host(ECR_HOST).password == "pw:3"
    assert regions == ["eu-west-1"]  # one client per region


def test_each_region_gets_its_client(clock):
    ecr, regions = ecr_with(EcrClient(), clock)
    ecr.for_host("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    ecr.for_host("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn")
    ecr.for_host("123456789012.dkr.ecr.us-east-1.amazonaws.com")
    assert regions == ["us-east-1", "cn-north-1"]
    assert ecr_registry("210987654321.dkr.ecr.cn-north-1.amazonaws.com.cn") == (
        "210987654321",
        "cn-north-1",
    )
    assert ecr_registry("123456789012.DKR.ECR.US-EAST-1.AMAZONAWS.COM") == (
        "123456789012",
        "us-east-1",
    )


def test_forgetting_a_login_never_fetched_is_fine(clock):
    client = EcrClient()
    ecr, _ = ecr_with(client, clock)
    ecr.forget(ECR_HOST)
    assert ecr.for_host(ECR_HOST).password == "pw:1"
    ecr.forget("other.example.com")
    assert ecr.for_host(ECR_HOST).password == "pw:1"


@pytest.mark.parametrize(
    ("client", "code"),
    [
        (
            EcrClient(
                ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "no"}},
                    "GetAuthorizationToken",
                )
            ),
            "AccessDeniedException",
        ),
        (EcrClient(data=[]), "IndexError"),
        (EcrClient(data=[{"authorizationToken": b64("AWS:pw")}]), "KeyError"),
    ],
)
def test_no_login_from_ecr_is_a_503_naming_the_permission(clock, client, code):
    ecr, _ = ecr_with(client, clock)
    with pytest.raises(RegistryError) as caught:
        ecr.for_host(ECR_HOST)
    assert caught.value.status == 503
    assert caught.value.message == (
        f"Amazon ECR gave no login for account 123456789012 in eu-west-1 ({code}); the "
        "function's role needs ecr:GetAuthorizationToken (template parameter EcrRepositoryArns)"
    )


def no_file() -> SecretDocument:
    return SecretDocument("UPSTREAM_CREDENTIALS_SECRET", None, "UPSTREAM_CREDENTIALS_FILE", None)


def test_ecr_registries_are_private_only_with_ecr_logins(clock):
    ecr_repo = Registry("ecr", f"https://{ECR_HOST}", trusted=True)
    quay = resolve_repository("quay.io/a/b", {}).registry
    ecr, _ = ecr_with(EcrClient(), clock)
    assert UpstreamLogins(no_file(), ecr).private(ecr_repo)
    assert not UpstreamLogins(no_file(), ecr).private(quay)
    assert not UpstreamLogins(no_file(), None).private(ecr_repo)
    assert UpstreamLogins(no_file(), None).for_registry(ecr_repo) is None
    assert UpstreamLogins(no_file(), ecr).for_registry(quay) is None


def test_a_configured_login_for_an_ecr_host_wins_over_the_roles(tmp_path, clock):
    client = EcrClient()
    ecr, _ = ecr_with(client, clock)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {ECR_HOST: {"auth": b64("AWS:configured")}}}))
    logins = UpstreamLogins(file_source(str(path)), ecr)
    registry = Registry("ecr", f"https://{ECR_HOST}", trusted=True)
    assert logins.for_registry(registry) == Credential("AWS", "configured")
    assert client.calls == []


def test_a_rejected_ecr_login_is_fetched_again(clock):
    client = EcrClient()
    ecr, _ = ecr_with(client, clock)
    logins = UpstreamLogins(no_file(), ecr)
    registry = Registry("ecr", f"https://{ECR_HOST}", trusted=True)
    assert logins.for_registry(registry).password == "pw:1"
    assert logins.for_registry(registry).password == "pw:1"
    logins.rejected(registry)
    assert logins.for_registry(registry).password == "pw:2"
    UpstreamLogins(no_file(), None).rejected(registry)  # nothing to renew


def test_ecr_host_names_exactly():
    host = "123456789012.dkr.ecr-fips.us-east-1.amazonaws.com.cn"
    assert ecr_registry(host) == ("123456789012", "us-east-1")
    assert ecr_registry("123456789012.dkr.ecr.a.amazonaws.com") == ("123456789012", "a")
    assert ecr_registry(f"123456789012.dkr.ecr.{'a' * 30}.amazonaws.com") == (
        "123456789012",
        "a" * 30,
    )
    for wrong in (
        f"123456789012.dkr.ecr.{'a' * 31}.amazonaws.com",
        "123456789012.dkr.ecr..amazonaws.com",
        "1234567890123.dkr.ecr.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr-gov.us-east-1.amazonaws.com",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com.de",
        "123456789012.dkr.ecr.us_east_1.amazonaws.com",
    ):
        assert ecr_registry(wrong) is None, wrong
    for position in [n for n, c in enumerate(host) if c == "."]:
        assert ecr_registry(host[:position] + "x" + host[position + 1 :]) is None, position
