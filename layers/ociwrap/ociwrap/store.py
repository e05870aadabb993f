"""Content-addressed S3 store for manifests, blobs and small JSON records.

Knows S3 and digests, nothing of upstreams. Every key is content-addressed or
idempotent, so two Lambdas writing the same thing at once write the same bytes.
Streamed blobs land under `uploads/` first and are copied to `blobs/` only after
their digest checked out: a blob key never holds bytes that don't match its name.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any, BinaryIO

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from ociwrap import errors

_TRANSFER = TransferConfig(multipart_chunksize=16 * 1024 * 1024, max_concurrency=4)


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def manifest_key(digest: str) -> str:
    return f"manifests/sha256/{_hex(digest)}"


def blob_key(digest: str) -> str:
    return f"blobs/sha256/{_hex(digest)}"


@dataclass(frozen=True)
class StoredManifest:
    body: bytes
    media_type: str


class HashingReader:
    """A read-only file object that hashes and counts what passes through it."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, amount: int = -1) -> bytes:
        data = self._raw.read(amount)
        self._hash.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> str:
        return "sha256:" + self._hash.hexdigest()


def make_s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """An S3 client whose presigned URLs a client can follow.

    With a custom endpoint (the embedded S3) addressing is path-style; on AWS it
    is virtual-hosted on the regional endpoint, which is what SigV4 URLs need.
    """
    style = "path" if endpoint_url else "virtual"
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": style},
        retries={"max_attempts": 3, "mode": "standard"},
        connect_timeout=5,
        read_timeout=20,
    )
    session = boto3.session.Session()
    return session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or session.region_name or "us-east-1",
        config=config,
    )


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound")


class Store:
    """The bucket, spoken to in digests."""

    def __init__(self, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket

    # -- manifests ---------------------------------------------------------------

    def _get(self, key: str) -> dict[str, Any] | None:
        """The object at `key`, or None when there is none."""
        try:
            return self.s3.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _missing(exc):
                return None
            raise

    def get_manifest(self, digest: str) -> StoredManifest | None:
        obj = self._get(manifest_key(digest))
        if obj is None:
            return None
        return StoredManifest(body=obj["Body"].read(), media_type=obj["ContentType"])

    def put_manifest(self, digest: str, body: bytes, media_type: str) -> None:
        self.s3.put_object(
            Bucket=self.bucket, Key=manifest_key(digest), Body=body, ContentType=media_type
        )

    # -- blobs -------------------------------------------------------------------

    def blob_size(self, digest: str) -> int | None:
        try:
            head = self.s3.head_object(Bucket=self.bucket, Key=blob_key(digest))
        except ClientError as exc:
            if _missing(exc):
                return None
            raise
        return int(head["ContentLength"])

    def put_blob(self, digest: str, body: bytes) -> None:
        """Store small generated blobs (configs) whose bytes are in memory."""
        self.s3.put_object(
            Bucket=self.bucket,
            Key=blob_key(digest),
            Body=body,
            ContentType="application/octet-stream",
        )

    def copy_blob_stream(self, digest: str, stream: BinaryIO) -> int:
        """Stream a blob into the bucket; it becomes visible only if its digest matches."""
        staging = f"uploads/{uuid.uuid4().hex}"
        reader = HashingReader(stream)
        self.s3.upload_fileobj(
            reader,
            self.bucket,
            staging,
            ExtraArgs={"ContentType": "application/octet-stream"},
            Config=_TRANSFER,
        )
        try:
            if reader.digest != digest:
                raise errors.upstream_unavailable(
                    f"blob {digest} from upstream has digest {reader.digest}",
                    detail={"digest": digest},
                )
            self.s3.copy(
                {"Bucket": self.bucket, "Key": staging},
                self.bucket,
                blob_key(digest),
                Config=_TRANSFER,
            )
        finally:
            self.s3.delete_object(Bucket=self.bucket, Key=staging)
        return reader.size

    def presign_blob(self, digest: str, ttl_seconds: int) -> str:
        return self.s3.generate_presigned_url(
            "get_object",
            Params={"Bucket": self.bucket, "Key": blob_key(digest)},
            ExpiresIn=ttl_seconds,
        )

    # -- small records -----------------------------------------------------------

    def get_json(self, key: str) -> Any | None:
        obj = self._get(key)
        return None if obj is None else json.loads(obj["Body"].read())

    def put_json(self, key: str, value: Any) -> None:
        self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=json.dumps(value, sort_keys=True).encode(),
            ContentType="application/json",
        )
