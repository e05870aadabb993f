"""Content-addressed S3 store for manifests, blobs and small JSON records.

Knows S3 and digests, nothing of upstreams. Every key is content-addressed or
idempotent, so two Lambdas writing the same thing at once write the same bytes.
A blob key never holds bytes that don't match its name: small blobs are checked
in memory before they are written, large ones are staged under `uploads/` (a
multipart upload, aborted on any failure; the bucket's lifecycle rule removes
what an abort could not) and copied into place only after their digest checked
out.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ociwrap import errors
from ociwrap.digest import Hasher, encoded

OCTET_STREAM = "application/octet-stream"
#: Blobs up to this size are verified in memory and written once; larger ones are staged.
PART_BYTES = 8 * 1024 * 1024


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{encoded(digest)}"


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{encoded(digest)}"


@dataclass(frozen=True)
class StoredManifest:
    body: bytes
    media_type: str


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class Store:
    """The bucket, spoken to in digests and record keys."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    def _get(self, key: str) -> dict[str, Any] | None:
        """The object at `key`, or None when there is none."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _size(self, key: str) -> int | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def _put(self, key: str, body: bytes, content_type: str) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type)

    # -- manifests ---------------------------------------------------------------

    def get_manifest(self, digest: str) -> StoredManifest | None:
        obj = self._get(manifest_key(digest))
        if obj is None:
            return None
        return StoredManifest(body=obj["Body"].read(), media_type=obj["ContentType"])

    def put_manifest(self, digest: str, body: bytes, media_type: str) -> None:
        self._put(manifest_key(digest), body, media_type)

    # -- blobs -------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        return self._size(blob_key(digest))

    def get_blob(self, digest: str) -> bytes | None:
        obj = self._get(blob_key(digest))
        return None if obj is None else obj["Body"].read()

    def put_blob(self, digest: str, body: bytes) -> None:
        """Store a small blob (a config) whose bytes are in memory and verified."""
        self._put(blob_key(digest), body, OCTET_STREAM)

    def copy_blob(self, digest: str, chunks: Iterable[bytes]) -> int:
        """Store a streamed blob under its digest if, and only if, its bytes match it."""
        hasher = Hasher()
        first = bytearray()
        stream = iter(chunks)
        for chunk in stream:
            hasher.update(chunk)
            first += chunk
            if len(first) >= PART_BYTES:
                return self._copy_staged(digest, hasher, first, stream)
        if hasher.digest != digest:
            raise errors.blob_mismatch(digest, hasher.digest)
        self.put_blob(digest, bytes(first))
        return hasher.size

    def _copy_staged(
        self, digest: str, hasher: Hasher, pending: bytearray, rest: Iterable[bytes]
    ) -> int:
        staging = f"uploads/{uuid.uuid4().hex}"
        upload = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=staging, ContentType=OCTET_STREAM
        )
        upload_id = upload["UploadId"]
        parts: list[dict[str, Any]] = []

        def send(data: bytes) -> None:
            number = len(parts) + 1
            answer = self.s3.upload_part(
                Bucket=self.bucket, Key=staging, UploadId=upload_id, PartNumber=number, Body=data
            )
            parts.append({"ETag": answer["ETag"], "PartNumber": number})

        try:
            for chunk in rest:
                hasher.update(chunk)
                pending += chunk
                while len(pending) >= PART_BYTES:
                    send(bytes(pending[:PART_BYTES]))
                    del pending[:PART_BYTES]
            if pending:
                send(bytes(pending))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=staging,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError, errors.RegistryError):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=staging, UploadId=upload_id)
            raise
        try:
            if hasher.digest != digest:
                raise errors.blob_mismatch(digest, hasher.digest)
            self.s3.copy_object(
                Bucket=self.bucket,
                Key=blob_key(digest),
                CopySource={"Bucket": self.bucket, "Key": staging},
                ContentType=OCTET_STREAM,
                MetadataDirective="REPLACE",
            )
        finally:
            with contextlib.suppress(BotoCoreError, ClientError, errors.RegistryError):
                self.s3.delete_object(Bucket=self.bucket, Key=staging)
        return hasher.size

    def presign_blob(self, digest: str, ttl_seconds: int) -> str:
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": blob_key(digest)},
            ExpiresIn=ttl_seconds,
        )

    # -- small records -----------------------------------------------------------

    def get_json(self, key: str) -> Any | None:
        """A record this registry wrote (so parsing it is safe), or None."""
        obj = self._get(key)
        return None if obj is None else json.loads(obj["Body"].read())

    def put_json(self, key: str, value: Any) -> None:
        body = json.dumps(value, sort_keys=True).encode()
        self._put(key, body, "application/json")
