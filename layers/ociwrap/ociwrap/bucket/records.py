"""Where records live in the bucket and what they hold: pure functions of names and digests.

* `tags/upstream/<registry>/<repo>/<tag>.json`: an upstream tag resolved to a
  digest whose manifest bytes were verified, with the time it is trusted until;
  kept past that as the stale-if-error fallback.
* `tags/links/<registry>/<repo>/<hex>.json`: the manifest or blob `<hex>` in our
  bucket came from (or was confirmed by) that repository, so it may be served under
  its name; with the blob's size, and an expiry for private upstreams.
* `tags/compositions/<sha>.json`: (base, wrappers, their digests, overrides) → composed digest.
* `tags/sources/<scope>/<hex>.json`: where each blob and manifest of a wrapped name comes
  from (one scope per wrap path, one per container token).
* `tokens/<id>.json`: a container token's request and expiry (or its tombstone).
* `tags/signatures/<key>/<sha of host/name>/<hex>.json`: the signature manifest of the
  composed manifest `<hex>` as signed for that name (cosign's `docker-reference`) by the
  key `<key>` (a hash of its public key: a new key signs anew).
* `tags/provenance/<hex>.json`: the provenance statement of the composed manifest `<hex>`,
  made once, when it was composed (whatever key signs it, whatever name pulls it).
* `tags/attestations/<key>/<sha of host/name>/<hex>.json`: that statement signed by the key
  `<key>` for that name: the attestation manifest and its DSSE envelope.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ociwrap.names.digest import encoded, is_digest
from ociwrap.names.mediatypes import SERVABLE_TYPES
from ociwrap.names.reference import ImageRef, Repository

if TYPE_CHECKING:
    from ociwrap.image.recipes import Recipe

#: Bump when composition output changes, so old compositions are not served as new.
COMPOSITION_VERSION = 1


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _repository_key(repo: Repository) -> str:
    """`host[:port]/path`: the upstream as it is reached, not as the alias spells it."""
    return f"{repo.registry.url.split('://', 1)[1]}/{repo.path}"


def tag_record_key(image: ImageRef) -> str:
    return f"tags/upstream/{_repository_key(image.repository)}/{image.tag}.json"


def link_key(repo: Repository, digest: str) -> str:
    return f"tags/links/{_repository_key(repo)}/{encoded(digest)}.json"


def composition_key(recipe: Recipe, base_digest: str, wrapper_digests: Sequence[str]) -> str:
    """A recipe's composition of these digests. A wrap path's key is what it always was,
    so compositions stored before container tokens existed are found again. A token's
    names its scope too: what a composition records (where each blob of it comes from)
    is kept per scope, so a token asking what a wrap path or another token asked gets
    its own composition (the same bytes) and records."""
    if recipe.wrap_path:
        wrapper, digest = recipe.wrappers[0], wrapper_digests[0]
        identity = f"{COMPOSITION_VERSION}|{recipe.base}|{base_digest}|{wrapper}|{digest}"
    else:
        overrides = recipe.overrides
        identity = json.dumps(
            [
                COMPOSITION_VERSION,
                str(recipe.base),
                base_digest,
                [[str(w), d] for w, d in zip(recipe.wrappers, wrapper_digests, strict=True)],
                [
                    overrides.entrypoint,
                    overrides.cmd,
                    overrides.env,
                    overrides.labels,
                    overrides.working_dir,
                    overrides.user,
                    overrides.platforms,
                ],
                recipe.scope,
            ]
        )
    return f"tags/compositions/{_sha(identity)}.json"


def source_key(scope: str, digest: str) -> str:
    """Where a wrapped name's record of `digest` lives (`scope`: one per wrap or token)."""
    return f"tags/sources/{scope}/{encoded(digest)}.json"


def token_key(token: str) -> str:
    return f"tokens/{token}.json"


def signature_key(key_id: str, docker_reference: str, digest: str) -> str:
    """Where the signature of `digest` for `docker_reference` (host/name) is recorded."""
    return f"tags/signatures/{key_id}/{_sha(docker_reference)[:40]}/{encoded(digest)}.json"


def provenance_key(digest: str) -> str:
    """Where the provenance statement of the composed manifest `digest` is recorded."""
    return f"tags/provenance/{encoded(digest)}.json"


def attestation_key(key_id: str, name: str, digest: str) -> str:
    """Where the attestation of `digest` pulled as `name` (host/name) is recorded."""
    return f"tags/attestations/{key_id}/{_sha(name)[:40]}/{encoded(digest)}.json"


@dataclass(frozen=True)
class TagRecord:
    """An upstream tag's verified digest and media type, trusted until `expires` (epoch s)."""

    digest: str
    media_type: str
    expires: float

    def fresh(self, now: float) -> bool:
        return now < self.expires

    def usable_stale(self, now: float, stale_seconds: float) -> bool:
        """Still servable when the upstream fails (distribution's stale-if-error)."""
        return now < self.expires + stale_seconds

    def to_json(self) -> dict[str, Any]:
        return {"digest": self.digest, "mediaType": self.media_type, "expires": self.expires}

    @classmethod
    def from_json(cls, value: Any) -> TagRecord | None:
        """A record as written by `to_json`; None for anything else (treated as absent)."""
        return tag_record_from_json(value)


def tag_record_from_json(value: Any) -> TagRecord | None:
    """A tag record read back: digest, servable media type and finite expiry checked."""
    if not isinstance(value, dict):
        return None
    digest, media_type, expires = (value.get(k) for k in ("digest", "mediaType", "expires"))
    if (
        not isinstance(digest, str)
        or not is_digest(digest)
        or media_type not in SERVABLE_TYPES
        or not isinstance(expires, int | float)
        or not math.isfinite(expires)
    ):
        return None
    return TagRecord(digest, media_type, float(expires))
