"""Verifying, before wrapping, that an image is signed as WRAPPER_POLICY requires.

The image's cosign signature is read from its own upstream repository like any
client would (`sha256-<hex>.sig`, then each simple-signing payload by digest,
both bounded and verified), and one payload must name the image's digest and
carry a valid ECDSA signature by one of the rule's keys. The payload's
`docker-reference` is not matched, as `cosign verify --key` does not: the digest
binds the signature to the content, whatever name it was pushed under. What a
rule admitted is remembered per digest for a few minutes, so warm pulls ask no
upstream; a signature deleted upstream stops admitting the image after that.

What admitted an image is said back (a composition's provenance records it): the rule's
pattern, and for a signed one the key that verified (`sha256:` of its DER public key)
and the signature manifest's digest; `{"rule": null}` for a base no rule matches.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names import mediatypes as mt
from ociwrap.registry.imagesource import Resolved
from ociwrap.runtime import errors, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache, Namespace
from ociwrap.signing import cosign
from ociwrap.signing.policy import Policy, Rule
from ociwrap.signing.signers import ecdsa_valid, key_fingerprint
from ociwrap.upstream.interface import Upstream

SIGNATURE_ACCEPT = (
    mt.OCI_MANIFEST,
    mt.DOCKER_MANIFEST,
)
#: A signature manifest holds a few payloads; more are not read.
MAX_SIGNED_LAYERS = 8
ADMITTED_TTL_SECONDS = 300


class SignatureCheck:
    """Admits or refuses the base and wrappers of a composition by the policy."""

    def __init__(
        self,
        policies: Callable[[], Policy | None],
        fetcher: Upstream,
        cache: BoundedCache,
    ) -> None:
        self.policies = policies
        self.fetcher = fetcher
        self.hot: Namespace[dict[str, Any]] = cache.namespace("admitted digests")

    def check(self, role: str, resolved: Resolved) -> dict[str, Any] | None:
        """What admitted the image (None when no policy is set); 403 DENIED naming image
        and rule if the policy does not."""
        policy = self.policies()
        if policy is None:
            return None
        kind = "base" if role == "base" else "wrapper"
        repository = str(resolved.image.repository)
        rule = policy.rule_for(kind, repository)
        if rule is None:
            if policy.admits_unmatched(kind):
                return {"rule": None}
            raise errors.denied(
                f"{role} image {resolved.image} is not admitted: no rule of WRAPPER_POLICY "
                f"matches {repository}",
                detail={"image": str(resolved.image), "role": role},
            )
        if rule.unsigned:
            return {"rule": rule.images, "unsigned": True}
        key = (rule.fingerprint, resolved.digest)
        admitted = self.hot.get(key)
        if admitted is not None:
            telemetry.cache("signature check", "memory")
            return admitted
        telemetry.cache("signature check", "upstream")
        why = self._refusal(resolved, rule)
        if isinstance(why, str):
            raise errors.denied(
                f"{role} image {resolved.image} ({resolved.digest}) is refused by WRAPPER_POLICY "
                f"rule {rule.images!r}: {why}",
                detail={"image": str(resolved.image), "role": role, "rule": rule.images},
            )
        self.hot.put(key, why, ttl=ADMITTED_TTL_SECONDS)
        return why

    def _refusal(self, resolved: Resolved, rule: Rule) -> str | dict[str, Any]:
        """What admitted the digest when a signature by one of the rule's keys covers it (the
        rule, the key, the signature manifest), else why not."""
        repo, digest = resolved.image.repository, resolved.digest
        tag = cosign.signature_tag(digest)
        try:
            fetched = self.fetcher.get_manifest(repo, tag, SIGNATURE_ACCEPT)
        except RegistryError as exc:
            if exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN"):
                return f"it has no signature (no tag {tag})"
            raise
        try:
            layers = cosign.signed_layers(parse_json(fetched.body))[:MAX_SIGNED_LAYERS]
        except (DocumentError, cosign.SignatureFormatError) as exc:
            return f"its signature {tag} is not in cosign's format ({exc})"
        if not layers:
            return f"its signature {tag} holds no signed payload"
        reasons = []
        for layer in layers:
            payload = self.fetcher.small_blob(
                repo, layer.digest, cosign.MAX_PAYLOAD_BYTES, "signature payload"
            )
            try:
                said = cosign.read_payload(payload)
            except cosign.SignatureFormatError as exc:
                reasons.append(str(exc))
                continue
            if said.digest != digest:
                reasons.append(f"the payload signs {said.digest}, not this image")
                continue
            for key in rule.keys:
                if ecdsa_valid(key, layer.signature, payload):
                    found = {"rule": rule.images, "key": key_fingerprint(key)}
                    return found | {"signature": fetched.digest}
            reasons.append("the signature is by none of the rule's keys")
        return "; ".join(dict.fromkeys(reasons))
