"""A tiny Bearer token issuer for a Docker registry's `auth.token` (the Docker Hub flow).

The registry answers 401 with `WWW-Authenticate: Bearer realm=...,service=...,scope=...`;
the client fetches `GET realm?service=..&scope=repository:NAME:pull` here and retries with
the JWT. The issuer grants every requested action to anyone: the tests are about the token
dance (and about who holds the token: a client redirected elsewhere loses it), not about
authorisation policy.

distribution 2.8 checks the JWT against `auth.token.rootcertbundle`: the signing
certificate travels in the header's `x5c` and must chain to that bundle (a self-signed
certificate listed in the bundle does), `iss` must equal `auth.token.issuer`, `aud` must
equal `auth.token.service`, and `exp`/`nbf` must hold.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from harness.procs import ServerThread, free_port

TOKEN_LIFETIME = 300


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def parse_scope(scope: str) -> dict[str, Any] | None:
    """`repository:NAME:pull,push` -> an `access` entry; names may contain `:` (ports)."""
    kind, _, rest = scope.partition(":")
    name, sep, actions = rest.rpartition(":")
    if not kind or not sep or not name:
        return None
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


class TokenIssuer:
    """Serves `/token` on 127.0.0.1 and signs RS256 JWTs with a fresh self-signed cert."""

    def __init__(
        self,
        workdir: Path,
        *,
        service: str = "harness-registry",
        logins: dict[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.service = service
        # With logins, a token is given only for a valid Basic login (a private registry).
        self.logins = dict(logins or {})
        self.issuer = "harness-token-issuer"
        self.host = "127.0.0.1"
        self.port = free_port(self.host)
        self.url = f"http://{self.host}:{self.port}"
        self.realm = f"{self.url}/token"
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._cert = self._self_signed(self._key)
        self.cert_path = self.workdir / "token-issuer.pem"
        self.cert_path.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))
        self._lock = threading.Lock()
        self.scopes: list[str] = []
        self.issued: list[str] = []  # every token handed out, for tests that look for leaks
        self._counts: Counter[str] = Counter()
        self._serving: ServerThread | None = None

    @staticmethod
    def _self_signed(key: rsa.RSAPrivateKey) -> x509.Certificate:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "harness token issuer")])
        now = dt.datetime.now(dt.UTC)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(hours=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )

    def auth_config(self) -> dict[str, Any]:
        """The `auth:` section of a registry config that trusts this issuer."""
        return {
            "token": {
                "realm": self.realm,
                "service": self.service,
                "issuer": self.issuer,
                "rootcertbundle": str(self.cert_path),
            }
        }

    def make_token(
        self,
        access: list[dict[str, Any]],
        *,
        subject: str = "anonymous",
        lifetime: int = TOKEN_LIFETIME,
        audience: str | None = None,
        issuer: str | None = None,
    ) -> str:
        """An RS256 JWT for `access`, carrying the certificate in `x5c` as distribution wants.

        `lifetime`, `audience` and `issuer` can be bent to make tokens the registry must
        refuse (expired, for another service, from another issuer).
        """
        now = int(dt.datetime.now(dt.UTC).timestamp())
        header = {
            "typ": "JWT",
            "alg": "RS256",
            "x5c": [base64.b64encode(self._cert.public_bytes(serialization.Encoding.DER)).decode()],
        }
        claims = {
            "iss": issuer or self.issuer,
            "sub": subject,
            "aud": audience or self.service,
            "exp": now + lifetime,
            "nbf": min(now, now + lifetime) - 10,
            "iat": now,
            "jti": uuid.uuid4().hex,
            "access": access,
        }
        signing_input = (
            _b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + _b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = self._key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64url(signature)}"

    def count(self, path: str = "/token") -> int:
        """How many requests this issuer has answered on `path`."""
        with self._lock:
            return self._counts[path]

    def accepts(self, authorization: str) -> bool:
        """Does an `Authorization: Basic` value carry one of the logins?"""
        scheme, _, encoded = authorization.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode().partition(":")
        except ValueError:
            return False
        return self.logins.get(user) == password

    def _record(self, path: str, scopes: list[str]) -> None:
        with self._lock:
            self._counts[path] += 1
            self.scopes.extend(scopes)

    def start(self) -> TokenIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True  # headers and body go out at once

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = parse_qs(url.query)
                scopes = [s for value in query.get("scope", []) for s in value.split(" ") if s]
                issuer._record(url.path, scopes)
                if url.path != "/token":
                    self.send_error(404)
                    return
                if issuer.logins and not issuer.accepts(self.headers.get("Authorization", "")):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="harness-token"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                access = [entry for s in scopes if (entry := parse_scope(s)) is not None]
                token = issuer.make_token(access, subject=query.get("account", ["anonymous"])[0])
                issuer.issued.append(token)
                body = json.dumps(
                    {
                        "token": token,
                        "access_token": token,
                        "expires_in": TOKEN_LIFETIME,
                        "issued_at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: counts and scopes are kept on the issuer instead."""

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        self._serving = ServerThread(server, "token-issuer").start()
        return self

    def stop(self) -> None:
        if self._serving is not None:
            self._serving.stop()
            self._serving = None

    def __enter__(self) -> TokenIssuer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
