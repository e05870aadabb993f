"""Verifying, before wrapping, that an image is signed as WRAPPER_POLICY requires.

The image's cosign signature is read from its own upstream repository like any
client would (`sha256-<hex>.sig`, then each simple-signing payload by digest,
both bounded and verified), and one payload must name the image's digest and
carry a valid ECDSA signature by one of the rule's keys. The payload's
`docker-reference` is not matched, as `cosign verify --key` does not: the digest
binds the signature to the content, whatever name it was pushed under. What a
rule admitted is remembered per digest for a few minutes, so warm pulls ask no
upstream; a signature deleted upstream stops admitting the image after that.
"""

from __future__ import annotations

from collections.abc import Callable

from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.registry.imagesource import Resolved
from ociwrap.runtime import errors, telemetry
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache
from ociwrap.runtime.secrets import SecretDocument
from ociwrap.signing import cosign
from ociwrap.signing.policy import Policy, PolicyError, Rule, parse_policy
from ociwrap.upstream.fetch import Fetcher

SIGNATURE_ACCEPT = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
#: A signature manifest holds a few payloads; more are not read.
MAX_SIGNED_LAYERS = 8
ADMITTED_TTL_SECONDS = 300


def ecdsa_valid(public_pem: bytes, signature: bytes, payload: bytes) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    key = load_pem_public_key(public_pem)
    assert isinstance(key, ec.EllipticCurvePublicKey)  # checked when the policy was read
    try:
        key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


class PolicySource:
    """The policy document from its secret or file, parsed again only when it changes."""

    def __init__(self, document: SecretDocument) -> None:
        self.document = document
        self._parsed: tuple[str, Policy] | None = None

    def policy(self) -> Policy | None:
        text = self.document.text()
        if text is None:
            return None
        if self._parsed is None or self._parsed[0] != text:
            document = self.document
            where = document.secret_setting if document.secret_name else document.file_setting
            try:
                policy = parse_policy(parse_json(text.encode()))
            except (DocumentError, PolicyError) as exc:
                raise errors.storage_unavailable(f"{where} is not a usable policy: {exc}") from exc
            self._parsed = (text, policy)
        return self._parsed[1]


class SignatureCheck:
    """Admits or refuses the base and wrappers of a composition by the policy."""

    def __init__(
        self,
        policies: Callable[[], Policy | None],
        fetcher: Fetcher,
        cache: BoundedCache,
    ) -> None:
        self.policies = policies
        self.fetcher = fetcher
        self.hot = cache

    def check(self, role: str, resolved: Resolved) -> None:
        """Return if the policy admits the image; 403 DENIED naming image and rule if not."""
        policy = self.policies()
        if policy is None:
            return
        kind = "base" if role == "base" else "wrapper"
        repository = str(resolved.image.repository)
        rule = policy.rule_for(kind, repository)
        if rule is None:
            if policy.admits_unmatched(kind):
                return
            raise errors.denied(
                f"{role} image {resolved.image} is not admitted: no rule of WRAPPER_POLICY "
                f"matches {repository}",
                detail={"image": str(resolved.image), "role": role},
            )
        if rule.unsigned:
            return
        key = f"admitted:{rule.fingerprint}:{resolved.digest}"
        if self.hot.get(key):
            telemetry.cache("signature check", "memory")
            return
        telemetry.cache("signature check", "upstream")
        why = self._refusal(resolved, rule)
        if why is not None:
            raise errors.denied(
                f"{role} image {resolved.image} ({resolved.digest}) is refused by WRAPPER_POLICY "
                f"rule {rule.images!r}: {why}",
                detail={"image": str(resolved.image), "role": role, "rule": rule.images},
            )
        self.hot.put(key, True, ttl=ADMITTED_TTL_SECONDS)

    def _refusal(self, resolved: Resolved, rule: Rule) -> str | None:
        """None when a signature by one of the rule's keys covers the digest, else why not."""
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
            if any(ecdsa_valid(key, layer.signature, payload) for key in rule.keys):
                return None
            reasons.append("the signature is by none of the rule's keys")
        return "; ".join(dict.fromkeys(reasons))
