"""`python -m ociwrap_local`: the registry on http://$HOST:$PORT, as `make run` serves it.

Settings are checked first (a misconfiguration stops it with a message). Then the
listening socket is bound, the embedded S3 started when `S3_ENDPOINT_URL` is unset, the
handler module (`app`, or `OCIWRAP_HANDLER_MODULE`) imported once, and `GATEWAY_WORKERS`
workers (default 4) forked. SIGTERM or Ctrl-C stops the workers and the embedded S3.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

from ociwrap_local.embedded import EmbeddedS3, start_embedded_s3
from ociwrap_local.workers import Workers, listen

DEFAULT_WORKERS = 4
MAX_WORKERS = 64


def worker_count(env: dict[str, str] | os._Environ[str] = os.environ) -> int:
    raw = env.get("GATEWAY_WORKERS", "").strip() or str(DEFAULT_WORKERS)
    if not (raw.isascii() and raw.isdigit() and 1 <= int(raw) <= MAX_WORKERS):
        raise ValueError(f"GATEWAY_WORKERS must be a number from 1 to {MAX_WORKERS}, got {raw!r}")
    return int(raw)


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    os.environ.setdefault("ARTIFACT_BUCKET", "ociwrap-local")
    from ociwrap.registry.settings import Settings

    try:
        port = int(os.environ.get("PORT", "5000"))
        workers = worker_count()
        signing = os.environ.get("SIGNING_KMS_KEY_ID") or os.environ.get("SIGNING_KEY_FILE")
        if signing and port:
            # Locally, clients pull from this very address.
            os.environ.setdefault("PUBLIC_HOSTNAME", f"{host}:{port}")
        Settings.from_env()
    except ValueError as exc:
        print(f"ociwrap: {exc}", file=sys.stderr)
        return 2
    try:
        sock = listen(host, port)
    except OSError as exc:
        print(f"ociwrap: cannot listen on {host}:{port}: {exc}", file=sys.stderr)
        return 2
    port = sock.getsockname()[1]
    embedded: EmbeddedS3 | None = None
    try:
        if not os.environ.get("S3_ENDPOINT_URL"):
            embedded = start_embedded_s3(host, os.environ["ARTIFACT_BUCKET"])
        module = importlib.import_module(os.environ.get("OCIWRAP_HANDLER_MODULE", "app"))

        def alive() -> str | None:
            if embedded is not None and embedded.process and embedded.process.poll() is not None:
                return f"the embedded S3 exited with {embedded.process.returncode}"
            return None

        started = time.monotonic()

        def ready() -> None:
            nonlocal started
            started = time.monotonic()
            print(
                f"ociwrap registry listening on http://{host}:{port} (GET /v2/ for readiness)",
                flush=True,
            )
            print(f"{workers} workers (GATEWAY_WORKERS), one event at a time each", flush=True)

        code = Workers(sock, module.lambda_handler, workers, alive=alive).run(ready)
        print(f"stopped after {time.monotonic() - started:.0f} s", flush=True)
        return code
    except KeyboardInterrupt:  # Ctrl-C before the workers ran
        return 130
    finally:
        sock.close()
        if embedded is not None:
            embedded.stop()


if __name__ == "__main__":
    sys.exit(main())
