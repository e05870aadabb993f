"""The embedded S3 of `make run`: moto's server as a child process on loopback.

The same server answers for Secrets Manager, ECR and KMS, so those settings work locally
as in Lambda; `SIGNING_KMS_KEY_ID=embedded` signs with a key it creates.

A child process rather than a thread, so the gateway has no threads of its own when it
forks its workers. The bucket is created before any worker starts, by a client that is
closed again (no pooled connection is inherited by the workers).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request

from ociwrap_local.procs import free_port, set_parent_death_signal, stop_process, wait_until

START_TIMEOUT_SECONDS = 60.0
#: `SIGNING_KMS_KEY_ID=embedded`: sign with a new key of the embedded KMS (moto's).
EMBEDDED_KEY = "embedded"


class EmbeddedS3:
    """`python -m moto.server` on `host:port`; `start()` waits until it answers."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.endpoint_url = f"http://{host}:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = START_TIMEOUT_SECONDS) -> EmbeddedS3:
        argv = [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)]
        self.process = process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # a line per S3 request; the gateway logs its own
            stderr=subprocess.DEVNULL,
            preexec_fn=_as_child,
        )

        def answering() -> bool:
            if process.poll() is not None:
                raise RuntimeError(
                    f"the embedded S3 exited with {process.returncode} before it answered "
                    f"(`{' '.join(argv)}` shows why)"
                )
            return _answers(self.endpoint_url + "/")

        if not wait_until(answering, timeout):
            self.stop()
            raise RuntimeError(f"the embedded S3 did not answer at {self.endpoint_url}")
        return self

    def create_bucket(self, bucket: str) -> None:
        import boto3

        client = boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        try:
            client.create_bucket(Bucket=bucket)
        finally:
            client.close()

    def create_signing_key(self) -> str:
        """A new ECC_NIST_P256 signing key in the embedded KMS; its id."""
        import boto3

        client = boto3.session.Session().client(
            "kms",
            endpoint_url=self.endpoint_url,
            region_name=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        )
        try:
            created = client.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
        finally:
            client.close()
        return created["KeyMetadata"]["KeyId"]

    def stop(self, grace: float = 5.0) -> None:
        if self.process is not None:
            stop_process(self.process, grace)


def _as_child() -> None:
    """In the child before exec: Ctrl-C is the gateway's to handle; die with the gateway."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_parent_death_signal(signal.SIGTERM)


def _answers(url: str) -> bool:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only
    try:
        with contextlib.closing(direct.open(url, timeout=2)) as reply:
            return reply.status == 200
    except (OSError, urllib.error.URLError):
        return False


def start_embedded_s3(host: str, bucket: str) -> EmbeddedS3:
    """Start the embedded S3, create `bucket`, point the registry (this environment) at it."""
    port = int(os.environ.get("S3_PORT") or 0) or None
    s3 = EmbeddedS3(host, port).start()
    try:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "ociwrap-local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "ociwrap-local")
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        os.environ["S3_ENDPOINT_URL"] = s3.endpoint_url
        # The same moto server answers for Secrets Manager and ECR, so secret settings
        # (UPSTREAM_CREDENTIALS_SECRET, REGISTRY_AUTH_SECRET) work locally as in Lambda.
        os.environ.setdefault("AWS_ENDPOINT_URL_SECRETS_MANAGER", s3.endpoint_url)
        os.environ.setdefault("AWS_ENDPOINT_URL_ECR", s3.endpoint_url)
        os.environ.setdefault("AWS_ENDPOINT_URL_KMS", s3.endpoint_url)
        s3.create_bucket(bucket)
        if os.environ.get("SIGNING_KMS_KEY_ID") == EMBEDDED_KEY:
            os.environ["SIGNING_KMS_KEY_ID"] = s3.create_signing_key()
            print(f"signing with the embedded KMS key {os.environ['SIGNING_KMS_KEY_ID']}")
    except BaseException:
        s3.stop()
        raise
    print(f"embedded S3 at {s3.endpoint_url} (bucket {bucket})", flush=True)
    return s3
