"""The shapes API Gateway (HTTP API, payload 2.0) and Lambda hand a function, and back.

`build_event` is the event API Gateway builds for one request (lower-cased header names,
repeated headers joined with commas, cookies split out, `rawPath`, `rawQueryString`,
base64 for binary bodies), `decode_result` reads the handler's result as API Gateway
reads it, and `LocalContext` is the Lambda context, whose clock counts down the
template's 29 s timeout. The limits are those of the deployed stack, so a request that
fails in AWS fails here too.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote

#: The function's timeout (`Timeout: 29` in template.yaml).
LAMBDA_TIMEOUT_SECONDS = 29
#: API Gateway's integration time-out: it answers the client itself after this long.
API_GATEWAY_TIMEOUT_SECONDS = 30
#: API Gateway's payload limit for a request body (HTTP API: 10 MB).
MAX_REQUEST_BODY_BYTES = 10 * 1024 * 1024
#: Lambda's limit for a synchronous invocation's response (6 MB), the result as JSON.
MAX_RESULT_BYTES = 6 * 1024 * 1024

_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript")


@dataclass
class LocalContext:
    """The parts of a Lambda context object that handlers and Powertools read.

    Its clock starts when it is made: make it when the event is handed to the handler,
    as Lambda starts an invocation's clock.
    """

    function_name: str = "ociwrap-registry"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:ociwrap-registry"
    aws_request_id: str = ""
    log_group_name: str = "/aws/lambda/ociwrap-registry"
    log_stream_name: str = "local"
    timeout_seconds: float = LAMBDA_TIMEOUT_SECONDS
    started: float = field(default_factory=lambda: time.monotonic(), repr=False)

    def get_remaining_time_in_millis(self) -> int:
        """What is left of the function's timeout, as Lambda counts it."""
        left = self.started + self.timeout_seconds - time.monotonic()
        return max(int(left * 1000), 0)


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


def decode_result(result: Any) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers and body of a payload-2.0 handler result.

    A result without `statusCode` is, as API Gateway reads it, a 200 whose JSON body is
    the result itself.
    """
    if not isinstance(result, dict) or "statusCode" not in result:
        return 200, [("Content-Type", "application/json")], json.dumps(result).encode()
    status = int(result["statusCode"])
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
