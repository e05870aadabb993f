"""Real upstream registries (`docker-registry serve`, distribution 2.8) on 127.0.0.1.

Three flavours cover the ways an upstream hands out blobs:

* `plain`       - filesystem storage with `storage.redirect.disable`: it serves blob bytes
                  itself (like a small private registry).
* `basic`       - `plain` behind htpasswd Basic auth (`htpasswd`: the file's path).
* `token`       - `plain` plus `auth.token` backed by `harness.tokens.TokenIssuer`: every
                  request needs a Bearer token (the Docker Hub / ghcr.io flow).
* `redirecting` - storage driver `s3` on a moto server: blob GETs answer 307 to a
                  presigned S3 URL (like Docker Hub's CDN or ECR's S3 links).

Every request the registry answers is written to its access log (combined log format on
stdout), which the harness parses to count requests, e.g. how many manifest GETs an
upstream got: the one number Docker Hub's pull limits care about.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.moto_s3 import ACCESS_KEY, REGION, SECRET_KEY
from harness.procs import Process, clean_env, free_port, wait_until
from harness.tokens import TokenIssuer

Flavour = Literal["plain", "basic", "token", "redirecting"]

_ACCESS_LINE = re.compile(
    r'^\S+ \S+ \S+ \[[^\]]*\] "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) '
)
_MANIFEST_PATH = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/?]+)")
_BLOB_PATH = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[^/?]+)")


@dataclass(frozen=True)
class Access:
    """One line of the registry's access log."""

    method: str
    path: str
    status: int


class DockerRegistry:
    """One `docker-registry serve` process with a config written for its flavour."""

    def __init__(
        self,
        workdir: Path,
        flavour: Flavour = "plain",
        *,
        token_issuer: TokenIssuer | None = None,
        s3_endpoint_url: str | None = None,
        s3_bucket: str | None = None,
        htpasswd: Path | None = None,
        bind: str = "127.0.0.1",
    ) -> None:
        """`bind` is the address it listens on; `host`/`url` always name it on loopback.

        Only a test inside a network namespace of its own (`harness.sam_local_scenario`)
        binds `0.0.0.0`: there the other side of a container bridge must reach it too.
        """
        if flavour == "basic" and htpasswd is None:
            raise ValueError("a basic registry needs an htpasswd file")
        if flavour == "token" and token_issuer is None:
            raise ValueError("a token registry needs a token_issuer")
        if flavour == "redirecting" and not (s3_endpoint_url and s3_bucket):
            raise ValueError("a redirecting registry needs s3_endpoint_url and s3_bucket")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.flavour = flavour
        self.token_issuer = token_issuer
        self.s3_endpoint_url = s3_endpoint_url
        self.s3_bucket = s3_bucket
        self.htpasswd = htpasswd
        self.bind = bind
        self.port = free_port(bind)
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.config_path = self.workdir / "config.yml"
        self.process = Process(
            f"registry-{flavour}-{self.port}",
            ["docker-registry", "serve", str(self.config_path)],
            self.workdir,
            env=clean_env(),
        )

    def config(self) -> dict[str, Any]:
        """The registry configuration (JSON is valid YAML, so no YAML library is needed)."""
        storage: dict[str, Any]
        if self.flavour == "redirecting":
            # distribution 2.8 has no `forcepathstyle` key: a `regionendpoint` implies
            # path-style addressing (bucket in the path), which is what moto needs here.
            storage = {
                "s3": {
                    "accesskey": ACCESS_KEY,
                    "secretkey": SECRET_KEY,
                    "region": REGION,
                    "regionendpoint": self.s3_endpoint_url,
                    "bucket": self.s3_bucket,
                    "secure": False,
                    "v4auth": True,
                    "rootdirectory": "/registry",
                },
                "redirect": {"disable": False},
            }
        else:
            storage = {
                "filesystem": {"rootdirectory": str(self.workdir / "storage")},
                "redirect": {"disable": True},
            }
        storage["delete"] = {"enabled": True}
        storage["cache"] = {"blobdescriptor": "inmemory"}
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": storage,
            "http": {"addr": f"{self.bind}:{self.port}", "secret": f"harness-{self.port}"},
        }
        if self.flavour == "token":
            assert self.token_issuer is not None
            config["auth"] = self.token_issuer.auth_config()
        if self.flavour == "basic":
            config["auth"] = {"htpasswd": {"realm": "harness", "path": str(self.htpasswd)}}
        return config

    def start(self, timeout: float = 20.0) -> DockerRegistry:
        """Write the config, start the registry, wait until `/v2/` answers (401 with auth)."""
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        self.process.start()
        ready = 401 if self.flavour in ("token", "basic") else 200
        self.process.wait_http(f"{self.url}/v2/", ready, timeout)
        return self

    def stop(self) -> None:
        self.process.stop()

    def __enter__(self) -> DockerRegistry:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- request counting from the access log ---------------------------------------------

    def requests(self) -> list[Access]:
        """Every request answered so far, oldest first (parsed from the access log)."""
        found = []
        for line in self.process.log().splitlines():
            match = _ACCESS_LINE.match(line)
            if match:
                found.append(Access(match["method"], match["path"], int(match["status"])))
        return found

    def mark(self) -> int:
        """A position in the access log; pass it as `since` to count only later requests."""
        return len(self.requests())

    def manifest_requests(
        self, method: str = "GET", name: str | None = None, *, since: int = 0, settle: float = 0.2
    ) -> int:
        """How many manifest requests with `method` (optionally for repository `name`).

        The registry writes the access-log line just after sending the answer, so a count
        taken the instant a client returns can be one short; `settle` waits until the
        log has been quiet for that long (at most ten times that).
        """
        self.settle(settle)
        return sum(
            1
            for access in self.requests()[since:]
            if access.method == method.upper()
            and (match := _MANIFEST_PATH.match(access.path))
            and (name is None or match["name"] == name)
        )

    def blob_requests(
        self, method: str = "GET", name: str | None = None, *, since: int = 0, settle: float = 0.2
    ) -> int:
        """How many blob requests with `method` (optionally for repository `name`)."""
        self.settle(settle)
        return sum(
            1
            for access in self.requests()[since:]
            if access.method == method.upper()
            and (match := _BLOB_PATH.match(access.path))
            and (name is None or match["name"] == name)
        )

    def settle(self, quiet: float = 0.2) -> None:
        """Wait until the access log has not grown for `quiet` seconds."""
        if quiet <= 0:
            return
        sizes = [-1]

        def still() -> bool:
            sizes.append(self.process.log_path.stat().st_size)
            return sizes[-1] == sizes[-2]

        wait_until(still, 10 * quiet, interval=quiet)
