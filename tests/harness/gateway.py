"""The local gateway (`python -m ociwrap_local`) as a subprocess, for end-to-end tests.

It is the Docker-free stand-in for API Gateway + Lambda: it turns each HTTP request into
the payload-2.0 event and runs the real handler in worker processes, one event at a time
each. In tests it runs loopback-only (`harness.loopback_only`): a connection anywhere
else fails and is recorded, see `connect_attempts()`. Tests start it against the
harness's moto S3 and upstream registries (via `REGISTRY_ALIASES`, the only way to reach
a plain-HTTP registry on a port) and talk to it with the same clients users have.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from harness.moto_s3 import dummy_aws_env
from harness.procs import Process, clean_env, free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
LAUNCHER = Path(__file__).with_name("loopback_only.py")
DEADLINE_EXCEEDED = "DEADLINE EXCEEDED"


def gateway_pythonpath(*extra: str | Path) -> str:
    """`PYTHONPATH` of a gateway: the layer, the function, the dev package, then `extra`."""
    parts = [REPO_ROOT / "layers" / "ociwrap", REPO_ROOT / "functions" / "registry"]
    parts += [REPO_ROOT / "dev", *(Path(p) for p in extra)]
    return os.pathsep.join(str(p) for p in parts)


class LocalGateway:
    """One gateway process on 127.0.0.1:`port`, its S3 bucket and its upstream aliases.

    `extra_env` overrides the environment it would get (`GATEWAY_WORKERS`,
    `REQUEST_TIMEOUT_SECONDS`, even `PYTHONPATH`); `port` is a free one unless given (an
    alias that names the gateway itself needs it before the gateway starts).
    """

    def __init__(
        self,
        workdir: Path,
        *,
        s3_endpoint_url: str,
        bucket: str,
        aliases: Mapping[str, str],
        extra_env: Mapping[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.bucket = bucket
        self.aliases = dict(aliases)
        self.port = port or free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self.connect_log = self.workdir / "refused-connects.log"
        self.lookup_log = self.workdir / "refused-lookups.log"
        self.env = clean_env(
            {
                **dummy_aws_env(s3_endpoint_url),
                "PORT": str(self.port),
                "HOST": "127.0.0.1",
                "PYTHONPATH": gateway_pythonpath(),
                "PYTHONUNBUFFERED": "1",
                "ARTIFACT_BUCKET": bucket,
                "REGISTRY_ALIASES": ",".join(f"{k}={v}" for k, v in self.aliases.items()),
                "LOG_LEVEL": "INFO",
                "LOOPBACK_ONLY_LOG": str(self.connect_log),
                "LOOPBACK_ONLY_LOOKUPS": str(self.lookup_log),
                **(extra_env or {}),
            }
        )
        self.process = Process(
            f"gateway-{self.port}",
            [sys.executable, str(LAUNCHER)],
            self.workdir,
            env=self.env,
            cwd=REPO_ROOT,
        )
        self.deadlines_exceeded: list[str] = []

    def start(self, timeout: float = 30.0) -> LocalGateway:
        """Start it and wait for `GET /v2/` to answer 200 (the registry API's version check)."""
        self.process.start()
        self.process.wait_http(f"{self.url}/v2/", (200, 401), timeout)  # 401: logins required
        return self

    def stop(self) -> list[str]:
        """Stop it (SIGTERM, then SIGKILL); returns the `DEADLINE EXCEEDED` lines of its log.

        A request answered after API Gateway's 30 s cut would have failed in AWS: the
        `gateway` fixtures fail the test on these (also kept in `deadlines_exceeded`).
        """
        self.process.stop()
        self.deadlines_exceeded = [
            line for line in self.log().splitlines() if DEADLINE_EXCEEDED in line
        ]
        return self.deadlines_exceeded

    def log(self) -> str:
        """Everything the gateway (and so the handler) has logged so far."""
        return self.process.log()

    def misdeeds(self) -> list[str]:
        """What no gateway may ever do, as it happened: answer a request after API Gateway's
        30 s cut (the gateway logs those), or try to connect anywhere but loopback."""
        found = [line for line in self.log().splitlines() if DEADLINE_EXCEEDED in line]
        found += [f"tried to connect to {host}" for host in self.connect_attempts()]
        return found

    def connect_attempts(self) -> list[str]:
        """Destinations other than loopback the gateway tried to reach, all refused."""
        return _lines(self.connect_log)

    def lookup_attempts(self) -> list[str]:
        """Host names the gateway tried to resolve, refused (a DNS query leaves the machine)."""
        return _lines(self.lookup_log)

    def worker_pids(self) -> list[int]:
        """The worker processes (forks of the gateway, not the embedded S3) serving now."""
        parent = self.process.pid
        try:
            children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
            own = Path(f"/proc/{parent}/cmdline").read_bytes()
        except (FileNotFoundError, ProcessLookupError):
            return []
        pids = []
        for pid in map(int, children):
            try:
                if Path(f"/proc/{pid}/cmdline").read_bytes() == own:
                    pids.append(pid)
            except (FileNotFoundError, ProcessLookupError):
                continue
        return pids

    def peak_rss_mb(self) -> float:
        """The highest peak resident memory (`VmHWM`) of any worker, in MiB."""
        peaks = [0.0]
        for pid in self.worker_pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
        return max(peaks)

    def reset_peak_rss(self) -> None:
        """Start measuring peak memory from now (writing 5 to `clear_refs` resets VmHWM)."""
        for pid in self.worker_pids():
            try:
                Path(f"/proc/{pid}/clear_refs").write_text("5")
            except (FileNotFoundError, ProcessLookupError):
                continue

    def __enter__(self) -> LocalGateway:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().split()
    except FileNotFoundError:
        return []


#: An S3 endpoint where nothing answers (the discard port), for gateways whose tests are
#: answered before anything is looked up.
NO_S3 = "http://127.0.0.1:9"


def gateway_without_s3(workdir: Path, **env: str) -> LocalGateway:
    """A gateway (not started) with no S3 behind it and no aliases; `env` for its process."""
    return LocalGateway(
        workdir, s3_endpoint_url=NO_S3, bucket="ociwrap-unit", aliases={}, extra_env=env
    )


# What the conftest's `gateway` fixture hands a test: call it (optionally with bucket=,
# aliases=, env=, port=) to get a started LocalGateway that is stopped after the test.
GatewayFactory = Callable[..., LocalGateway]
