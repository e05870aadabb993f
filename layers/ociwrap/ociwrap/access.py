"""Who may pull: HTTP Basic logins checked against htpasswd bcrypt lines.

With `REGISTRY_AUTH=basic`, the users are the `user:$2y$...` lines `htpasswd -B`
writes, kept in a secret (`REGISTRY_AUTH_SECRET`) or a file (`REGISTRY_AUTH_FILE`).
bcrypt compares in constant time, and an unknown user costs the same bcrypt
round as a known one, so timing tells nothing about which users exist. Clients
send their login on every request; a verified login is remembered (by a keyed
hash, never the password) for a few minutes so that a pull costs one bcrypt
round, not one per request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import os
import threading

import bcrypt

from ociwrap import errors
from ociwrap.memcache import BoundedCache
from ociwrap.secrets import SecretDocument

REALM = "ociwrap"
VERIFIED_SECONDS = 300
MAX_PASSWORD_BYTES = 72
_BCRYPT_PREFIXES = ("$2a$", "$2b$", "$2y$")
#: Checked against when the user is unknown, so that costs a bcrypt round as well.
_NOBODY = bcrypt.hashpw(b"nobody", bcrypt.gensalt(5))

logger = logging.getLogger(__name__)


def parse_htpasswd(text: str, setting: str) -> dict[str, bytes]:
    """{user: bcrypt hash} from htpasswd lines; any line that is not bcrypt is refused."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        if not sep or not user or not hashed.startswith(_BCRYPT_PREFIXES):
            raise errors.storage_unavailable(
                f"{setting} line {number} is not a bcrypt htpasswd line (write it with htpasswd -B)"
            )
        users[user] = hashed.encode()
    return users


def basic_login(authorization: str) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value, else None."""
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, sep, password = (
            base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        )
    except (binascii.Error, UnicodeDecodeError):
        return None
    return (user, password) if sep and user else None


class Users:
    """The users of `REGISTRY_AUTH=basic` and the check of their logins."""

    def __init__(self, document: SecretDocument) -> None:
        self.document = document
        self._parsed: tuple[str, dict[str, bytes]] | None = None
        self._verified = BoundedCache(max_entries=1024)
        self._key: bytes | None = None  # for remembering logins without keeping passwords
        self._lock = threading.Lock()

    def _remembering_key(self) -> bytes:
        """Made on first use, not when built: an instance resumed from a SnapStart snapshot
        must not share it with every other instance resumed from the same snapshot."""
        with self._lock:
            if self._key is None:
                self._key = os.urandom(32)
            return self._key

    def _users(self) -> dict[str, bytes]:
        text = self.document.text()
        setting = (
            self.document.secret_setting
            if self.document.secret_name
            else (self.document.file_setting)
        )
        if text is None:
            raise errors.storage_unavailable(
                f"REGISTRY_AUTH=basic needs {self.document.secret_setting} or "
                f"{self.document.file_setting}"
            )
        with self._lock:
            if self._parsed is None or self._parsed[0] != text:
                self._parsed = (text, parse_htpasswd(text, setting))
            return self._parsed[1]

    def check(self, authorization: str | None) -> str | None:
        """The user an `Authorization` header proves, or None (logged, without the password)."""
        users = self._users()
        login = basic_login(authorization or "")
        if login is None:
            return None
        user, password = login
        remembered = hmac.new(
            self._remembering_key(), f"{user}\0{password}".encode(), hashlib.sha256
        ).digest()
        if self._verified.get(remembered.hex()) == user:
            return user
        hashed = users.get(user)
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:  # bcrypt reads no further; refuse, do not cut
            hashed, secret = None, b"too long"
        matches = bcrypt.checkpw(secret, hashed or _NOBODY)
        if hashed is None or not matches:
            logger.warning("login refused", extra={"user": user[:64]})
            return None
        self._verified.put(remembered.hex(), user, ttl=VERIFIED_SECONDS)
        return user
