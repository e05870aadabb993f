"""The S3 client: presignable URLs, time-outs and retries that fit the request deadline.

botocore's time-outs are set per client, so they are kept short (S3 answers
small objects in milliseconds) and its `standard` retry mode is capped at three
attempts; on top, every attempt (first try or retry) is refused before it is
sent once the request's deadline has passed, so S3 draws from the same budget
as the upstreams do.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from ociwrap import deadline, errors

CONNECT_TIMEOUT = 2
READ_TIMEOUT = 5
MAX_ATTEMPTS = 3


def refuse_past_deadline(**_kwargs: Any) -> None:
    """botocore `before-send` hook: no S3 attempt starts after the deadline."""
    current = deadline.current()
    if current is not None and current.expired():
        raise errors.deadline_exceeded("artifact storage (S3)", current.budget)


def make_s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """An S3 client whose presigned URLs a client can follow.

    With a custom endpoint (the embedded S3) addressing is path-style; on AWS it
    is virtual-hosted on the regional endpoint, which is what SigV4 URLs need.
    """
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
    )
    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or session.region_name or "us-east-1",
        config=config,
    )
    client.meta.events.register("before-send.s3", refuse_past_deadline)
    return client
