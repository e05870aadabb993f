"""Digests: computing, validating and taking apart `algorithm:encoded` strings.

The registry addresses content by sha256 only (what every client and registry
uses); descriptors inside upstream documents may name other algorithms, which
the general OCI grammar accepts.
"""

from __future__ import annotations

import hashlib
import re

from ociwrap.errors import digest_invalid

#: What this registry serves: `sha256:` and 64 lowercase hex characters.
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
#: The OCI image-spec digest grammar (any registered or unregistered algorithm).
_ANY = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
#: A digest pin in a path component, where `:` cannot appear.
_PIN = re.compile(r"sha256-([a-f0-9]{64})")


def sha256_of(data: bytes) -> str:
    """`sha256:<hex>` of `data`, the form registries and clients use."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    """A sha256 digest this registry can serve."""
    return bool(_SHA256.fullmatch(value))


def is_any_digest(value: str) -> bool:
    """A digest by the OCI grammar, whatever its algorithm (for upstream descriptors)."""
    return bool(_ANY.fullmatch(value))


def check_digest(value: str) -> str:
    """Return `value` if it is a sha256 digest, else raise DIGEST_INVALID."""
    if not is_digest(value):
        raise digest_invalid(
            f"invalid digest {value!r}: expected sha256:<64 lowercase hex characters>",
            detail={"digest": value},
        )
    return value


def encoded(digest: str) -> str:
    """The part after the algorithm (`<hex>` of `sha256:<hex>`), for storage keys."""
    return digest.split(":", 1)[1]


def from_pin(component: str) -> str | None:
    """`sha256-<hex>` (a path-safe digest pin) as `sha256:<hex>`; None if it is not one."""
    match = _PIN.fullmatch(component)
    return f"sha256:{match[1]}" if match else None


class Hasher:
    """Counts and hashes the bytes of a stream as they pass, for verification at the end."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self.size = 0

    def update(self, data: bytes) -> None:
        self._hash.update(data)
        self.size += len(data)

    def copy(self) -> Hasher:
        """The state so far, to continue from later (hashlib states cannot be saved elsewhere)."""
        twin = Hasher()
        twin._hash = self._hash.copy()
        twin.size = self.size
        return twin

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()
