"""AWS clients (S3, Secrets Manager, ECR) whose time-outs and retries fit the request deadline.

botocore's time-outs are set per client, so they are kept short (these services
answer small requests in milliseconds) and its `standard` retry mode is capped
at three attempts; on top, every attempt (first try or retry) is refused before
it is sent once the request's deadline has passed, so AWS calls draw from the
same budget as the upstreams do. Endpoints follow boto3's own settings
(`AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_ECR`), which `make run`
points at its embedded moto server.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from botocore.config import Config

from ociwrap.runtime import deadline, errors, telemetry

CONNECT_TIMEOUT = 2
READ_TIMEOUT = 5
MAX_ATTEMPTS = 3


def _refuse_past_deadline(what: str) -> Any:
    def hook(**_kwargs: Any) -> None:
        """botocore `before-send` hook: no attempt starts after the deadline."""
        current = deadline.current()
        if current is not None and current.expired():
            raise errors.deadline_exceeded(what, current.budget)

    return hook


def _started(context: dict, **_kwargs: Any) -> None:
    """botocore `before-call` hook: when the call (all its attempts) began."""
    context["ociwrap_started"] = time.perf_counter()


def _finished(context: dict, **_kwargs: Any) -> None:
    """botocore `after-call` / `after-call-error` hook: count the call and its time."""
    started = context.pop("ociwrap_started", None)
    if started is not None:
        telemetry.s3_call((time.perf_counter() - started) * 1000)


def _config(**extra: Any) -> Config:
    return Config(
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        **extra,
    )


def make_client(service: str, what: str, region: str | None = None) -> Any:
    """A client of `service` (described as `what` in errors) on the deadline."""
    session = boto3.session.Session()
    client = session.client(
        service, region_name=region or session.region_name or "us-east-1", config=_config()
    )
    client.meta.events.register("before-send", _refuse_past_deadline(what))
    return client


def make_s3_client(endpoint_url: str | None = None, region: str | None = None) -> Any:
    """An S3 client whose presigned URLs a client can follow.

    With a custom endpoint (the embedded S3) addressing is path-style; on AWS it
    is virtual-hosted on the regional endpoint, which is what SigV4 URLs need.
    """
    config = _config(
        signature_version="s3v4",
        s3={"addressing_style": "path" if endpoint_url else "virtual"},
    )
    session = boto3.session.Session()
    client = session.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=region or session.region_name or "us-east-1",
        config=config,
    )
    client.meta.events.register("before-send.s3", _refuse_past_deadline("artifact storage (S3)"))
    client.meta.events.register("before-call.s3", _started)
    client.meta.events.register("after-call.s3", _finished)
    client.meta.events.register("after-call-error.s3", _finished)
    return client
