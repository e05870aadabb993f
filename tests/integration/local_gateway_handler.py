"""A tiny Lambda handler for the local gateway's tests (`OCIWRAP_HANDLER_MODULE`).

Like Powertools' resolver it keeps the current event in module state and reads it back
after its work, so two events handled at once in one process would mix their answers.
The path picks what it does:

* `/v2/`                          200 `{}` (the gateway's readiness check)
* `/sleep/<seconds>`              sleeps; `X-Method`, `X-Pid`, `X-Start`, `X-End` headers
* `/meet/<n>?at=<dir>`            waits (20 s at most) until `n` events are in this handler
                                  at once, counted by files in `dir`; answers `met` and pid
* `/hold?at=<dir>`                writes `dir/held`, waits (20 s at most) for `dir/release`;
                                  answers `released` and pid
* `/echo`                         the event's method, path, query, headers, cookies, body
* `/length`                       `Content-Length: 1234` from the handler, body `{"ok":true}`
* `/remaining`                    the context's remaining time, before and after 0.2 s
* `/raise`                        raises
* `/huge`                         a result over Lambda's 6 MB
* `/connect/<host>/<port>`        tries a TCP connection, answers what happened
* `/resolve/<name>`               tries to resolve a host name, answers what happened
"""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path

CURRENT: dict = {}
WAIT_SECONDS = 20.0  # how long `/meet` and `/hold` wait at most (the tests' clients: 30 s)


def _answer(body: object, headers: dict | None = None, status: int = 200) -> dict:
    method = CURRENT["event"]["requestContext"]["http"]["method"]
    text = json.dumps(body)
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "X-Method": method, **(headers or {})},
        "body": "" if method == "HEAD" else text,
    }


def _method() -> str:
    return CURRENT["event"]["requestContext"]["http"]["method"]


def _wait_until(condition: Callable[[], bool]) -> bool:
    end = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.01)
    return True


def lambda_handler(event: dict, context: object) -> dict:
    CURRENT["event"] = event
    path = event["rawPath"]
    if path.startswith("/sleep/"):
        start = time.time()
        time.sleep(float(path.rsplit("/", 1)[1]))
        end = time.time()
        method = CURRENT["event"]["requestContext"]["http"]["method"]
        headers = {"X-Pid": str(os.getpid()), "X-Start": repr(start), "X-End": repr(end)}
        return _answer({"method": method, "pid": os.getpid()}, headers)
    if path.startswith("/meet/"):
        place = Path(event["queryStringParameters"]["at"])
        (place / f"{os.getpid()}-{uuid.uuid4().hex}").touch()
        met = _wait_until(lambda: len(list(place.iterdir())) >= int(path.rsplit("/", 1)[1]))
        return _answer({"method": _method(), "pid": os.getpid(), "met": met})
    if path == "/hold":
        place = Path(event["queryStringParameters"]["at"])
        (place / "holding").write_text(str(os.getpid()))
        (place / "holding").rename(place / "held")  # appears with the pid in it
        released = _wait_until((place / "release").exists)
        return _answer({"method": _method(), "pid": os.getpid(), "released": released})
    if path == "/echo":
        body = event.get("body") or ""
        raw = base64.b64decode(body) if event.get("isBase64Encoded") else body.encode()
        return _answer(
            {
                "method": event["requestContext"]["http"]["method"],
                "rawPath": event["rawPath"],
                "rawQueryString": event["rawQueryString"],
                "query": event.get("queryStringParameters"),
                "headers": event["headers"],
                "cookies": event.get("cookies"),
                "body_bytes": len(raw),
                "pid": os.getpid(),
            }
        )
    if path == "/length":
        head = event["requestContext"]["http"]["method"] == "HEAD"
        return {
            "statusCode": 200,
            "headers": {
                "Content-Type": "application/json",
                "Content-Length": "1234",
                "X-Accept": event["headers"].get("accept", ""),
            },
            "body": "" if head else '{"ok":true}',
        }
    if path == "/remaining":
        first = context.get_remaining_time_in_millis()  # type: ignore[attr-defined]
        time.sleep(0.2)
        second = context.get_remaining_time_in_millis()  # type: ignore[attr-defined]
        return _answer({"first": first, "second": second})
    if path == "/raise":
        raise RuntimeError("the handler failed")
    if path == "/huge":
        return _answer("x" * (7 * 1024 * 1024))
    if path.startswith("/connect/"):
        _, _, host, port = path.split("/")
        try:
            socket.create_connection((host, int(port)), timeout=0.5).close()
            outcome = "connected"
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        try:
            sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
            sock.settimeout(0.5)
            try:
                sock.connect((host, int(port)))
                raw = "connected"
            finally:
                sock.close()
        except OSError as exc:
            raw = f"{type(exc).__name__}: {exc}"
        return _answer({"create_connection": outcome, "connect": raw})
    if path.startswith("/resolve/"):
        try:
            socket.getaddrinfo(path.split("/")[2], 443)
            outcome = "resolved"
        except OSError as exc:
            outcome = f"{type(exc).__name__}: {exc}"
        return _answer({"getaddrinfo": outcome})
    return _answer({})
