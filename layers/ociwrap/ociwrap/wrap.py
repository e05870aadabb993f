"""Wrapped images: resolve base and wrapper, compose once, serve from S3 after that.

A composition is keyed by the resolved base and wrapper digests (and their names,
which the annotations carry), so it is computed once and every later pull of the
same wrap reads it back from S3. Upstream tags are resolved with HEAD (Docker Hub
does not count HEADs against pull limits) and the resolution kept for
TAG_TTL_SECONDS. Every blob of a composition gets a record of where it comes from
(base, wrapper, or our bucket), so blob requests never fetch arbitrary digests.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ociwrap import compose, errors, mediatypes, replies
from ociwrap.errors import RegistryError
from ociwrap.memcache import BoundedCache
from ociwrap.proxy import ALL_MANIFEST_TYPES, ProxyService
from ociwrap.reference import ImageRef, WrapName, check_reference, is_digest
from ociwrap.replies import Reply
from ociwrap.store import Store, StoredManifest

# Bump when composition output changes, so old compositions are not served as new.
COMPOSITION_VERSION = 1
MAX_CONFIG_BYTES = 4 * 1024 * 1024
PARALLEL_PLATFORMS = 4
LOCK_STRIPES = 64


@dataclass(frozen=True)
class Resolved:
    """An upstream image reference resolved to a digest."""

    image: ImageRef
    digest: str
    media_type: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wrap_key(wrap: WrapName) -> str:
    """Identity of a wrap independent of how its names were spelled."""
    return _sha(f"{wrap.base}|{wrap.wrapper}")[:40]


def tag_record_key(image: ImageRef) -> str:
    registry = image.repository.registry.url.split("://", 1)[1]
    return f"tags/upstream/{registry}/{image.repository.path}/{image.tag}.json"


def composition_key(base: Resolved, wrapper: Resolved) -> str:
    identity = f"{COMPOSITION_VERSION}|{base.image}|{base.digest}|{wrapper.image}|{wrapper.digest}"
    return f"tags/compositions/{_sha(identity)}.json"


def source_key(wrap: WrapName, digest: str) -> str:
    return f"tags/sources/{wrap_key(wrap)}/{digest.split(':', 1)[1]}.json"


def _parse(stored: StoredManifest, what: str) -> dict[str, Any]:
    try:
        value = json.loads(stored.body)
    except ValueError as exc:
        raise errors.manifest_invalid(
            "invalid upstream image format", detail={"image": what, "reason": "not JSON"}
        ) from exc
    if not isinstance(value, dict):
        raise errors.manifest_invalid("invalid upstream image format", detail={"image": what})
    return value


def _is_index(manifest: dict[str, Any], media_type: str) -> bool:
    return media_type in mediatypes.INDEX_TYPES or "manifests" in manifest


class WrapService:
    """Answers pulls of `wrap/<base>/with/<wrapper>` repositories."""

    def __init__(
        self,
        store: Store,
        proxy: ProxyService,
        tag_ttl_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.proxy = proxy
        self.upstream = proxy.upstream
        self.tag_ttl_seconds = tag_ttl_seconds
        self.clock = clock
        self.hot = BoundedCache(max_entries=512, max_bytes=32 * 1024 * 1024)
        # Striped locks: concurrent first pulls of one wrap in a process compose it once.
        self._stripes = [threading.Lock() for _ in range(LOCK_STRIPES)]

    # -- requests ----------------------------------------------------------------

    def manifest(self, wrap: WrapName, ref: str, head: bool) -> Reply:
        check_reference(ref)
        if is_digest(ref):
            record = self._source(wrap, ref)
            if record is None or record.get("kind") != "manifest":
                raise errors.manifest_unknown(
                    f"manifest {ref} was not composed for {wrap.name}", detail={"digest": ref}
                )
            stored = self._stored_manifest(ref)
            if stored is None:
                raise errors.manifest_unknown(f"manifest {ref} is no longer stored")
            return replies.content(stored.body, stored.media_type, ref, head)
        digest, stored = self.compose(wrap)
        return replies.content(stored.body, stored.media_type, digest, head)

    def blob(self, wrap: WrapName, digest: str, head: bool) -> Reply:
        record = self._source(wrap, digest)
        if record is None or record.get("kind") != "blob":
            raise errors.blob_unknown(
                f"blob {digest} is not part of {wrap.name}", detail={"digest": digest}
            )
        size = int(record["size"])
        if record["source"] == "generated":
            return replies.blob_head(digest, size) if head else self.proxy.stored_blob(digest)
        image = wrap.base if record["source"] == "base" else wrap.wrapper
        return self.proxy.blob(image.repository, digest, head, size=size)

    def tags(self, wrap: WrapName) -> Reply:
        """Any tag names the same composition; `latest` is the one to list."""
        return replies.json_reply({"name": wrap.name, "tags": ["latest"]})

    # -- composition -------------------------------------------------------------

    def compose(self, wrap: WrapName) -> tuple[str, StoredManifest]:
        """The wrapped manifest (or index) for the current base and wrapper digests.

        Other processes composing the same wrap at once write the same bytes to the
        same keys; within this process the later callers wait and reuse the result.
        """
        key = wrap_key(wrap)
        with self._stripes[int(key[:8], 16) % LOCK_STRIPES]:
            return self._compose_locked(wrap)

    def _compose_locked(self, wrap: WrapName) -> tuple[str, StoredManifest]:
        base = self._resolve(wrap.base, "base")
        wrapper = self._resolve(wrap.wrapper, "wrapper")
        key = composition_key(base, wrapper)
        record = self.hot.get(key) or self.store.get_json(key)
        if record:
            stored = self._stored_manifest(record["digest"])
            if stored is not None:
                self.hot.put(key, record)
                return record["digest"], stored
        digest, stored = self._compose_now(wrap, base, wrapper)
        record = {"digest": digest, "mediaType": stored.media_type}
        self.store.put_json(key, record)
        self.hot.put(key, record)
        return digest, stored

    def _compose_now(
        self, wrap: WrapName, base: Resolved, wrapper: Resolved
    ) -> tuple[str, StoredManifest]:
        """Compose every base platform; a single-platform base is a one-entry plan."""
        base_manifest = self._manifest(base.image, base.digest, "base")
        wrapper_manifest = self._manifest(wrapper.image, wrapper.digest, "wrapper")
        base_is_index = _is_index(base_manifest, base.media_type)
        platforms = base_manifest if base_is_index else self._as_index(base, base_manifest)

        def compose_platform(entry: tuple[dict, dict | None]) -> tuple[dict, compose.Composed]:
            base_descriptor, wrapper_descriptor = entry
            if wrapper_descriptor is None:
                wrapper_digest = wrapper.digest
            else:
                wrapper_digest = wrapper_descriptor["digest"]
            composed = self._compose_one(
                wrap, base, base_descriptor["digest"], wrapper, wrapper_digest
            )
            return base_descriptor, composed

        plan = compose.plan_platforms(platforms, wrapper_manifest)
        with ThreadPoolExecutor(max_workers=PARALLEL_PLATFORMS) as pool:
            entries = list(pool.map(compose_platform, plan))
        if not base_is_index:
            composed = entries[0][1]
            return composed.manifest_digest, StoredManifest(
                composed.manifest_bytes, composed.media_type
            )
        index = compose.compose_index(
            entries, self._annotations(base, base.digest, wrapper, wrapper.digest)
        )
        self.store.put_manifest(index.manifest_digest, index.manifest_bytes, index.media_type)
        self._record_sources(wrap, {index.manifest_digest: {"kind": "manifest"}})
        return index.manifest_digest, StoredManifest(index.manifest_bytes, index.media_type)

    def _as_index(self, base: Resolved, manifest: dict[str, Any]) -> dict[str, Any]:
        """A single-platform base seen as an index of one, with the platform its config names.

        So the wrapper variant is chosen by the same rules as for a multi-platform base.
        """
        config = self._config(base.image, manifest, "base")
        platform = {
            key: config[key]
            for key in ("os", "architecture", "variant", "os.version")
            if isinstance(config.get(key), str) and config[key]
        }
        size = len(self._fetch_manifest(base.image, base.digest, "base").body)
        descriptor = {"mediaType": base.media_type, "digest": base.digest, "size": size}
        return {"manifests": [{**descriptor, "platform": platform}]}

    def _compose_one(
        self,
        wrap: WrapName,
        base: Resolved,
        base_digest: str,
        wrapper: Resolved,
        wrapper_digest: str,
    ) -> compose.Composed:
        """Compose one platform: store its config, manifest and blob sources."""
        base_manifest = self._manifest(base.image, base_digest, "base")
        base_config = self._config(base.image, base_manifest, "base")
        wrapper_manifest = self._manifest(wrapper.image, wrapper_digest, "wrapper")
        wrapper_config = self._config(wrapper.image, wrapper_manifest, "wrapper")
        composed = compose.compose_image(
            base_manifest,
            base_config,
            wrapper_manifest,
            wrapper_config,
            self._annotations(base, base_digest, wrapper, wrapper_digest),
        )
        self.store.put_blob(composed.config_digest, composed.config_bytes)
        self.store.put_manifest(
            composed.manifest_digest, composed.manifest_bytes, composed.media_type
        )
        sources: dict[str, dict] = {}
        for side, manifest in (("base", base_manifest), ("wrapper", wrapper_manifest)):
            for layer in manifest.get("layers", []):
                sources.setdefault(
                    layer["digest"], {"kind": "blob", "source": side, "size": layer["size"]}
                )
        sources[composed.config_digest] = {
            "kind": "blob",
            "source": "generated",
            "size": len(composed.config_bytes),
        }
        sources[composed.manifest_digest] = {"kind": "manifest"}
        self._record_sources(wrap, sources)
        return composed

    @staticmethod
    def _annotations(
        base: Resolved, base_digest: str, wrapper: Resolved, wrapper_digest: str
    ) -> dict[str, str]:
        return {
            compose.ANNOTATION_BASE_NAME: str(base.image),
            compose.ANNOTATION_BASE_DIGEST: base_digest,
            compose.ANNOTATION_WRAPPER_NAME: str(wrapper.image),
            compose.ANNOTATION_WRAPPER_DIGEST: wrapper_digest,
        }

    # -- sources -----------------------------------------------------------------

    def _record_sources(self, wrap: WrapName, sources: dict[str, dict]) -> None:
        """One small idempotent object per digest: concurrent writers agree."""
        fresh = {d: r for d, r in sources.items() if self.hot.get(source_key(wrap, d)) != r}
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda d: self.store.put_json(source_key(wrap, d), fresh[d]), fresh))
        for digest, record in fresh.items():
            self.hot.put(source_key(wrap, digest), record)

    def _source(self, wrap: WrapName, digest: str) -> dict | None:
        key = source_key(wrap, digest)
        record = self.hot.get(key)
        if record is None:
            record = self.store.get_json(key)
            if record is not None:
                self.hot.put(key, record)
        return record

    # -- upstream reads ----------------------------------------------------------

    def _resolve(self, image: ImageRef, role: str) -> Resolved:
        """Tag -> digest via memory, then S3 (both within the TTL), then an upstream HEAD."""
        if image.digest:
            stored = self._fetch_manifest(image, image.digest, role)
            return Resolved(image, image.digest, stored.media_type)
        key = tag_record_key(image)
        now = self.clock()
        record = self.hot.get(key) or self.store.get_json(key)
        if record and record.get("expires", 0) > now:
            self.hot.put(key, record, ttl=record["expires"] - now)
            return Resolved(image, record["digest"], record["mediaType"])
        described = self._upstream(
            role,
            image,
            lambda: self.upstream.head_manifest(
                image.repository, image.reference, ALL_MANIFEST_TYPES
            ),
        )
        if described is not None:
            digest, media_type = described.digest, described.media_type
        else:
            fetched = self._upstream(
                role,
                image,
                lambda: self.upstream.get_manifest(
                    image.repository, image.reference, ALL_MANIFEST_TYPES
                ),
            )
            self.store.put_manifest(fetched.digest, fetched.body, fetched.media_type)
            digest, media_type = fetched.digest, fetched.media_type
        record = {"digest": digest, "mediaType": media_type, "expires": now + self.tag_ttl_seconds}
        self.store.put_json(key, record)
        self.hot.put(key, record, ttl=self.tag_ttl_seconds)
        return Resolved(image, digest, media_type)

    def _stored_manifest(self, digest: str) -> StoredManifest | None:
        stored = self.hot.get(f"manifest:{digest}")
        if stored is None:
            stored = self.store.get_manifest(digest)
            if stored is not None:
                self.hot.put(f"manifest:{digest}", stored, size=len(stored.body))
        return stored

    def _fetch_manifest(self, image: ImageRef, digest: str, role: str) -> StoredManifest:
        stored = self._stored_manifest(digest)
        if stored is None:
            stored = self._upstream(
                role, image, lambda: self.proxy.manifest_by_digest(image.repository, digest)
            )
            self.hot.put(f"manifest:{digest}", stored, size=len(stored.body))
        return stored

    def _manifest(self, image: ImageRef, digest: str, role: str) -> dict[str, Any]:
        return _parse(self._fetch_manifest(image, digest, role), f"{role} image {image}")

    def _config(self, image: ImageRef, manifest: dict[str, Any], role: str) -> dict[str, Any]:
        descriptor = manifest.get("config")
        if not isinstance(descriptor, dict) or "digest" not in descriptor:
            raise errors.manifest_invalid(
                "invalid upstream image format",
                detail={"image": f"{role} image {image}", "reason": "no config"},
            )
        digest = descriptor["digest"]
        config = self.hot.get(f"config:{digest}")
        if config is None:
            data = self._upstream(
                role,
                image,
                lambda: self.upstream.fetch_blob(image.repository, digest, MAX_CONFIG_BYTES),
            )
            config = _parse(StoredManifest(data, ""), f"{role} image {image}")
            self.hot.put(f"config:{digest}", config, size=len(data))
        return config

    @staticmethod
    def _upstream(role: str, image: ImageRef, call: Callable[[], Any]) -> Any:
        """Run an upstream call; say which image (base or wrapper) an error is about."""
        try:
            return call()
        except RegistryError as exc:
            if exc.code in ("MANIFEST_UNKNOWN", "NAME_UNKNOWN", "BLOB_UNKNOWN"):
                raise RegistryError(
                    "MANIFEST_UNKNOWN",
                    f"{role} image {image} not found: {exc.message}",
                    detail={"image": str(image), "role": role},
                    status=404,
                ) from exc
            raise RegistryError(
                exc.code, f"{role} image {image}: {exc.message}", exc.detail, exc.status
            ) from exc
