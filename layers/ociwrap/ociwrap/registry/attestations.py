"""Provenance of composed images, made once and kept beside the composition.

With signing configured, every manifest a composition makes (each platform's and the
index) gets a SLSA provenance statement (`signing.provenance`) when it is composed, signed
by the composition signing key as a DSSE envelope, and stored in cosign's attestation
layout: served under the wrapped name's `sha256-<hex>.att` tag and listed by the referrers
API. Two records, which never expire:

* the statement of a composed digest (`provenance_key`), made when it was composed and
  never again, so its times are those of the composition. A name that pulls the same
  digest later (another spelling of the same wrap) gets the same statement with its own
  subject name; a new key signs the same statement.
* the attestation of that statement for a key and name (`attestation_key`): the manifest
  and its envelope, from which the documents are stored again when the bucket's lifecycle
  removed them. An attestation is never made anew for what was attested already, so its
  digest stays what clients saw.

A composition made before signing was on has no statement, and so no provenance.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from ociwrap import __version__
from ociwrap.bucket.interface import StoredManifest
from ociwrap.bucket.records import attestation_key, provenance_key
from ociwrap.bucket.sources import attesting
from ociwrap.image.documents import Descriptor
from ociwrap.image.recipes import Recipe
from ociwrap.registry.attached import Attached
from ociwrap.registry.composition_inputs import Admitted
from ociwrap.runtime import telemetry
from ociwrap.runtime.concurrency import parallel_map
from ociwrap.signing import provenance
from ociwrap.signing.cosign import OCI_MANIFEST, SignatureManifest
from ociwrap.signing.provenance import Dependency, Facts

PARALLEL_ATTESTATIONS = 4


def _dependency(role: str, image: Admitted, used: Descriptor | None = None) -> Dependency:
    return Dependency(
        role,
        str(image.image),
        str(image.image.repository),
        image.digest,
        used.digest if used is not None else None,
        str(used.platform) if used is not None else None,
        image.verdict,
    )


def platform_dependencies(
    roles: Sequence[str],
    base: Admitted,
    wrappers: Sequence[Admitted],
    base_entry: Descriptor,
    chosen: Sequence[Descriptor | None],
) -> tuple[Dependency, ...]:
    """What one platform's manifest was composed of: the base's manifest for that platform,
    each wrapper's chosen one (a single-platform wrapper: itself)."""
    found = [_dependency(roles[0], base, base_entry)]
    found += [
        _dependency(role, wrapper, entry)
        for role, wrapper, entry in zip(roles[1:], wrappers, chosen, strict=True)
    ]
    return tuple(found)


def index_dependencies(
    roles: Sequence[str], base: Admitted, wrappers: Sequence[Admitted]
) -> tuple[Dependency, ...]:
    """What a composed index was composed of: the base and wrappers as resolved."""
    return tuple(
        _dependency(role, image) for role, image in zip(roles, [base, *wrappers], strict=True)
    )


def composition_facts(
    recipe: Recipe,
    roles: Sequence[str],
    inputs: tuple[Admitted, Sequence[Admitted]],
    plan: Sequence[tuple[Descriptor, Sequence[Descriptor | None]]],
    subjects: Sequence[dict[str, Any]],
    started: float,
) -> list[Facts]:
    """The provenance of each manifest of a composition that started at `started` and
    finished now: the platforms' (`plan`: each base entry and the wrapper entries chosen for
    it), then the index's, if `subjects` has one more."""
    base, wrappers = inputs
    finished = time.time()
    found = [
        Facts(
            subject,
            recipe,
            platform_dependencies(roles, base, wrappers, base_entry, chosen),
            started,
            finished,
            str(base_entry.platform),
        )
        for (base_entry, chosen), subject in zip(plan, subjects, strict=False)
    ]
    if len(subjects) > len(plan):
        dependencies = index_dependencies(roles, base, wrappers)
        found.append(Facts(subjects[-1], recipe, dependencies, started, finished))
    return found


class Attestations(Attached):
    """Attests composed manifests of wrapped names and finds their attestations."""

    kind = "attestation"
    record_key = staticmethod(attestation_key)
    marker = staticmethod(attesting)

    def attest(self, recipe: Recipe, made: Sequence[Facts]) -> None:
        """Attest each composed manifest, keeping its statement and attestation; one attested
        before (a composition made again) keeps its attestation and statement."""

        def attest_one(facts: Facts) -> None:
            digest = facts.subject["digest"]
            if self.restore(recipe, digest) is not None:
                return
            key = provenance_key(digest)
            recorded = self.store.get_json(key)
            if not isinstance(recorded, dict) or not isinstance(recorded.get("statement"), str):
                body = provenance.statement(facts, self.name(recipe), self.hostname, __version__)
                self.store.put_json(key, {"statement": body.decode()})
                recorded = {"statement": body.decode()}
            self._sign(recipe, facts.subject, recorded["statement"].encode())

        parallel_map(attest_one, list(made), PARALLEL_ATTESTATIONS)

    def _sign(self, recipe: Recipe, subject: dict[str, Any], statement: bytes) -> SignatureManifest:
        """Sign `statement` (as it is, or renamed for this name) and keep its attestation."""
        name = self.name(recipe)
        if provenance.read_statement(statement)["subject"][0].get("name") != name:
            statement = provenance.renamed(statement, name)
        telemetry.event("attestations")
        signature = self.signer.sign(provenance.pae(provenance.PAYLOAD_TYPE, statement))
        envelope = provenance.envelope(statement, signature)
        made = provenance.attestation_manifest(envelope, subject)
        self._keep(recipe, subject["digest"], made, envelope=made.payload.decode())
        return made

    def restore(self, recipe: Recipe, digest: str) -> SignatureManifest | None:
        """Store again the attestation of `digest` that its record holds (the bucket's
        lifecycle may have removed its documents); None when no record holds one."""
        record = self._record(recipe, digest)
        if record is None:
            return None
        try:
            envelope = str(record["envelope"]).encode()
            provenance.read_envelope(envelope)
            subject = json.loads(record["manifest"])["subject"]
            made = provenance.attestation_manifest(envelope, subject)
        except (ValueError, KeyError, TypeError, provenance.ProvenanceFormatError):
            return None
        if made.digest != record["digest"]:
            return None
        self._keep(recipe, digest, made, envelope=made.payload.decode())
        return made

    def find(self, recipe: Recipe, digest: str) -> tuple[str, StoredManifest] | None:
        """The attestation manifest (digest, bytes) of a manifest composed for `recipe`; None
        when `digest` is no composed manifest of it, or has no statement (composed before
        signing was configured)."""
        found = self.recorded(recipe, digest)
        if found is not None:
            return found
        source = self.sources.lookup(recipe.scope, digest)
        if not source or source.get("kind") != "manifest":
            return None
        recorded = self.store.get_json(provenance_key(digest))
        statement = recorded.get("statement") if isinstance(recorded, dict) else None
        attested = self.images.stored(digest)
        if not isinstance(statement, str) or attested is None:
            return None
        subject = {"mediaType": attested.media_type, "digest": digest, "size": len(attested.body)}
        made = self._sign(recipe, subject, statement.encode())
        return made.digest, StoredManifest(made.body, OCI_MANIFEST)
