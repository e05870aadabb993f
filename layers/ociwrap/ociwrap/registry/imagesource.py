"""Upstream images read through a local store: tags, manifests and configs.

One read path for proxied and wrapped names alike, modelled on distribution's
proxy stores: the local side (a bounded memory cache, then S3) is asked first,
the remote side (the fetcher) second, and what the remote side returns is kept
locally once verified.

Tags resolve to digests with a HEAD (Docker Hub does not count HEADs against
pull limits); the digest it claims is trusted only after the manifest's bytes
were fetched and matched it, and only then is the resolution remembered for
TAG_TTL_SECONDS. When the record is stale and the upstream fails (5xx, time-out,
429, unreachable), the last verified digest keeps being served for up to
STALE_IF_ERROR_SECONDS, as distribution's pull-through cache does. Concurrent
first requests for one tag in a process wait for the first one's answer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ociwrap.bucket.interface import Bucket, StoredManifest
from ociwrap.bucket.links import Links
from ociwrap.bucket.records import TagRecord, tag_record_key
from ociwrap.image.documents import (
    Document,
    ImageConfig,
    ImageManifest,
    check_digests,
    invalid,
    parse_config,
    parse_document,
)
from ociwrap.image.jsondoc import DocumentError, parse_json
from ociwrap.names.digest import digest_matches
from ociwrap.names.mediatypes import SERVABLE_TYPES
from ociwrap.names.reference import ImageRef, Registry, Repository
from ociwrap.runtime import deadline, errors, telemetry
from ociwrap.runtime.concurrency import KeyedLocks, run_together
from ociwrap.runtime.errors import RegistryError
from ociwrap.runtime.memcache import BoundedCache, Namespace
from ociwrap.upstream.interface import Manifest, Upstream

MAX_CONFIG_BYTES = 4 * 1024 * 1024
#: With a stale record at hand, this share of the remaining time (at most so many seconds)
#: is kept back from refreshing it, to serve it if the upstream fails.
STALE_RESERVE = 0.5
MAX_STALE_RESERVE_SECONDS = 5.0
#: Upstream failures that stale-if-error covers; a 404 or a refusal is an answer, not a failure.
TRANSIENT_CODES = frozenset({"UNAVAILABLE", "TOOMANYREQUESTS"})

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Resolved:
    """An upstream image reference resolved to a verified digest."""

    image: ImageRef
    digest: str
    media_type: str


class ImageSource:
    """Tags, manifests and configs of upstream images: memory, then S3, then upstream."""

    def __init__(
        self,
        store: Bucket,
        fetcher: Upstream,
        links: Links,
        *,
        tag_ttl_seconds: float,
        stale_if_error_seconds: float,
        private: Callable[[Registry], bool],
        cache: BoundedCache | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.fetcher = fetcher
        self.links = links
        self.private = private  # registries asked with a login: never served stale
        self.tag_ttl_seconds = tag_ttl_seconds
        self.stale_if_error_seconds = stale_if_error_seconds
        cache = cache if cache is not None else BoundedCache()
        self.tags: Namespace[TagRecord] = cache.namespace("tag records")
        self.manifests: Namespace[StoredManifest] = cache.namespace("manifests")
        self.documents: Namespace[tuple[Document, int]] = cache.namespace("documents")
        self.configs: Namespace[tuple[ImageConfig, int]] = cache.namespace("configs")
        self.clock = clock
        self._locks = KeyedLocks()

    # -- tags --------------------------------------------------------------------

    def resolve(self, image: ImageRef) -> Resolved:
        """The digest and media type an image reference stands for now."""
        if image.digest:
            stored = self.manifest(image.repository, image.digest)
            return Resolved(image, image.digest, stored.media_type)
        key = tag_record_key(image)
        record = self._tag_record(key)
        if record is not None and record.fresh(self.clock()):
            return Resolved(image, record.digest, record.media_type)
        with self._locks.lock(key):
            known = self.tags.get(key)  # another request of this process may just have resolved it
            if isinstance(known, TagRecord) and known.fresh(self.clock()):
                telemetry.cache("tag", "memory")
                return Resolved(image, known.digest, known.media_type)
            telemetry.cache("tag", "upstream")
            try:
                with deadline.within(self._refresh_deadline(record)):
                    digest, media_type = self._resolve_upstream(image)
            except RegistryError as exc:
                now = self.clock()
                if (
                    record is None
                    or exc.code not in TRANSIENT_CODES
                    or not record.usable_stale(now, self.stale_if_error_seconds)
                    or self.private(image.repository.registry)
                ):
                    raise
                telemetry.event("stale")
                logger.warning(
                    "upstream failed; serving stale tag %s -> %s (%.0f s past its TTL): %s",
                    image,
                    record.digest,
                    now - record.expires,
                    exc.message,
                )
                return Resolved(image, record.digest, record.media_type)
            record = TagRecord(digest, media_type, self.clock() + self.tag_ttl_seconds)
            self.store.put_json(key, record.to_json())
            self.tags.put(key, record, ttl=self.tag_ttl_seconds)
            return Resolved(image, digest, media_type)

    def _refresh_deadline(self, record: TagRecord | None) -> deadline.Deadline | None:
        """With a stale record to fall back on, a slow upstream may use only part of what
        is left, so that serving the stale digest still fits in the request's deadline."""
        current = deadline.current()
        if record is None or current is None or self.stale_if_error_seconds <= 0:
            return current
        return current.keeping(min(current.remaining() * STALE_RESERVE, MAX_STALE_RESERVE_SECONDS))

    def _tag_record(self, key: str) -> TagRecord | None:
        record = self.tags.get(key)
        if record is not None:
            telemetry.cache("tag", "memory")
            return record
        record = TagRecord.from_json(self.store.get_json(key))
        if record is not None:
            ttl = record.expires - self.clock()
            if ttl > 0:
                telemetry.cache("tag", "s3")
                self.tags.put(key, record, ttl=ttl)
        return record

    def _resolve_upstream(self, image: ImageRef) -> tuple[str, str]:
        """HEAD for the digest, then the verified bytes (stored or fetched by that digest)."""
        repo, tag = image.repository, image.reference
        digest = self.fetcher.head_manifest(repo, tag, SERVABLE_TYPES)
        if digest is not None:
            return digest, self.manifest(repo, digest).media_type
        fetched = self.fetch(repo, tag, SERVABLE_TYPES)
        return fetched.digest, fetched.media_type

    # -- manifests ---------------------------------------------------------------

    def stored(self, digest: str) -> StoredManifest | None:
        """A manifest this registry holds (upstream or composed), without asking any upstream."""

        def load() -> StoredManifest | None:
            stored = self.store.get_manifest(digest)
            return stored if stored is not None and stored.media_type in SERVABLE_TYPES else None

        return self.manifests.get_or_load(digest, load, size=lambda m: len(m.body))

    def manifest(self, repo: Repository, digest: str) -> StoredManifest:
        """Manifest bytes by digest as `repo` has them: held and linked to it already, else
        fetched from it, verified, kept and linked."""
        if self.links.get(repo, digest) is not None:
            stored = self.stored(digest)
            if stored is not None:
                telemetry.cache("manifest", "stored")
                return stored
        telemetry.cache("manifest", "upstream")
        fetched = self.fetch(repo, digest, SERVABLE_TYPES)
        return StoredManifest(fetched.body, fetched.media_type)

    def keep(self, digest: str, body: bytes, media_type: str) -> StoredManifest:
        """Store verified (or composed) manifest bytes under their digest."""
        self.store.put_manifest(digest, body, media_type)
        stored = StoredManifest(body, media_type)
        self.manifests.put(digest, stored, size=len(body))
        return stored

    def fetch(self, repo: Repository, ref: str, accept: Iterable[str]) -> Manifest:
        """A manifest fetched now (by tag or digest, with this Accept), verified and kept:
        its bytes match the digest asked for, whatever its algorithm, and every descriptor
        in it carries a valid digest (else nothing is kept)."""
        fetched = self.fetcher.get_manifest(repo, ref, accept)
        if ":" in ref and not digest_matches(fetched.body, ref):
            raise errors.upstream_unavailable(
                f"upstream registry {repo.registry.name} sent a manifest for {ref[:140]} "
                "whose bytes do not hash to that digest",
                detail={"repository": str(repo)},
            )
        try:
            value = parse_json(fetched.body)  # as the fetcher read it: it parses
        except DocumentError:
            value = None
        check_digests(value, f"{repo}@{fetched.digest}")
        run_together(
            lambda: self.keep(fetched.digest, fetched.body, fetched.media_type),
            lambda: self.links.add(repo, fetched.digest),
        )
        return fetched

    def document(self, image: ImageRef, digest: str, role: str) -> Document:
        """The parsed manifest or index `digest` of an image (`role` names it in errors)."""
        stored = self.manifest(image.repository, digest)  # scoped to the image's repository

        def load() -> tuple[Document, int]:
            try:
                value = parse_json(stored.body)
            except DocumentError as exc:
                raise invalid(role, str(exc)) from exc
            return parse_document(value, role, stored.media_type), len(stored.body)

        document, _size = self.documents.get_or_load(digest, load, size=lambda pair: pair[1])
        return document

    def config(self, image: ImageRef, manifest: ImageManifest, role: str) -> ImageConfig:
        """The parsed config of a manifest, as the image's repository has it: held and
        linked to it already, else fetched from it, verified, kept and linked."""
        repo, digest = image.repository, manifest.config.digest

        def fetch() -> bytes:
            data = self.fetcher.small_blob(repo, digest, MAX_CONFIG_BYTES, "image config")
            run_together(
                lambda: self.store.put_blob(digest, data),
                lambda: self.links.add(repo, digest, len(data)),
            )
            return data

        fetched = fetch() if self.links.get(repo, digest) is None else None

        def load() -> tuple[ImageConfig, int]:
            data = fetched if fetched is not None else self.store.get_blob(digest) or fetch()
            try:
                value = parse_json(data)
            except DocumentError as exc:
                raise invalid(role, f"config is {exc}") from exc
            return parse_config(value, role, len(manifest.layers)), len(data)

        config, _size = self.configs.get_or_load(
            (len(manifest.layers), digest), load, size=lambda pair: pair[1]
        )
        return config


def _names_a_descriptor(exc: RegistryError) -> bool:
    """An upstream document's descriptor is invalid (`check_digests`): its message does
    not say which image of the composition it is about yet."""
    return isinstance(exc.detail, dict) and "descriptor" in exc.detail


def with_role(role: str, image: ImageRef, call: Callable[[], object]) -> object:
    """Run an upstream read for the base or the wrapper; say which one an error is about."""
    try:
        return call()
    except RegistryError as exc:
        if exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
            raise errors.manifest_unknown(
                f"{role} image {image} not found: {exc.message}",
                detail={"image": str(image), "role": role},
            ) from exc
        if exc.code == "MANIFEST_INVALID" and _names_a_descriptor(exc):
            raise errors.manifest_invalid(
                f"{role} image {image}: {exc.message}",
                detail={"image": role, "name": str(image), **exc.detail},
            ) from exc
        if exc.code == "MANIFEST_INVALID":
            raise
        raise RegistryError(
            exc.code, f"{role} image {image}: {exc.message}", exc.detail, exc.status, exc.headers
        ) from exc
