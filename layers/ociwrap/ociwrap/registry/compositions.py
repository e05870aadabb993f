"""Composing wrapped images: resolve both images, plan platforms, compose once, store.

A composition is keyed by the resolved base and wrapper digests (and their
names, which the annotations carry), so it is computed once and every later
pull of the same wrap reads it back. The work itself is pure (`compose`,
`platforms`); this module fetches its inputs through the `ImageSource`, runs
the platforms of an index in parallel, and stores configs, manifests and the
source records of every blob before the composition record points at them.
A composition whose documents the bucket's lifecycle removed is composed again
from the digests its source records name (`recompose`): the same digests again.
With signing configured, every manifest composed is signed and attested (its provenance:
what it was resolved from, when) before the composition record makes it servable.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from ociwrap.bucket.interface import Bucket
from ociwrap.bucket.records import composition_key
from ociwrap.bucket.sources import SourceRecords, blob_source, made_from, manifest_source
from ociwrap.image import compose
from ociwrap.image.documents import Descriptor, ImageIndex
from ociwrap.image.platforms import plan_wrappers, select
from ociwrap.image.recipes import Recipe
from ociwrap.names.digest import sha256_of
from ociwrap.names.mediatypes import SERVABLE_TYPES
from ociwrap.names.reference import ImageRef
from ociwrap.registry.attestations import composition_facts
from ociwrap.registry.composition_inputs import Admitted, CompositionInputs
from ociwrap.registry.imagesource import ImageSource
from ociwrap.runtime import telemetry
from ociwrap.runtime.concurrency import KeyedLocks, parallel_map, run_together
from ociwrap.runtime.memcache import BoundedCache, Namespace
from ociwrap.signing.provenance import Facts

if TYPE_CHECKING:
    from ociwrap.registry.attestations import Attestations
    from ociwrap.registry.signatures import Signatures
    from ociwrap.registry.verification import SignatureCheck

PARALLEL_PLATFORMS = 4


@dataclass(frozen=True)
class Composition:
    """A composed manifest or index, ready to serve."""

    digest: str
    media_type: str
    body: bytes


def annotations(
    base: ImageRef, base_digest: str, wrappers: Sequence[tuple[ImageRef, str]]
) -> dict[str, str]:
    """Where the composition came from: base and wrapper names and digests (several
    wrappers are listed comma-separated, in order)."""
    return {
        compose.ANNOTATION_BASE_NAME: str(base),
        compose.ANNOTATION_BASE_DIGEST: base_digest,
        compose.ANNOTATION_WRAPPER_NAME: ",".join(str(image) for image, _ in wrappers),
        compose.ANNOTATION_WRAPPER_DIGEST: ",".join(digest for _, digest in wrappers),
    }


Made = compose.Composed | compose.ComposedIndex


def _subject(made: Made) -> dict[str, Any]:
    """A composed manifest's descriptor: what its signature and attestation are about."""
    return {"mediaType": made.media_type, "digest": made.manifest_digest, "size": made.size}


def _role(recipe: Recipe, number: int) -> str:
    return "wrapper" if len(recipe.wrappers) == 1 else f"wrapper {number + 1}"


