"""WRAPPER_POLICY: which keys must have signed the images ociwrap wraps (pure parsing).

A wrapper is code injected into every image that uses it, so an operator can
require it to come from a trusted signer. The policy is one JSON document:

    {"wrappers": [{"images": "ghcr.io/acme/wrappers/**", "keys": ["-----BEGIN PUBLIC KEY-----…"]},
                  {"images": "docker.io/library/busybox", "unsigned": true}],
     "bases":    [{"images": "ghcr.io/acme/**", "keys": ["…"]}]}

An image is matched by its repository as ociwrap names it (`docker.io/library/busybox`,
`ghcr.io/acme/tool`, `<alias>/path`) against each rule of its list in order; the
first match decides. `*` and `?` stay inside one path component, `**` crosses
them: the globs of UPSTREAM_ALLOW, matched the same way, in one pass over the name (a
name built to make a pattern backtrack costs no more than any other). A rule with
`keys` requires a cosign signature (`sha256-<hex>.sig`) of the image's digest by one
of them; `"unsigned": true` admits the images without one.
A wrapper that no rule matches is refused (once there is a wrapper policy, only
what it names is trusted); a base that no rule matches is admitted (bases are
optional).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ociwrap.names.allowlist import glob_match

ROLES = ("wrappers", "bases")
MAX_RULES = 256
MAX_KEYS = 16
MAX_PATTERN = 512


class PolicyError(ValueError):
    """A policy document that cannot be used: the message says where and why."""


@dataclass(frozen=True)
class Rule:
    """One rule: a pattern, and the PEM public keys one of which must have signed."""

    images: str
    keys: tuple[bytes, ...]
    unsigned: bool

    @property
    def fingerprint(self) -> str:
        """Identifies the rule's pattern and keys (for caching what it admitted)."""
        text = "\0".join([self.images, str(self.unsigned), *(k.decode() for k in self.keys)])
        return hashlib.sha256(text.encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Policy:
    wrappers: tuple[Rule, ...]
    bases: tuple[Rule, ...]
    has_wrapper_rules: bool

    def rule_for(self, role: str, repository: str) -> Rule | None:
        """The first rule of `role`'s list ("base" or a wrapper) matching `repository`."""
        rules = self.bases if role == "base" else self.wrappers
        return next((rule for rule in rules if glob_match(rule.images, repository)), None)

    def admits_unmatched(self, role: str) -> bool:
        return role == "base" or not self.has_wrapper_rules


def _check_key(where: str, key: Any) -> bytes:
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    if not isinstance(key, str) or "BEGIN PUBLIC KEY" not in key:
        raise PolicyError(f"{where} is no PEM public key")
    try:
        loaded = load_pem_public_key(key.encode())
    except ValueError as exc:
        raise PolicyError(f"{where} is no readable PEM public key") from exc
    if not isinstance(loaded, ec.EllipticCurvePublicKey):
        raise PolicyError(f"{where} must be an ECDSA public key, as cosign makes")
    return key.encode()


def _rule(where: str, value: Any) -> Rule:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{where} must be an object")
    unknown = sorted(set(value) - {"images", "keys", "unsigned"})
    if unknown:
        raise PolicyError(f"{where} has unknown fields {unknown}")
    images = value.get("images")
    if not isinstance(images, str) or not images or len(images) > MAX_PATTERN:
        raise PolicyError(f"{where}.images must be a repository pattern such as ghcr.io/acme/**")
    unsigned = value.get("unsigned", False)
    if not isinstance(unsigned, bool):
        raise PolicyError(f"{where}.unsigned must be true or false")
    keys = value.get("keys", [])
    if not isinstance(keys, list) or len(keys) > MAX_KEYS:
        raise PolicyError(f"{where}.keys must be a list of at most {MAX_KEYS} PEM public keys")
    if unsigned == bool(keys):
        raise PolicyError(f'{where} needs either keys or "unsigned": true')
    checked = tuple(_check_key(f"{where}.keys[{n}]", key) for n, key in enumerate(keys))
    return Rule(images, checked, unsigned)


def parse_policy(document: Any) -> Policy:
    """The policy a parsed JSON document describes; PolicyError naming the bad field."""
    if not isinstance(document, Mapping):
        raise PolicyError('the policy must be a JSON object with "wrappers" and/or "bases"')
    unknown = sorted(set(document) - set(ROLES))
    if unknown:
        raise PolicyError(f'unknown fields {unknown}: the policy has "wrappers" and "bases"')
    lists: dict[str, tuple[Rule, ...]] = {}
    for role in ROLES:
        rules = document.get(role, [])
        if not isinstance(rules, list) or len(rules) > MAX_RULES:
            raise PolicyError(f"{role} must be a list of at most {MAX_RULES} rules")
        lists[role] = tuple(_rule(f"{role}[{n}]", rule) for n, rule in enumerate(rules))
    return Policy(lists["wrappers"], lists["bases"], "wrappers" in document)
