"""Header bytes outside ASCII in `Authorization` are a 401 through the local gateway.

API Gateway hands the handler such bytes as they came; http.client would refuse to send
them, so the request is written on a socket. The logins themselves are tested in
`tests/unit/test_access.py`.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from harness.gateway import LocalGateway, gateway_without_s3
from harness.logins import htpasswd_line

pytestmark = pytest.mark.integration

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def locked_gateway(tmp_path_factory) -> Iterator[LocalGateway]:
    """The real handler behind the local gateway, with REGISTRY_AUTH=basic (no S3 needed:
    a request without a valid login is answered before anything is looked up)."""
    workdir = tmp_path_factory.mktemp("locked")
    users = workdir / "htpasswd"
    users.write_text(htpasswd_line("ci", PASSWORD) + "\n")
    gw = gateway_without_s3(
        workdir, GATEWAY_WORKERS="1", REGISTRY_AUTH="basic", REGISTRY_AUTH_FILE=str(users)
    ).start(timeout=30)
    yield gw
    gw.stop()


def raw_request(port: int, authorization: bytes) -> tuple[int, dict[str, str], bytes]:
    """GET /v2/ with these exact `Authorization` bytes (http.client would refuse them)."""
    request = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    request += b"Authorization: " + authorization + b"\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        answer = http.client.HTTPResponse(connection)
        answer.begin()
        return answer.status, dict(answer.getheaders()), answer.read()


@pytest.mark.parametrize(
    "authorization",
    [
        b"Basic \xff\xfe\xe9",
        "Basic é".encode() + base64.b64encode(f"ci:{PASSWORD}".encode()),
        b"Basic " + base64.b64encode(f"ci:{PASSWORD}".encode()) + b"\x80",
        b"Basic " + base64.b64encode("cï:pässword".encode("latin-1")),
        b"Bearer \xc3\x28\xa0\xa1",
    ],
    ids=["latin-1 bytes", "utf-8 before the login", "a byte after it", "latin-1 login", "bearer"],
)
def test_header_bytes_outside_ascii_are_a_401_through_the_gateway(locked_gateway, authorization):
    logged = len(locked_gateway.log())
    status, headers, body = raw_request(locked_gateway.port, authorization)
    assert status == 401
    assert headers["WWW-Authenticate"] == 'Basic realm="ociwrap"'
    assert json.loads(body)["errors"][0]["code"] == "UNAUTHORIZED"
    login = b"Basic " + base64.b64encode(f"ci:{PASSWORD}".encode())
    assert raw_request(locked_gateway.port, login)[0] == 200  # the gateway is still serving
    assert "Traceback" not in locked_gateway.log()[logged:]