class Composer:
    """Makes (or finds) the composition of a recipe's current base and wrappers."""

    def __init__(
        self,
        images: ImageSource,
        store: Bucket,
        sources: SourceRecords,
        cache: BoundedCache,
        *,
        signatures: Signatures | None = None,
        attestations: Attestations | None = None,
        check: SignatureCheck | None = None,
    ) -> None:
        self.images = images
        self.store = store
        self.sources = sources
        self.hot: Namespace[dict[str, Any]] = cache.namespace("composition records")
        self.signatures = signatures  # signs what is composed (signing configured)
        self.attestations = attestations  # and attests it
        self.inputs = CompositionInputs(images, check)
        self._locks = KeyedLocks()

    def _roles(self, recipe: Recipe) -> list[str]:
        return ["base", *(_role(recipe, n) for n in range(len(recipe.wrappers)))]

    def compose(self, recipe: Recipe) -> Composition:
        """The wrapped manifest (or index) for the current base and wrapper digests.

        Other processes composing the same recipe at once write the same bytes to
        the same keys; within this process later callers wait and reuse it.
        """
        started = time.time()
        with self._locks.lock(recipe.scope):
            resolved = parallel_map(  # base and wrappers at once: their upstreams add no time
                lambda pair: self.inputs.resolve(*pair),
                list(zip(self._roles(recipe), [recipe.base, *recipe.wrappers], strict=True)),
                PARALLEL_PLATFORMS,
            )
            base, wrappers = resolved[0], resolved[1:]
            key = composition_key(recipe, base.digest, [w.digest for w in wrappers])
            record = self.hot.get_or_load(key, lambda: self.store.get_json(key))
            found = self._recorded(record) if record else None
            if found is not None:
                telemetry.cache("composition", "stored")
                return found
            telemetry.event("compositions")
            return self._compose_now(recipe, base, wrappers, key, started)

    def recompose(self, recipe: Recipe, base: str, wrappers: Sequence[str]) -> Composition:
        """Compose `recipe` again from the base and wrapper digests a composition was made
        of, storing all of it again (the same inputs make the same digests); the base and
        wrappers are read by digest, from the bucket or else their upstreams."""
        started = time.time()
        with self._locks.lock(recipe.scope):
            images = [recipe.base, *recipe.wrappers]
            resolved = parallel_map(
                lambda triple: self.inputs.pinned(*triple),
                list(zip(self._roles(recipe), images, [base, *wrappers], strict=True)),
                PARALLEL_PLATFORMS,
            )
            telemetry.event("compositions")
            key = composition_key(recipe, base, wrappers)
            return self._compose_now(recipe, resolved[0], resolved[1:], key, started)

    def _recorded(self, record: dict[str, Any]) -> Composition | None:
        """The composition a record names. Records carry the manifest itself (one S3 read
        for a new instance, not two); older ones, or one whose bytes do not match, send us
        to the stored manifest."""
        digest, text = record.get("digest"), record.get("manifest")
        media_type = record.get("mediaType")
        if isinstance(text, str) and media_type in SERVABLE_TYPES:
            body = text.encode()
            if sha256_of(body) == digest:
                return Composition(digest, media_type, body)
        stored = self.images.stored(str(digest))
        if stored is None:
            return None
        return Composition(str(digest), stored.media_type, stored.body)

    def _compose_now(
        self, recipe: Recipe, base: Admitted, wrappers: list[Admitted], key: str, started: float
    ) -> Composition:
        """Compose, store every document and its source record, then the composition
        record (under `key`) that makes it found by tag."""
        inputs = made_from(base.digest, [wrapper.digest for wrapper in wrappers])
        jobs: list[Callable[[], Any]] = [lambda: self.inputs.platforms(base)]
        jobs += [
            lambda wrapper=wrapper, n=n: self.inputs.wrapper_document(wrapper, _role(recipe, n))
            for n, wrapper in enumerate(wrappers)
        ]
        found = parallel_map(lambda job: job(), jobs, PARALLEL_PLATFORMS)
        base_is_index, base_entries = found[0]
        if recipe.overrides.platforms is not None:
            base_entries = tuple(select(base_entries, recipe.overrides.platforms))
        candidates: list[tuple[Descriptor, ...] | None] = [
            document.images() if isinstance(document, ImageIndex) else None
            for document in found[1:]
        ]
        plan = plan_wrappers(base_entries, candidates)

        def compose_platform(
            pair: tuple[Descriptor, list[Descriptor | None]],
        ) -> tuple[Descriptor, compose.Composed]:
            base_entry, chosen = pair
            digests = [
                wrapper.digest if entry is None else entry.digest
                for wrapper, entry in zip(wrappers, chosen, strict=True)
            ]
            return base_entry, self._compose_one(
                recipe, base, base_entry.digest, wrappers, digests, inputs
            )

        entries = parallel_map(compose_platform, plan, PARALLEL_PLATFORMS)
        made: list[Made] = [c for _, c in entries]
        if base_is_index:
            wrapper_notes = [(w.image, w.digest) for w in wrappers]
            made.append(
                compose.compose_index(entries, annotations(recipe.base, base.digest, wrapper_notes))
            )
            index = made[-1]
            self.images.keep(index.manifest_digest, index.manifest_bytes, index.media_type)
            self.sources.record(recipe.scope, {index.manifest_digest: manifest_source() | inputs})
        subjects = [_subject(c) for c in made]
        self._sign(
            recipe,
            made,
            lambda: composition_facts(
                recipe, self._roles(recipe), (base, wrappers), plan, subjects, started
            ),
        )
        top = made[-1]
        record = {
            "digest": top.manifest_digest,
            "mediaType": top.media_type,
            "manifest": top.manifest_bytes.decode(),
        }
        self.store.put_json(key, record)
        self.hot.put(key, record, size=len(top.manifest_bytes))
        return Composition(top.manifest_digest, top.media_type, top.manifest_bytes)

    def _sign(
        self, recipe: Recipe, made: list[Made], provenance: Callable[[], list[Facts]]
    ) -> None:
        """Sign and attest what was composed, at once (when signing is configured)."""
        calls = []
        if self.signatures is not None:
            described = [(c.manifest_digest, c.media_type, c.size) for c in made]
            calls.append(partial(self.signatures.sign, recipe, described))
        if self.attestations is not None:
            calls.append(partial(self.attestations.attest, recipe, provenance()))
        run_together(*calls)

    def _compose_one(
        self,
        recipe: Recipe,
        base: Admitted,
        base_digest: str,
        wrappers: list[Admitted],
        wrapper_digests: list[str],
        inputs: dict[str, Any],
    ) -> compose.Composed:
        """Compose one platform: store its config, manifest and blob sources."""
        base_image = self.inputs.image(base, base_digest, "base")
        wrapper_images = [
            self.inputs.image(wrapper, digest, _role(recipe, n))
            for n, (wrapper, digest) in enumerate(zip(wrappers, wrapper_digests, strict=True))
        ]
        composed = compose.compose_image(
            base_image,
            wrapper_images,
            annotations(
                recipe.base,
                base_digest,
                [(w.image, d) for w, d in zip(wrappers, wrapper_digests, strict=True)],
            ),
            recipe.overrides,
        )
        sources: dict[str, dict] = {}
        for layer in base_image.manifest.layers:
            sources.setdefault(layer.digest, blob_source("base", layer.size))
        for n, image in enumerate(wrapper_images):
            for layer in image.manifest.layers:
                sources.setdefault(layer.digest, blob_source("wrapper", layer.size, n))
        config = blob_source("generated", len(composed.config_bytes))
        sources[composed.config_digest] = config | inputs
        sources[composed.manifest_digest] = manifest_source() | inputs
        run_together(  # no record points at any of them before the composition record
            lambda: self.store.put_blob(composed.config_digest, composed.config_bytes),
            lambda: self.images.keep(
                composed.manifest_digest, composed.manifest_bytes, composed.media_type
            ),
            lambda: self.sources.record(recipe.scope, sources),
        )
        return composed
