"""Local stand-in for API Gateway (HTTP API, payload format 2.0).

`make run` serves the very handler the Lambda runs: each HTTP request becomes
the event API Gateway would build (lower-cased header names, repeated headers
joined with commas, cookies split out, `rawPath`, `rawQueryString`, base64 for
binary bodies), and the handler's result is written back as API Gateway would.
With no `S3_ENDPOINT_URL` an embedded S3 (moto's server) is started on
127.0.0.1 so presigned URLs point at something real.
"""

from __future__ import annotations

import base64
import importlib
import os
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

Handler = Callable[[dict, Any], dict]

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


@dataclass
class LocalContext:
    """The parts of a Lambda context object that handlers and Powertools read."""

    function_name: str = "ociwrap-registry"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ociwrap-registry"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/ociwrap-registry"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def build_event(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    source_ip: str = "127.0.0.1",
    now: datetime | None = None,
) -> dict:
    """The payload-2.0 event API Gateway builds for one request."""
    now = now or datetime.now(UTC)
    raw_path, _, raw_query = target.partition("?")
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    query: dict[str, str] = {}
    for key, value in parse_qsl(raw_query, keep_blank_values=True):
        query[key] = f"{query[key]},{value}" if key in query else value
    host = joined.get("host", "localhost")
    request_id = uuid.uuid4().hex
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": unquote(raw_path),
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if body:
        content_type = joined.get("content-type", "")
        if content_type.startswith(_TEXT_TYPES):
            event["body"] = body.decode("utf-8", errors="replace")
        else:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    return event


def decode_result(result: dict) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a payload-2.0 handler result."""
    status = int(result.get("statusCode", 200))
    headers: list[tuple[str, str]] = []
    for name, value in (result.get("headers") or {}).items():
        values = value if isinstance(value, list) else [value]
        headers.extend((name, str(item)) for item in values)
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((name, str(item)) for item in values)
    headers.extend(("Set-Cookie", cookie) for cookie in result.get("cookies") or [])
    body = result.get("body") or ""
    data = base64.b64decode(body) if result.get("isBase64Encoded") else body.encode()
    return status, headers, data


class GatewayRequestHandler(BaseHTTPRequestHandler):
    """Turns each request into an event, calls the handler, writes back its result."""

    protocol_version = "HTTP/1.1"
    server_version = "ociwrap-gateway"
    handler: Handler  # set on the subclass made by `make_server`

    def _dispatch(self) -> None:
        body = b""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            self.close_connection = True  # the registry is pull-only; don't read uploads
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
        event = build_event(
            self.command, self.path, self.headers.items(), body, self.client_address[0]
        )
        context = LocalContext(aws_request_id=event["requestContext"]["requestId"])
        try:
            status, headers, data = decode_result(type(self).handler(event, context))
        except Exception as exc:  # what API Gateway does when the function fails
            print(f"handler failed: {exc!r}", file=sys.stderr)
            status, headers, data = (
                500,
                [("Content-Type", "application/json")],
                (b'{"message":"Internal Server Error"}'),
            )
        self.send_response(status)
        has_length = False
        for name, value in headers:
            if name.lower() == "content-length":
                if self.command != "HEAD":
                    continue  # API Gateway sets it from the body it sends
                has_length = True
            self.send_header(name, value)
        if self.command != "HEAD":
            self.send_header("Content-Length", str(len(data)))
        elif not has_length:
            self.send_header("Content-Length", "0")
        self.end_headers()
        sent = 0 if self.command == "HEAD" else len(data)
        if sent:
            self.wfile.write(data)
        self.log_message('"%s" %d %d', self.requestline, status, sent)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Requests are logged once their body is written, with the bytes sent."""

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _dispatch

    def log_message(self, format: str, *args: Any) -> None:
        sys.stderr.write(f"{self.address_string()} {format % args}\n")


def make_server(host: str, port: int, handler: Handler) -> ThreadingHTTPServer:
    request_handler = type("BoundGatewayRequestHandler", (GatewayRequestHandler,), {})
    request_handler.handler = staticmethod(handler)
    server = ThreadingHTTPServer((host, port), request_handler)
    server.daemon_threads = True
    return server


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def start_embedded_s3(host: str, bucket: str) -> Any:
    """Start moto's S3 server on loopback, create the bucket, point the registry at it."""
    import boto3
    from moto.server import ThreadedMotoServer

    port = int(os.environ.get("S3_PORT") or free_port(host))
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    endpoint = f"http://{host}:{port}"
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "ociwrap-local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "ociwrap-local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ["S3_ENDPOINT_URL"] = endpoint
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    print(f"embedded S3 at {endpoint} (bucket {bucket})", flush=True)
    return server


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "5000"))
    os.environ.setdefault("ARTIFACT_BUCKET", "ociwrap-local")
    from ociwrap.config import Settings

    try:
        Settings.from_env()
    except ValueError as exc:
        print(f"ociwrap: {exc}", file=sys.stderr)
        return 2
    embedded = None
    if not os.environ.get("S3_ENDPOINT_URL"):
        embedded = start_embedded_s3(host, os.environ["ARTIFACT_BUCKET"])
    app = importlib.import_module(os.environ.get("OCIWRAP_HANDLER_MODULE", "app"))
    server = make_server(host, port, app.lambda_handler)

    def stop(_signum: int, _frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(
        f"ociwrap registry listening on http://{host}:{port} (GET /v2/ for readiness)", flush=True
    )
    started = time.monotonic()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if embedded is not None:
            embedded.stop()
        print(f"stopped after {time.monotonic() - started:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
