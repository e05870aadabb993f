"""Unit-test fixtures: no test here may reach the network."""

from __future__ import annotations

import socket

import pytest


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
