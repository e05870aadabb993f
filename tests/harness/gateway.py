"""The local gateway (`python -m ociwrap.gateway`) as a subprocess, for end-to-end tests.

It is the Docker-free stand-in for API Gateway + Lambda: it turns each HTTP request into
the payload-2.0 event and runs the real handler. Tests start it against the harness's
moto S3 and upstream registries (via `REGISTRY_ALIASES`, the only way to reach a
plain-HTTP registry on a port) and talk to it with the same clients users have.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.moto_s3 import dummy_aws_env
from harness.procs import Process, clean_env, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]


class LocalGateway:
    """One gateway process on 127.0.0.1:`port`, its S3 bucket and its upstream aliases."""

    def __init__(
        self,
        workdir: Path,
        *,
        s3_endpoint_url: str,
        bucket: str,
        aliases: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.bucket = bucket
        self.aliases = dict(aliases)
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        pythonpath = f"{REPO_ROOT / 'layers' / 'ociwrap'}:{REPO_ROOT / 'functions' / 'registry'}"
        self.env = clean_env(
            {
                **dummy_aws_env(s3_endpoint_url),
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "PYTHONPATH": pythonpath,
                "PYTHONUNBUFFERED": "1",
                "ARTIFACT_BUCKET": bucket,
                "REGISTRY_ALIASES": ",".join(f"{k}={v}" for k, v in self.aliases.items()),
                "LOG_LEVEL": "INFO",
                **(extra_env or {}),
            }
        )
        self.process = Process(
            f"gateway-{self.port}",
            [sys.executable, "-m", "ociwrap.gateway"],
            self.workdir,
            env=self.env,
            cwd=REPO_ROOT,
        )

    def start(self, timeout: float = 30.0) -> LocalGateway:
        """Start it and wait for `GET /v2/` to answer 200 (the registry API's version check)."""
        self.process.start()
        self.process.wait_http(f"{self.url}/v2/", 200, timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def log(self) -> str:
        """Everything the gateway (and so the handler) has logged so far."""
        return self.process.log()

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# What the conftest's `gateway` fixture hands a test: call it (optionally with bucket=,
# aliases=, env=) to get a started LocalGateway that is stopped after the test.
GatewayFactory = Callable[..., LocalGateway]
