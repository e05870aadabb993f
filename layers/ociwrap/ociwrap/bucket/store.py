"""Content-addressed S3 store for manifests, blobs and small JSON records.

Knows S3 and digests, nothing of upstreams. Every key is content-addressed or
idempotent, so two Lambdas writing the same thing at once write the same bytes.
A blob key never holds bytes that don't match its name: small blobs are checked
in memory before they are written, large ones are staged in parts under
`uploads/` (see `staging`) and put together under their name only after their
digest checked out.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from ociwrap.bucket.interface import Bucket, Listed, StoredManifest
from ociwrap.names.digest import encoded
from ociwrap.names.mediatypes import JSON, OCTET_STREAM
from ociwrap.runtime import errors
from ociwrap.runtime.concurrency import ordered_map

#: Part copies under way at once when a blob is put together from staged parts.
COPIES_AT_ONCE = 8
#: Bytes read at once from a staged part.
READ_CHUNK = 1024 * 1024
#: The most keys one S3 DeleteObjects request takes.
DELETE_BATCH = 1000


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{encoded(digest)}"


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{encoded(digest)}"


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class Store(Bucket):
    """The bucket on S3, spoken to in digests and record keys (a `Bucket`)."""

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

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            return self.s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def _size(self, key: str) -> int | None:
        head = self._head(key)
        return None if head is None else int(head["ContentLength"])

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

    def blob_written(self, digest: str) -> float | None:
        """When the blob was last written (epoch s; lifecycle rules count from it), or None
        when the bucket does not hold it."""
        head = self._head(blob_key(digest))
        return None if head is None else head["LastModified"].timestamp()

    def get_blob(self, digest: str) -> bytes | None:
        obj = self._get(blob_key(digest))
        return None if obj is None else obj["Body"].read()

    def put_blob(self, digest: str, body: bytes) -> None:
        """Store a small blob (a config) whose bytes are in memory and verified."""
        self._put(blob_key(digest), body, OCTET_STREAM)

    def compose_blob(self, digest: str, parts: Sequence[str]) -> None:
        """Store a blob as the concatenation of staged objects whose bytes matched `digest`.

        A multipart upload straight to the blob's key, each part copied inside S3
        (UploadPartCopy), so no byte passes through the function and the key appears
        only when the upload completes. All but the last part must be at least 5 MiB.
        A failed upload is aborted if the role may (else the bucket's lifecycle rule
        removes it a day later); it was never visible.
        """
        key = blob_key(digest)
        upload_id = self.s3.create_multipart_upload(
            Bucket=self.bucket, Key=key, ContentType=OCTET_STREAM
        )["UploadId"]

        def copy(numbered: tuple[int, str]) -> dict[str, Any]:
            number, source = numbered
            answer = self.s3.upload_part_copy(
                Bucket=self.bucket,
                Key=key,
                UploadId=upload_id,
                PartNumber=number,
                CopySource={"Bucket": self.bucket, "Key": source},
            )
            return {"ETag": answer["CopyPartResult"]["ETag"], "PartNumber": number}

        try:
            copied = list(ordered_map(copy, enumerate(parts, 1), COPIES_AT_ONCE))
            self.s3.complete_multipart_upload(
                Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": copied}
            )
        except BaseException:
            with contextlib.suppress(BotoCoreError, ClientError, errors.RegistryError):
                self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise

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
        self._put(key, body, JSON)

    # -- staged parts ------------------------------------------------------------

    def put_part(self, key: str, data: bytes) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)

    def read_part(self, key: str) -> Iterator[bytes]:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
        with contextlib.closing(body):
            yield from body.iter_chunks(READ_CHUNK)

    def list_parts(self, prefix: str) -> list[Listed]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return [
            Listed(item["Key"], int(item["Size"]))
            for page in pages
            for item in page.get("Contents", [])
        ]

    def delete_keys(self, keys: Sequence[str]) -> None:
        for first in range(0, len(keys), DELETE_BATCH):
            batch = keys[first : first + DELETE_BATCH]
            self.s3.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in batch], "Quiet": True},
            )
