"""moto's S3 server on 127.0.0.1, as a real HTTP endpoint for boto3, registries and clients.

It runs in a child process (`python -m moto.server`) by default rather than as
`moto.server.ThreadedMotoServer` inside pytest: moto keeps its state in module globals,
and any unit test that enters `moto.mock_aws()` resets them, which would silently empty
the integration buckets mid-session (measured: a bucket created through the threaded
server is gone after `with mock_aws(): pass`). `threaded=True` keeps the in-process
variant for callers that know no `mock_aws` runs beside them.

moto does not check presigned-URL signatures or expiry: test presigning logic separately.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from harness.procs import Process, free_port, wait_http

REGION = "us-east-1"
ACCESS_KEY = "testing"
SECRET_KEY = "testing"


def dummy_aws_env(endpoint_url: str | None = None) -> dict[str, str]:
    """Environment variables that make boto3 talk to moto with dummy credentials."""
    env = {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if endpoint_url:
        env["S3_ENDPOINT_URL"] = endpoint_url
    return env


class MotoS3:
    """An S3 endpoint at `endpoint_url` (http://127.0.0.1:PORT) that accepts any credentials."""

    def __init__(self, log_dir: Path, *, threaded: bool = False, bind: str = "127.0.0.1") -> None:
        """`bind` is the address it listens on; `endpoint_url` always names it on loopback.

        Only a test inside a network namespace of its own (`harness.sam_local_scenario`)
        binds `0.0.0.0`: there the other side of a container bridge must reach it too.
        """
        self.host = "127.0.0.1"
        self.bind = bind
        self.port = free_port(bind)
        self.endpoint_url = f"http://{self.host}:{self.port}"
        self._threaded = threaded
        self._server: Any = None
        self.process: Process | None = None
        self._log_dir = Path(log_dir)

    def start(self, timeout: float = 30.0) -> MotoS3:
        """Start the server and wait until it answers an S3 ListBuckets-shaped GET."""
        if self._threaded:
            from moto.server import ThreadedMotoServer

            self._server = ThreadedMotoServer(ip_address=self.bind, port=self.port, verbose=False)
            self._server.start()
            try:
                wait_http(f"{self.endpoint_url}/", 200, timeout)
            except BaseException:
                self.stop()
                raise
            return self
        env = {**os.environ, **dummy_aws_env(), "PYTHONUNBUFFERED": "1"}
        self.process = Process(
            f"moto-s3-{self.port}",
            [sys.executable, "-m", "moto.server", "-H", self.bind, "-p", str(self.port)],
            self._log_dir,
            env=env,
        ).start()
        self.process.wait_http(f"{self.endpoint_url}/", 200, timeout)
        return self

    def client(self) -> Any:
        """A boto3 S3 client for this endpoint: dummy keys, us-east-1, path-style addressing."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"),
        )

    def create_bucket(self, name: str) -> str:
        """Create bucket `name` (S3 rules: 3-63 lowercase characters) and return its name."""
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every key under `prefix`, for tests that check what was stored."""
        paginator = self.client().get_paginator("list_objects_v2")
        found: list[str] = []
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            found.extend(item["Key"] for item in page.get("Contents", []))
        return found

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None
        if self.process is not None:
            self.process.stop()

    def __enter__(self) -> MotoS3:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
