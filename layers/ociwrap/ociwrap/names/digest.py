"""Digests: computing, validating and taking apart `algorithm:encoded` strings.

The registry addresses content by sha256 only (what every client and registry
uses); descriptors inside upstream documents may also name sha512, the other
algorithm the OCI image spec registers, each with its exact lowercase hex length.
"""

from __future__ import annotations

import hashlib
import re

from ociwrap.runtime.errors import digest_invalid

#: What this registry serves: `sha256:` and 64 lowercase hex characters.
_SHA256 = re.compile(r"sha256:[a-f0-9]{64}")
#: The OCI image-spec digest grammar (any registered or unregistered algorithm).
_ANY = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+")
#: Algorithms a descriptor may name (the OCI image spec's registered ones) and the
#: length of their lowercase hex encoding.
ALGORITHMS = {"sha256": 64, "sha512": 128}
_LOWER_HEX = re.compile(r"[a-f0-9]+")
#: A digest pin in a path component, where `:` cannot appear.
_PIN = re.compile(r"sha256-([a-f0-9]{64})")


def sha256_of(data: bytes) -> str:
    """`sha256:<hex>` of `data`, the form registries and clients use."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def is_digest(value: str) -> bool:
    """A sha256 digest this registry can serve."""
    return bool(_SHA256.fullmatch(value))


def digest_matches(data: bytes, digest: str) -> bool:
    """Are `data` the bytes `digest` names? Only for the algorithms of `ALGORITHMS`."""
    algorithm, _, hexadecimal = digest.partition(":")
    if algorithm not in ALGORITHMS:
        return False
    return hashlib.new(algorithm, data).hexdigest() == hexadecimal


def is_any_digest(value: str) -> bool:
    """A digest by the OCI grammar, whatever its algorithm (for upstream descriptors)."""
    return bool(_ANY.fullmatch(value))


def digest_problem(value: str) -> str | None:
    """Why `value` is no valid digest of its algorithm (None when it is one): the grammar
    alone lets `sha256:ABC`, `sha256:abc` and `md5:…` through, and a client given such a
    descriptor fails the pull, or verifies nothing."""
    algorithm, sep, hexadecimal = value.partition(":")
    length = ALGORITHMS.get(algorithm) if sep else None
    if length is None:
        known = ", ".join(ALGORITHMS)
        return f"not a digest of a supported algorithm ({known})"
    if len(hexadecimal) != length or not _LOWER_HEX.fullmatch(hexadecimal):
        return f"not a valid {algorithm} digest ({length} lowercase hex characters)"
    return None


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
