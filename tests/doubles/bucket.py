"""A bucket in memory: the `Bucket` interface as S3 answers it, without S3.

Objects are bytes by key with the time they were written (from a settable clock, so a
test can play the lifecycle's days); the lifecycle itself is deleting keys. Presigned
URLs are plain strings on `bucket.invalid` whose query carries the lifetime as S3's
does (`X-Amz-Expires`), with nothing to follow. A missing staged part fails a
composition as S3 fails it (a `ClientError`), so the code above sees the same failure.
Every call is logged in `calls` (method, key), and `before[method]` runs first (to fail
or delay one operation). Each call also counts as one S3 request in the request's
telemetry, as the S3 client's hooks count them (the adapter's compose, batched delete
and paged listing can take several requests where this counts one).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from botocore.exceptions import ClientError

from ociwrap.bucket.interface import Bucket, Listed, StoredManifest
from ociwrap.bucket.store import blob_key, manifest_key
from ociwrap.names.mediatypes import JSON, OCTET_STREAM
from ociwrap.runtime import telemetry

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Stored:
    body: bytes
    content_type: str
    written: float


def missing(operation: str, key: str) -> ClientError:
    """What S3 raises for a key that is not there."""
    return ClientError({"Error": {"Code": "NoSuchKey", "Message": f"no such key {key}"}}, operation)


class MemoryBucket(Bucket):
    """Objects by key in a dict; see the module docstring."""

    def __init__(self, clock: Callable[[], float] = time.time, name: str = "unit-bucket") -> None:
        self.objects: dict[str, Stored] = {}
        self.clock = clock
        self.name = name
        self.calls: list[tuple[str, str]] = []
        self.before: dict[str, Callable[[str], None]] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, key: str) -> None:
        with self._lock:
            self.calls.append((method, key))
        telemetry.s3_call(0.0)
        hook = self.before.get(method)
        if hook is not None:
            hook(key)

    def _write(self, key: str, body: bytes, content_type: str) -> None:
        with self._lock:
            self.objects[key] = Stored(bytes(body), content_type, self.clock())

    # -- for tests -----------------------------------------------------------------

    def listing(self, prefix: str = "") -> list[str]:
        """The keys under `prefix`, sorted."""
        return sorted(key for key in list(self.objects) if key.startswith(prefix))

    def held(self, key: str) -> bytes | None:
        stored = self.objects.get(key)
        return None if stored is None else stored.body

    def expire(self, *prefixes: str) -> None:
        """What the lifecycle does: every object under these prefixes is gone."""
        for prefix in prefixes:
            for key in self.listing(prefix):
                self.objects.pop(key, None)

    def called(self, method: str) -> list[str]:
        return [key for name, key in self.calls if name == method]

    # -- the interface ---------------------------------------------------------------

    def get_manifest(self, digest: str) -> StoredManifest | None:
        key = manifest_key(digest)
        self._call("get_manifest", key)
        stored = self.objects.get(key)
        return None if stored is None else StoredManifest(stored.body, stored.content_type)

    def put_manifest(self, digest: str, body: bytes, media_type: str) -> None:
        key = manifest_key(digest)
        self._call("put_manifest", key)
        self._write(key, body, media_type)

    def blob_size(self, digest: str) -> int | None:
        key = blob_key(digest)
        self._call("blob_size", key)
        stored = self.objects.get(key)
        return None if stored is None else len(stored.body)

    def blob_written(self, digest: str) -> float | None:
        key = blob_key(digest)
        self._call("blob_written", key)
        stored = self.objects.get(key)
        return None if stored is None else stored.written

    def get_blob(self, digest: str) -> bytes | None:
        key = blob_key(digest)
        self._call("get_blob", key)
        return self.held(key)

    def put_blob(self, digest: str, body: bytes) -> None:
        key = blob_key(digest)
        self._call("put_blob", key)
        self._write(key, body, OCTET_STREAM)

    def compose_blob(self, digest: str, parts: Sequence[str]) -> None:
        key = blob_key(digest)
        self._call("compose_blob", key)
        datas = []
        for part in parts:
            data = self.held(part)
            if data is None:
                raise missing("UploadPartCopy", part)
            datas.append(data)
        self._write(key, b"".join(datas), OCTET_STREAM)

    def presign_blob(self, digest: str, ttl_seconds: int) -> str:
        key = blob_key(digest)
        self._call("presign_blob", key)
        query = urlencode({"X-Amz-Expires": str(ttl_seconds), "X-Amz-Signature": "memory"})
        return f"https://bucket.invalid/{self.name}/{key}?{query}"

    def get_json(self, key: str) -> Any | None:
        self._call("get_json", key)
        data = self.held(key)
        return None if data is None else json.loads(data)

    def put_json(self, key: str, value: Any) -> None:
        self._call("put_json", key)
        self._write(key, json.dumps(value, sort_keys=True).encode(), JSON)

    def put_part(self, key: str, data: bytes) -> None:
        self._call("put_part", key)
        self._write(key, data, OCTET_STREAM)

    def read_part(self, key: str) -> Iterator[bytes]:
        self._call("read_part", key)
        data = self.held(key)
        if data is None:
            raise missing("GetObject", key)
        return (data[at : at + CHUNK] for at in range(0, len(data), CHUNK))

    def list_parts(self, prefix: str) -> list[Listed]:
        self._call("list_parts", prefix)
        return [Listed(key, len(self.objects[key].body)) for key in self.listing(prefix)]

    def delete_keys(self, keys: Sequence[str]) -> None:
        self._call("delete_keys", ",".join(keys))
        with self._lock:
            for key in keys:
                self.objects.pop(key, None)
