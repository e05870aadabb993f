"""Who may pull: HTTP Basic logins checked against htpasswd bcrypt lines.

With `REGISTRY_AUTH=basic`, the users are the `user:$2y$...` lines `htpasswd -B`
writes, kept in a secret (`REGISTRY_AUTH_SECRET`) or a file (`REGISTRY_AUTH_FILE`).
bcrypt compares in constant time, and an unknown user costs a bcrypt round at the
highest cost among the users (`htpasswd -B -C 12` users make every unknown name cost
what a cost-12 wrong password costs), so timing tells nothing about which users
exist. Whatever an `Authorization` header holds (any bytes, any length, any scheme),
it is a login or it is not: never an error. Clients
send their login on every request; a verified login is remembered (by a keyed
hash, never the password) for a few minutes so that a pull costs one bcrypt
round, not one per request.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import os
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import bcrypt

from ociwrap.runtime import errors
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.runtime.secrets import ParsedDocument, SecretDocument

VERIFIED_SECONDS = 300
MAX_PASSWORD_BYTES = 72
#: Longer `Authorization` values are no login (a user name and a 72-byte password in
#: base64 take a few hundred bytes); they are refused before they are decoded.
MAX_AUTHORIZATION_CHARS = 4096
#: The cost of the unknown-user check when there are no users (htpasswd -B's default).
DEFAULT_COST = 5
#: What `htpasswd -B` writes: `$2y$`, a two-digit cost, 22 characters of salt, 31 of hash.
_BCRYPT = re.compile(r"\$2[aby]\$(?P<cost>[0-9]{2})\$[./A-Za-z0-9]{53}")

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Htpasswd:
    """The users of one htpasswd text, and the hash an unknown user's password is checked
    against: one at the highest cost among them, so a name that does not exist costs
    what a wrong password of the best-protected user costs."""

    users: dict[str, bytes]
    nobody: bytes


def parse_htpasswd(text: str) -> dict[str, bytes]:
    """{user: bcrypt hash} from htpasswd lines; any line that is not bcrypt is refused."""
    users: dict[str, bytes] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hashed = line.partition(":")
        match = _BCRYPT.fullmatch(hashed)
        if not sep or not user or match is None or not 4 <= int(match["cost"]) <= 31:
            raise ValueError(
                f"line {number} is not a bcrypt htpasswd line (write it with htpasswd -B)"
            )
        users[user] = hashed.encode()
    return users


def _htpasswd(text: str) -> Htpasswd:
    users = parse_htpasswd(text)
    return Htpasswd(users, nobody_hash(users))


def cost_of(hashed: bytes) -> int:
    """The cost (log2 of the rounds) of a bcrypt hash: `$2y$12$...` is 12."""
    return int(hashed[4:6])


def nobody_hash(users: dict[str, bytes]) -> bytes:
    """A bcrypt hash at the users' highest cost that no password matches.

    Made from a fresh salt and a hash part of zero bits rather than by hashing: checking a
    password against it costs a full round at that cost, making it costs nothing (a cost-17
    round, htpasswd's highest, takes seconds).
    """
    cost = max((cost_of(hashed) for hashed in users.values()), default=DEFAULT_COST)
    return bcrypt.gensalt(cost) + b"." * 31


def basic_login(authorization: str) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic ...` value, else None (whatever the
    value holds: other schemes, characters outside base64 or ASCII, no colon, no user)."""
    if len(authorization) > MAX_AUTHORIZATION_CHARS:
        return None
    scheme, _, encoded = authorization.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except ValueError:  # not base64, not ASCII (binascii.Error), or not UTF-8
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep and user else None


class Users:
    """The users of `REGISTRY_AUTH=basic` and the check of their logins."""

    def __init__(
        self, document: SecretDocument, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.document = document
        self.parsed = ParsedDocument(document, _htpasswd, "an htpasswd file")
        self._verified = BoundedCache(max_entries=1024, clock=clock)
        self._key: bytes | None = None  # for remembering logins without keeping passwords
        self._lock = threading.Lock()

    def _remembering_key(self) -> bytes:
        """Made on first use, not when built: an instance resumed from a SnapStart snapshot
        must not share it with every other instance resumed from the same snapshot."""
        with self._lock:
            if self._key is None:
                self._key = os.urandom(32)
            return self._key

    def _users(self) -> Htpasswd:
        known = self.parsed.value()
        if known is None:
            raise errors.storage_unavailable(
                f"REGISTRY_AUTH=basic needs {self.document.secret_setting} or "
                f"{self.document.file_setting}"
            )
        return known

    def check(self, authorization: str | None) -> str | None:
        """The user an `Authorization` header proves, or None (logged, without the password)."""
        known = self._users()
        login = basic_login(authorization or "")
        if login is None:
            return None
        user, password = login
        remembered = hmac.new(
            self._remembering_key(), f"{user}\0{password}".encode(), hashlib.sha256
        ).digest()
        if self._verified.get(remembered.hex()) == user:
            return user
        hashed = known.users.get(user)
        secret = password.encode()
        if len(secret) > MAX_PASSWORD_BYTES:  # bcrypt reads no further; refuse, do not cut
            hashed, secret = None, b"too long"
        matches = bcrypt.checkpw(secret, hashed or known.nobody)
        if hashed is None or not matches:
            logger.warning("login refused", extra={"user": user[:64]})
            return None
        self._verified.put(remembered.hex(), user, ttl=VERIFIED_SECONDS)
        return user
