"""Unit-test fixtures: no test here reaches beyond 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from moto import mock_aws

from ociwrap.aws import make_s3_client
from scripted_upstream import Scripted


class ConnectAttempts(list):
    """Every address a test's code tried to resolve or connect to."""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> ConnectAttempts:
    """Make every connect and DNS lookup fail inside the test, and record the attempts.

    A broken guard then fails a test instead of sending a packet anywhere.
    """
    attempts = ConnectAttempts()

    def refuse_connect(self: socket.socket, address: object) -> None:
        attempts.append(("connect", address))
        raise OSError("network disabled in this test")

    def refuse_lookup(host: object, *args: object, **kwargs: object) -> list:
        attempts.append(("getaddrinfo", host))
        raise socket.gaierror(socket.EAI_NONAME, "network disabled in this test")

    monkeypatch.setattr(socket.socket, "connect", refuse_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse_connect)
    monkeypatch.setattr(socket, "getaddrinfo", refuse_lookup)
    monkeypatch.setattr(socket, "create_connection", refuse_lookup)
    return attempts


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    """A scripted upstream registry on 127.0.0.1 (see scripted_upstream)."""
    server = Scripted()
    yield server
    server.stop()


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> ConnectAttempts:
    """Let connections reach 127.0.0.1 only; refuse and record every other destination.

    For tests that talk to a scripted upstream on loopback and prove that it cannot send
    the registry anywhere else: a broken guard fails the test, it sends no packet.
    """
    attempts = ConnectAttempts()
    real_connect = socket.socket.connect

    def connect(self: socket.socket, address: object) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost"):
            attempts.append(("connect", address))
            raise OSError("only loopback in this test")
        real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture(scope="module")
def s3() -> Iterator[object]:
    """An S3 client on moto's in-process mock: one mock per test module (buckets are cheap,
    starting mocks is not); tests create buckets of their own names."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        with mock_aws():
            yield make_s3_client(region="us-east-1")
